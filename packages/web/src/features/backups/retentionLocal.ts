// A stand-in for the contract's `selectRetained` (see ./retention.ts): the prune rules Proxmox
// documents. Newest first, keepLast keeps the newest N; then each period rule (hourly, daily,
// weekly, monthly) keeps the newest backup of each of its N newest periods, skipping periods a
// backup already kept by an earlier rule covers. No rule at all keeps everything.
import type { Retention } from '@qemu-manager/contract';

export interface RetentionSelection {
  keep: string[];
  prune: string[];
  /** For each kept id, the rules that keep it (e.g. ["keepLast"]). */
  reasons: Record<string, string[]>;
}

type Rule = keyof Retention;
const PERIOD_RULES: readonly Rule[] = ['keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly'];

interface Parts { year: number; month: number; day: number; hour: number }

function partsIn(date: Date, timeZone: string | undefined): Parts {
  const fmt = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', hourCycle: 'h23' });
  const get = (type: string) => Number(fmt.formatToParts(date).find((p) => p.type === type)?.value ?? 0);
  return { year: get('year'), month: get('month'), day: get('day'), hour: get('hour') };
}

/** ISO 8601 week of a calendar date: "2025-W48". */
function isoWeek({ year, month, day }: Parts): string {
  const d = new Date(Date.UTC(year, month - 1, day));
  const weekday = d.getUTCDay() || 7; // Monday 1 … Sunday 7
  d.setUTCDate(d.getUTCDate() + 4 - weekday); // the Thursday of this week decides its year
  const weekYear = d.getUTCFullYear();
  const week = Math.ceil(((d.getTime() - Date.UTC(weekYear, 0, 1)) / 86_400_000 + 1) / 7);
  return `${weekYear}-W${week}`;
}

function periodOf(rule: Rule, p: Parts): string {
  switch (rule) {
    case 'keepHourly': return `${p.year}-${p.month}-${p.day}T${p.hour}`;
    case 'keepDaily': return `${p.year}-${p.month}-${p.day}`;
    case 'keepWeekly': return isoWeek(p);
    default: return `${p.year}-${p.month}`;
  }
}

export function selectRetained(
  backups: ReadonlyArray<{ id: string; createdAt: string }>,
  retention: Retention,
  timeZone?: string,
): RetentionSelection {
  const sorted = [...backups].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || (a.id < b.id ? -1 : 1));
  const rules = (['keepLast', ...PERIOD_RULES] as Rule[]).filter((r) => (retention[r] ?? 0) > 0);
  const reasons: Record<string, string[]> = {};
  if (rules.length === 0) {
    for (const b of sorted) reasons[b.id] = [];
    return { keep: sorted.map((b) => b.id), prune: [], reasons };
  }
  const parts = new Map(sorted.map((b) => [b.id, partsIn(new Date(b.createdAt), timeZone)]));
  const decided = new Map<string, 'keep' | 'prune'>();
  for (const rule of rules) {
    const limit = retention[rule]!;
    if (rule === 'keepLast') {
      for (const b of sorted.slice(0, limit)) {
        decided.set(b.id, 'keep');
        reasons[b.id] = [rule];
      }
      continue;
    }
    // Periods already covered by a kept backup do not count again for this rule.
    const covered = new Set(sorted.filter((b) => decided.get(b.id) === 'keep').map((b) => periodOf(rule, parts.get(b.id)!)));
    const kept = new Set<string>();
    for (const b of sorted) {
      if (decided.has(b.id)) continue;
      const period = periodOf(rule, parts.get(b.id)!);
      if (covered.has(period)) continue;
      if (kept.has(period)) {
        decided.set(b.id, 'prune');
        continue;
      }
      if (kept.size >= limit) break;
      kept.add(period);
      decided.set(b.id, 'keep');
      reasons[b.id] = [rule];
    }
  }
  const keep = sorted.filter((b) => decided.get(b.id) === 'keep').map((b) => b.id);
  const prune = sorted.filter((b) => decided.get(b.id) !== 'keep').map((b) => b.id);
  return { keep, prune, reasons };
}
