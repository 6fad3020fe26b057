// The server's layout rules that lint cannot see: no import circle, QMP only in qemu/qmp/, HTTP
// status numbers only in http/. (The import direction between folders is enforced by lint.)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.dirname(fileURLToPath(import.meta.url));

function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const rel = (p: string) => path.relative(SRC, p);
const files = sources();
const text = new Map(files.map((f) => [f, fs.readFileSync(f, 'utf8')]));

/** The relative imports of a file (type-only ones too: a circle of types is a circle of design). */
function importsOf(file: string): string[] {
  const out: string[] = [];
  for (const m of text.get(file)!.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
    out.push(path.resolve(path.dirname(file), m[1].replace(/\.js$/, '.ts')));
  }
  return out;
}

describe('server layout', () => {
  it('has no import circle', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => text.has(i))]));
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (f: string, trail: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        circles.push([...trail.slice(trail.indexOf(f)), f].map(rel).join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const next of graph.get(f)!) visit(next, [...trail, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    expect(circles).toEqual([]);
  });

  it('sends QMP commands from qemu/qmp/ only', () => {
    const commands = text.get(path.join(SRC, 'qemu/qmp/commands.ts'))!;
    const names = [...commands.matchAll(/execute(?:<[^>]*>)?\('([a-z_-]+)'/g)].map((m) => m[1]);
    expect(names).toContain('query-status');
    const distinctive = [...names.filter((n) => /[-_]/.test(n)), 'qmp_capabilities'];
    const offenders: string[] = [];
    for (const [f, s] of text) {
      if (rel(f).startsWith(`qemu${path.sep}qmp${path.sep}`)) continue;
      if (/\.execute(?:<[^>]*>)?\(/.test(s)) offenders.push(`${rel(f)}: .execute(`);
      for (const n of distinctive) if (s.includes(`'${n}'`)) offenders.push(`${rel(f)}: '${n}'`);
    }
    expect(offenders).toEqual([]);
  });

  it('names HTTP status numbers in http/ only', () => {
    const patterns = [
      /\b(?:status|statusCode|code|writeHead)\s*[(:=]\s*[1-5]\d\d\b/,
      /\bAppError\(\s*\d/,
      /HTTP\/1\.[01] [1-5]\d\d/,
      /[{,]\s*[1-5]\d\d\s*:\s*[A-Z]\w*/,
    ];
    const offenders: string[] = [];
    for (const [f, s] of text) {
      if (rel(f).startsWith(`http${path.sep}`)) continue;
      s.split('\n').forEach((line, i) => {
        if (patterns.some((p) => p.test(line))) offenders.push(`${rel(f)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
