/**
 * Metrics (issue 14): a strict parser of the Prometheus text exposition format 0.0.4, for tests:
 * every line is a HELP, a TYPE, a blank or a sample; names, label names and values (with their
 * three escapes) and numbers follow the format's grammar; a family's TYPE comes before its samples
 * and its samples are together; no series twice; the text ends with a line feed. Throws on the
 * first violation.
 */
export interface PromSample {
  labels: Record<string, string>;
  value: number;
}
export interface PromFamily {
  name: string;
  type: string;
  help: string;
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s: string, line: number): number {
  if (s === 'NaN') return NaN;
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`line ${line}: bad value ${JSON.stringify(s)}`);
  return Number(s);
}

function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 0;
  for (;;) {
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`line ${line}: label without =`);
    const name = text.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`line ${line}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`line ${line}: label ${name} twice`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`);
    let v = '';
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      if (c === '"') break;
      if (c === '\n') throw new Error(`line ${line}: raw line feed in a label value`);
      if (c === '\\') {
        const e = text[j + 1];
        if (e === '\\') v += '\\';
        else if (e === '"') v += '"';
        else if (e === 'n') v += '\n';
        else throw new Error(`line ${line}: bad escape \\${e ?? ''}`);
        j += 2;
        continue;
      }
      v += c;
      j++;
    }
    labels[name] = v;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`line ${line}: expected , or } after a label`);
  }
}

export function parsePrometheus(text: string): Map<string, PromFamily> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a line feed');
  const families = new Map<string, PromFamily>();
  const seen = new Set<string>();
  let current: string | null = null;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((raw, idx) => {
    const n = idx + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (!m) return; // a plain comment
      const [, kind, name = '', rest = ''] = m;
      if (!NAME.test(name)) throw new Error(`line ${n}: bad metric name ${name}`);
      const fam = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] };
      if (fam.samples.length) throw new Error(`line ${n}: ${kind} of ${name} after its samples`);
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`line ${n}: bad type ${rest}`);
        fam.type = rest;
      } else fam.help = rest;
      families.set(name, fam);
      current = name;
      return;
    }
    const nameEnd = raw.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`line ${n}: not a sample: ${raw}`);
    const name = raw.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`line ${n}: bad metric name ${name}`);
    let rest = raw.slice(nameEnd);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest.slice(1), n));
    const parts = rest.trim().split(' ');
    if (!rest.startsWith(' ') || parts.length < 1 || parts.length > 2) throw new Error(`line ${n}: bad sample ${raw}`);
    const value = parseValue(parts[0], n);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`line ${n}: bad timestamp`);
    const famName = families.has(name) ? name : name.replace(/_(sum|count|bucket)$/, '');
    const fam = families.get(famName) ?? { name, type: 'untyped', help: '', samples: [] };
    if (current !== famName && fam.samples.length) throw new Error(`line ${n}: samples of ${famName} are not together`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`line ${n}: series ${key} twice`);
    seen.add(key);
    fam.samples.push({ labels, value });
    families.set(famName, fam);
    current = famName;
  });
  return families;
}
