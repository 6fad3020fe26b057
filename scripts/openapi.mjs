// `npm run openapi`: builds the server, runs it on a free loopback port with a throw-away data dir,
// and writes the OpenAPI document it serves (GET /api/openapi.json) to packages/contract/openapi.json.
// test/integration/openapi.test.ts fails while the committed file differs from the served document:
// after an intended API change, run this and commit the file with the change.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cleanupDataDir, makeDataDir, request, startServer } from '../test/kit/index.mjs';
import { root } from './build.mjs';

export const OPENAPI_FILE = path.join(root, 'packages/contract/openapi.json');

/** The committed form of a document: two-space JSON with a final newline. */
export function formatOpenApi(doc) {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

const built = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b', 'packages/server'], { cwd: root, stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

const dataDir = makeDataDir('qm-openapi-');
try {
  // No VM runs: no host rules needed.
  const server = await startServer({ dataDir, env: { WEB_DIR: '', LOG_LEVEL: 'warn', GUEST_ISOLATION: 'off' }, readyPath: '/api/openapi.json', ready: (s) => s === 200 });
  try {
    const r = await request(server.url, 'GET', '/api/openapi.json');
    if (r.status !== 200) throw new Error(`GET /api/openapi.json answered ${r.status}: ${r.raw.toString()}`);
    const doc = r.body;
    fs.writeFileSync(OPENAPI_FILE, formatOpenApi(doc));
    console.log(`wrote ${path.relative(root, OPENAPI_FILE)} (${Object.keys(doc.paths ?? {}).length} paths)`);
  } finally {
    await server.stop();
  }
} finally {
  cleanupDataDir(dataDir);
}
