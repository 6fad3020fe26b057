import type { Retention } from './backups.js';

/**
 * Which backups a retention keeps (the prune rules of Proxmox VE / Proxmox Backup Server). Pure: the
 * server prunes with it after a scheduled run and the UI previews with it.
 *
 * The rules are applied in the order keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, each
 * over the backups newest first. A rule with count N keeps the newest backup of each of the N newest
 * periods (hour, day, ISO week — Monday to Sunday, the ISO week-numbering year —, month; keepLast: each
 * backup is its own period) that hold a backup not yet decided on. A period that holds a backup an
 * earlier rule kept is already covered: the rule skips it (without counting it), so a later rule only
 * reaches older backups. A backup in a period the rule has just covered (an older one of the same
 * day, say) is pruned by that rule; later rules do not look at it again. Periods without a backup do
 * not count. Whatever no rule keeps is pruned; with no rule set, everything is kept.
 *
 * Periods are read in `timeZone` (an IANA name; the host's local zone when not given).
 */
export interface RetentionSelection {
  /** Ids kept, newest first. */
  keep: string[];
  /** Ids pruned, newest first. */
  prune: string[];
  /** Why, per id: the rule (and period) that kept it, or why it goes. */
  reasons: Record<string, string[]>;
}

type RuleName = 'keepLast' | 'keepHourly' | 'keepDaily' | 'keepWeekly' | 'keepMonthly';

interface Parts {
  year: number;
  month: number;
  day: number;
  hour: number;
}

const RULES: ReadonlyArray<{ rule: RuleName; period: (p: Parts, id: string) => string }> = [
  { rule: 'keepLast', period: (_p, id) => id },
  { rule: 'keepHourly', period: (p) => `${ymd(p)} ${pad(p.hour)}h` },
  { rule: 'keepDaily', period: (p) => ymd(p) },
  { rule: 'keepWeekly', period: (p) => isoWeek(p) },
  { rule: 'keepMonthly', period: (p) => `${p.year}-${pad(p.month)}` },
];

export function selectRetained(
  backups: ReadonlyArray<{ id: string; createdAt: string }>,
  retention: Retention,
  timeZone?: string,
): RetentionSelection {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    hourCycle: 'h23',
  });
  // Newest first; equal times keep the order given.
  const list = backups
    .map((b, i) => {
      const t = Date.parse(b.createdAt);
      if (Number.isNaN(t)) throw new RangeError(`backup ${b.id} has an invalid createdAt: ${b.createdAt}`);
      return { id: b.id, t, i, parts: partsOf(fmt, t) };
    })
    .sort((a, b) => b.t - a.t || a.i - b.i);

  const reasons: Record<string, string[]> = {};
  const active = RULES.filter(({ rule }) => (retention[rule] ?? 0) > 0);
  if (active.length === 0) {
    for (const b of list) reasons[b.id] = ['no retention rule is set: every backup is kept'];
    return { keep: list.map((b) => b.id), prune: [], reasons };
  }

  const mark = new Map<string, 'keep' | 'prune'>();
  for (const { rule, period } of active) {
    const count = retention[rule] ?? 0;
    // Periods an earlier rule already covers with a kept backup.
    const covered = new Set<string>();
    for (const b of list) if (mark.get(b.id) === 'keep') covered.add(period(b.parts, b.id));
    const taken = new Map<string, string>(); // period → the backup this rule keeps for it
    for (const b of list) {
      if (mark.has(b.id)) continue;
      const p = period(b.parts, b.id);
      if (covered.has(p)) continue;
      const keeper = taken.get(p);
      if (keeper === undefined) {
        if (taken.size >= count) break;
        taken.set(p, b.id);
        mark.set(b.id, 'keep');
        reasons[b.id] = [rule === 'keepLast' ? `keepLast ${taken.size}/${count}` : `${rule} ${taken.size}/${count}: ${p}`];
      } else {
        mark.set(b.id, 'prune');
        reasons[b.id] = [`${rule}: the newer backup ${keeper} is kept for ${p}`];
      }
    }
  }
  const keep: string[] = [];
  const prune: string[] = [];
  for (const b of list) {
    if (mark.get(b.id) === 'keep') keep.push(b.id);
    else {
      prune.push(b.id);
      if (!mark.has(b.id)) reasons[b.id] = ['no rule keeps it'];
    }
  }
  return { keep, prune, reasons };
}

function partsOf(fmt: Intl.DateTimeFormat, t: number): Parts {
  const get = (parts: Intl.DateTimeFormatPart[], type: Intl.DateTimeFormatPartTypes) => Number(parts.find((x) => x.type === type)?.value);
  const parts = fmt.formatToParts(new Date(t));
  return { year: get(parts, 'year'), month: get(parts, 'month'), day: get(parts, 'day'), hour: get(parts, 'hour') };
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function ymd(p: Parts): string {
  return `${p.year}-${pad(p.month)}-${pad(p.day)}`;
}

/** The ISO 8601 week of a calendar date, e.g. 2021-W01 (weeks start on Monday; week 1 holds the year's first Thursday). */
function isoWeek(p: Parts): string {
  const DAY = 86_400_000;
  const date = Date.UTC(p.year, p.month - 1, p.day);
  const monday0 = (new Date(date).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = date + (3 - monday0) * DAY;
  const isoYear = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(isoYear, 0, 1)) / (7 * DAY));
  return `${isoYear}-W${pad(week)}`;
}
