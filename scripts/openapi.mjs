// `npm run openapi`: builds the server, runs it on a free loopback port with a throw-away data dir,
// and writes the OpenAPI document it serves (GET /api/openapi.json) to packages/contract/openapi.json.
// test/integration/openapi.test.ts fails while the committed file differs from the served document:
// after an intended API change, run this and commit the file with the change.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../bench/lib.mjs';
import { root } from './build.mjs';

export const OPENAPI_FILE = path.join(root, 'packages/contract/openapi.json');

/** The committed form of a document: two-space JSON with a final newline. */
export function formatOpenApi(doc) {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

const built = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b', 'packages/server'], { cwd: root, stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-openapi-'));
const port = await freePort();
const server = spawn(process.execPath, [path.join(root, 'packages/server/dist/main.js')], {
  env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, WEB_DIR: '', LOG_LEVEL: 'warn', GUEST_ISOLATION: 'off' }, // no VM runs: no host rules needed
  stdio: ['ignore', 'inherit', 'inherit'],
});
const exited = new Promise((resolve) => server.once('exit', resolve));
try {
  let doc = null;
  const deadline = Date.now() + 20_000;
  while (!doc) {
    if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}`);
    if (Date.now() > deadline) throw new Error('the server did not answer within 20 s');
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/openapi.json`);
      if (r.status !== 200) throw new Error(`GET /api/openapi.json answered ${r.status}: ${await r.text()}`);
      doc = await r.json();
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('GET ')) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  fs.writeFileSync(OPENAPI_FILE, formatOpenApi(doc));
  console.log(`wrote ${path.relative(root, OPENAPI_FILE)} (${Object.keys(doc.paths ?? {}).length} paths)`);
} finally {
  server.kill('SIGTERM');
  await exited;
  fs.rmSync(dataDir, { recursive: true, force: true });
}
