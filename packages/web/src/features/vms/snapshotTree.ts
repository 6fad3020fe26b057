// Snapshots as a tree (through `parent`), and the checks of the Take snapshot dialog.
import type { Snapshot, Vm, VmStatus } from '@qemu-manager/contract';
import { isValidVmName } from '../../lib/validation';
import { t } from '../../i18n';

export interface SnapshotNode {
  snapshot: Snapshot;
  children: SnapshotNode[];
}

const byTime = (a: SnapshotNode, b: SnapshotNode) =>
  a.snapshot.createdAt.localeCompare(b.snapshot.createdAt) || a.snapshot.name.localeCompare(b.snapshot.name);

/**
 * The snapshot forest, oldest first at every level. A snapshot whose parent is unknown (or that
 * would close a loop) is a root, so every snapshot appears exactly once.
 */
export function buildSnapshotTree(snapshots: readonly Snapshot[]): SnapshotNode[] {
  const nodes = new Map<string, SnapshotNode>();
  for (const s of snapshots) if (!nodes.has(s.name)) nodes.set(s.name, { snapshot: s, children: [] });
  const parentOf = (name: string) => nodes.get(name)?.snapshot.parent ?? null;
  const loops = (name: string): boolean => {
    // Walk up from name; coming back to it means a cycle.
    const seen = new Set<string>([name]);
    for (let p = parentOf(name); p !== null && nodes.has(p); p = parentOf(p)) {
      if (seen.has(p)) return true;
      seen.add(p);
    }
    return false;
  };
  const roots: SnapshotNode[] = [];
  for (const node of nodes.values()) {
    const p = node.snapshot.parent;
    const parent = p !== null && p !== node.snapshot.name ? nodes.get(p) : undefined;
    if (parent && !loops(node.snapshot.name)) parent.children.push(node);
    else roots.push(node);
  }
  const sort = (list: SnapshotNode[]) => {
    list.sort(byTime);
    list.forEach((n) => sort(n.children));
  };
  sort(roots);
  return roots;
}

/** The tree as rows in display order, each with its depth (for indentation). */
export function flattenTree(roots: readonly SnapshotNode[]): { snapshot: Snapshot; depth: number }[] {
  const out: { snapshot: Snapshot; depth: number }[] = [];
  const walk = (list: readonly SnapshotNode[], depth: number) => {
    for (const n of list) {
      out.push({ snapshot: n.snapshot, depth });
      walk(n.children, depth + 1);
    }
  };
  walk(roots, 0);
  return out;
}

/** Why this snapshot name will be refused (the VM name rule, not digits only, unique), or null. */
export function snapshotNameError(name: string, existing: readonly Pick<Snapshot, 'name'>[] | undefined): string | null {
  if (!isValidVmName(name) || /^\d+$/.test(name)) return t.storage.snapshotNameInvalid;
  if (existing?.some((s) => s.name === name)) return t.storage.snapshotNameTaken;
  return null;
}

/** Memory can be saved only from a machine that runs (or is paused). */
export const canIncludeMemory = (status: VmStatus): boolean => status === 'running' || status === 'paused';

/** Why a revert to this snapshot will be refused now, or null (the server has the last word). */
export function revertBlockedReason(snapshot: Pick<Snapshot, 'vmState'>, status: VmStatus): string | null {
  if (status === 'stopped') return null;
  if (status === 'running' || status === 'paused') return snapshot.vmState ? null : t.storage.revertRunningDiskOnly;
  return t.detail.isoBusy;
}

/** A name for the next snapshot: "snap1", "snap2", … not yet taken. */
export function suggestSnapshotName(existing: readonly Pick<Snapshot, 'name'>[] | undefined): string {
  for (let i = 1; ; i++) if (!existing?.some((s) => s.name === `snap${i}`)) return `snap${i}`;
}

/** Why this name cannot be a clone's (the VM name rule, at most 57 for its disks' names, unique), or null. */
export function cloneVmNameError(name: string, vms: readonly Pick<Vm, 'name'>[] | undefined): string | null {
  if (!isValidVmName(name) || name.length > 57) return t.storage.cloneVmNameInvalid;
  if (vms?.some((v) => v.name === name)) return t.storage.cloneVmNameTaken;
  return null;
}
