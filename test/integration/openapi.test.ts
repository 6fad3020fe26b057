/**
 * The OpenAPI document a real server serves equals the committed packages/contract/openapi.json.
 * An intended API change updates the file in the same commit: `npm run openapi` rewrites it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, repoRoot } from './harness.js';

const FILE = path.join(repoRoot, 'packages/contract/openapi.json');
const HOW = 'the served OpenAPI document differs from packages/contract/openapi.json: if the API change is intended, run `npm run openapi` and commit the file with it';

let server: TestServer;

beforeAll(async () => {
  server = await new TestServer(makeDataDir()).start();
});
afterAll(async () => {
  await server?.dispose();
});

async function served(): Promise<string> {
  const r = await fetch(`${server.url}/api/openapi.json`);
  expect(r.status).toBe(200);
  return `${JSON.stringify(await r.json(), null, 2)}\n`;
}

/** Where two documents first differ, as a few lines of each, so the failure says what changed. */
function firstDifference(a: string, b: string): string {
  const la = a.split('\n');
  const lb = b.split('\n');
  let i = 0;
  while (i < la.length && i < lb.length && la[i] === lb[i]) i++;
  const show = (l: string[]) => l.slice(Math.max(0, i - 3), i + 3).join('\n');
  return `first difference at line ${i + 1}\n--- committed\n${show(la)}\n--- served\n${show(lb)}`;
}

describe('OpenAPI document', () => {
  it('is the committed packages/contract/openapi.json', async () => {
    expect(fs.existsSync(FILE), `${FILE} is missing: run \`npm run openapi\``).toBe(true);
    const committed = fs.readFileSync(FILE, 'utf8');
    const doc = await served();
    if (doc !== committed) expect.fail(`${HOW}\n${firstDifference(committed, doc)}`);
  });

  it('is deterministic: the same on every request, nothing of this host or run in it', async () => {
    const a = await served();
    expect(await served()).toBe(a);
    expect(a).not.toContain(server.dataDir);
    expect(a).not.toContain(String(server.port));
    expect(a).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d/);
    const doc = JSON.parse(a) as { paths: Record<string, unknown>; servers: unknown };
    expect(doc.servers).toEqual([{ url: '/' }]);
    // Every route of the API is in it (the SSE stream and the ISO upload included).
    for (const p of ['/api/vms', '/api/vms/{vm_id}/reboot', '/api/disks/{disk_id}', '/api/isos/{name}', '/api/events', '/api/tokens', '/api/health']) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
  });
});
