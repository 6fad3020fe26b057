// Pure helpers that turn audit entries into words: action, actor, target, result; plus paging.
import type { AuditEntry } from '@qemu-manager/contract';
import { t } from '../../i18n';

const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Recorded text as one visible line: control characters, line separators and bidi controls become
 * `\u000a`-style escapes. The server stores them escaped already; this covers entries written
 * before it did.
 */
export function shown(text: string): string {
  return text.replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** "POST /api/vms/:vm_id/start" -> "Started VM"; anything unknown is shown as recorded. */
export function describeAction(action: string): string {
  return Object.hasOwn(t.audit.actions, action) ? t.audit.actions[action]! : shown(action);
}

/** "session:admin", "token:ci", "local", "ticket", "anonymous" in words. */
export function describeActor(actor: string): string {
  const { actors } = t.audit;
  if (actor.startsWith('token:')) return actors.token(shown(actor.slice('token:'.length)));
  if (actor.startsWith('session:')) return actors.session(shown(actor.slice('session:'.length)));
  if (actor === 'session') return actors.session('admin');
  if (actor === 'local' || actor === 'ticket' || actor === 'anonymous') return actors[actor];
  return shown(actor);
}

export type TargetKind = 'vm' | 'disk' | 'iso' | 'token';

/** What kind of thing the recorded target is, read from the route's parameter. */
export function targetKind(action: string): TargetKind | null {
  const route = action.slice(action.indexOf(' ') + 1);
  if (route.includes(':vm_id')) return 'vm';
  if (route.includes(':disk_id')) return 'disk';
  if (route.startsWith('/api/isos/')) return 'iso';
  if (route.startsWith('/api/tokens/')) return 'token';
  return null;
}

export interface Named {
  id: string;
  name: string;
}
export interface TargetLookups {
  vms?: readonly Named[];
  disks?: readonly Named[];
  tokens?: readonly Named[];
}
export interface ResolvedTarget {
  kind: TargetKind | null;
  /** A name when the id is known (or the target is a name already), else the raw target. */
  label: string;
  /** The id, for a link, when it names something that still exists. */
  id: string | null;
}

/** The VM, disk or token name for a recorded id; the raw id when it is gone or unknown. */
export function resolveTarget(entry: Pick<AuditEntry, 'action' | 'target'>, lookups: TargetLookups): ResolvedTarget | null {
  if (!entry.target) return null;
  const kind = targetKind(entry.action);
  const list = kind === 'vm' ? lookups.vms : kind === 'disk' ? lookups.disks : kind === 'token' ? lookups.tokens : undefined;
  const found = list?.find((x) => x.id === entry.target);
  if (found) return { kind, label: shown(found.name), id: found.id };
  return { kind, label: shown(entry.target), id: null };
}

/** 2xx and 101 (a WebSocket that opened) are success; 4xx were refused, 5xx failed. */
export function auditResult(status: number): { ok: boolean; label: string } {
  if ((status >= 200 && status < 300) || status === 101) return { ok: true, label: t.audit.success };
  return { ok: false, label: status >= 500 ? t.audit.failed(status) : t.audit.refused(status) };
}

export const AUDIT_PAGE_SIZE = 100;

/** The `before` cursor for the next (older) page; undefined when this page was the last. */
export function olderCursor(page: readonly AuditEntry[], limit = AUDIT_PAGE_SIZE): number | undefined {
  if (page.length < limit) return undefined;
  return page.reduce((min, e) => Math.min(min, e.id), Number.POSITIVE_INFINITY);
}

/** All loaded pages as one list, newest first, each entry once. */
export function mergePages(pages: readonly (readonly AuditEntry[])[]): AuditEntry[] {
  const seen = new Set<number>();
  const out: AuditEntry[] = [];
  for (const e of pages.flat()) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    out.push(e);
  }
  return out.sort((a, b) => b.id - a.id);
}
