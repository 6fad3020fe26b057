import type { AuditEntry } from '@qemu-manager/contract';
import { escapeControls } from '../lib/text.js';
import type { Db } from '../store/sqlite.js';

/** Persistence of the audit log: who changed what, when, from where, with which result. */
export class AuditStore {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      add: db.prepare('INSERT INTO audit (at, actor, ip, action, target, status) VALUES (@at, @actor, @ip, @action, @target, @status)'),
      list: db.prepare<[number, number], AuditEntry>('SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?'),
    };
  }

  /** Stored with control characters escaped: actors, targets and addresses come from clients. */
  record(e: Omit<AuditEntry, 'id'>): void {
    const esc = (v: string | null) => (v === null ? null : escapeControls(v));
    this.q.add.run({ ...e, actor: escapeControls(e.actor), ip: esc(e.ip), action: escapeControls(e.action), target: esc(e.target) });
  }

  /** Newest first, entries with an id below `before`. */
  list(limit: number, before: number): AuditEntry[] {
    return this.q.list.all(before, limit);
  }
}
