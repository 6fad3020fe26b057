import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '@qemu-manager/contract';
import { AUDIT_PAGE_SIZE, auditResult, describeAction, describeActor, mergePages, olderCursor, resolveTarget, shown, targetKind } from './auditWords';

const entry = (over: Partial<AuditEntry> = {}): AuditEntry => ({
  id: 1,
  at: '2025-11-28T12:00:00.000Z',
  actor: 'session:admin',
  ip: '127.0.0.1',
  action: 'POST /api/vms/:vm_id/start',
  target: 'vm-1',
  status: 200,
  ...over,
});

describe('describeAction', () => {
  it('puts the common actions into words', () => {
    expect(describeAction('POST /api/vms/:vm_id/start')).toBe('Started VM');
    expect(describeAction('POST /api/vms/:vm_id/stop')).toBe('Stopped VM');
    expect(describeAction('POST /api/vms')).toBe('Created VM');
    expect(describeAction('DELETE /api/vms/:vm_id')).toBe('Deleted VM');
    expect(describeAction('POST /api/disks')).toBe('Created disk');
    expect(describeAction('CONSOLE /api/vnc/:vm_id')).toBe('Opened console');
    expect(describeAction('POST /api/auth/login')).toBe('Logged in');
    expect(describeAction('POST /api/tokens')).toBe('Created API token');
    expect(describeAction('DELETE /api/tokens/:id')).toBe('Revoked API token');
    expect(describeAction('PUT /api/isos/:name')).toBe('Uploaded ISO');
    expect(describeAction('DELETE /api/tasks/:task_id')).toBe('Cancelled task');
  });
  it('falls back to the raw action', () => {
    expect(describeAction('POST /api/something/new')).toBe('POST /api/something/new');
    expect(describeAction('constructor')).toBe('constructor');
  });
});

describe('describeActor', () => {
  it('names who did it', () => {
    expect(describeActor('session:admin')).toBe('admin (browser)');
    expect(describeActor('token:backup script')).toBe('Token “backup script”');
    expect(describeActor('local')).toBe('Local (no login)');
    expect(describeActor('ticket')).toBe('Console ticket');
    expect(describeActor('anonymous')).toBe('Not logged in');
    expect(describeActor('robot')).toBe('robot');
  });
});

describe('targets', () => {
  const lookups = { vms: [{ id: 'vm-1', name: 'web' }], disks: [{ id: 'd-1', name: 'web-disk' }], tokens: [{ id: 't-1', name: 'ci' }] };
  it('knows the kind from the route', () => {
    expect(targetKind('POST /api/vms/:vm_id/start')).toBe('vm');
    expect(targetKind('CONSOLE /api/vnc/:vm_id')).toBe('vm');
    expect(targetKind('DELETE /api/disks/:disk_id')).toBe('disk');
    expect(targetKind('PUT /api/isos/:name')).toBe('iso');
    expect(targetKind('DELETE /api/tokens/:id')).toBe('token');
    expect(targetKind('POST /api/vms')).toBeNull();
  });
  it('resolves known ids to names, keeps unknown ones raw', () => {
    expect(resolveTarget(entry(), lookups)).toEqual({ kind: 'vm', label: 'web', id: 'vm-1' });
    expect(resolveTarget(entry({ action: 'DELETE /api/disks/:disk_id', target: 'd-1' }), lookups)).toEqual({ kind: 'disk', label: 'web-disk', id: 'd-1' });
    expect(resolveTarget(entry({ action: 'DELETE /api/tokens/:id', target: 't-1' }), lookups)?.label).toBe('ci');
    expect(resolveTarget(entry({ target: 'gone' }), lookups)).toEqual({ kind: 'vm', label: 'gone', id: null });
    expect(resolveTarget(entry({ action: 'PUT /api/isos/:name', target: 'a.iso' }), lookups)).toEqual({ kind: 'iso', label: 'a.iso', id: null });
    expect(resolveTarget(entry({ target: null }), lookups)).toBeNull();
    // A disk id never resolves to a VM of the same id.
    expect(resolveTarget(entry({ action: 'DELETE /api/disks/:disk_id', target: 'vm-1' }), lookups)?.id).toBeNull();
  });
});

describe('auditResult', () => {
  it('calls 2xx and 101 success, the rest refused or failed with the status', () => {
    expect(auditResult(200)).toEqual({ ok: true, label: 'Success' });
    expect(auditResult(201).ok).toBe(true);
    expect(auditResult(101).ok).toBe(true);
    expect(auditResult(409)).toEqual({ ok: false, label: 'refused (409)' });
    expect(auditResult(401).label).toBe('refused (401)');
    expect(auditResult(500)).toEqual({ ok: false, label: 'failed (500)' });
  });
});

describe('paging', () => {
  const page = (from: number, n: number) => Array.from({ length: n }, (_, i) => entry({ id: from - i }));
  it('asks for entries older than the smallest id of a full page', () => {
    expect(olderCursor(page(250, AUDIT_PAGE_SIZE))).toBe(151);
    expect(olderCursor(page(50, 50))).toBeUndefined();
    expect(olderCursor([])).toBeUndefined();
  });
  it('merges pages newest first without duplicates', () => {
    expect(mergePages([page(5, 3), page(4, 4)]).map((e) => e.id)).toEqual([5, 4, 3, 2, 1]);
  });
});

describe('control characters', () => {
  it('are shown as escapes, never raw: C0, DEL, C1, line separators, bidi controls', () => {
    expect(shown('a\nb\rc\u0000d\u001be\u007f\u0085\u009b')).toBe('a\\u000ab\\u000dc\\u0000d\\u001be\\u007f\\u0085\\u009b');
    expect(shown('x\u2028y\u2029z\u202eevil\u2066')).toBe('x\\u2028y\\u2029z\\u202eevil\\u2066');
    expect(shown('plain token-name_1.iso ü')).toBe('plain token-name_1.iso ü');
  });
  it('in actors, actions and targets of old entries', () => {
    expect(describeActor('token:ci\nsession:admin')).toBe('Token “ci\\u000asession:admin”');
    expect(describeActor('robot\u202e')).toBe('robot\\u202e');
    expect(describeAction('POST /api/x\r\nFAKE')).toBe('POST /api/x\\u000d\\u000aFAKE');
    expect(resolveTarget(entry({ action: 'PUT /api/isos/:name', target: 'a\u2028b.iso' }), {})?.label).toBe('a\\u2028b.iso');
    for (const s of [describeActor('token:a\u0085b'), describeAction('DELETE /api/isos/\u0007'), resolveTarget(entry({ target: '\u001b[2J' }), {})!.label]) {
      expect(s).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
    }
  });
});
