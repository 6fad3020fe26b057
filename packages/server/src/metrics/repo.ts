import type { Db } from '../store/sqlite.js';
import type { Point, Sample } from './ring.js';

/** Metrics (issue 14): the vm_metrics table (completed points), written in one transaction per sampling round. */
interface Row {
  vm_id: string;
  tier: number;
  t: number;
  cpu: number | null;
  rss: number | null;
  disk_rd: number | null;
  disk_wr: number | null;
  disk_rop: number | null;
  disk_wop: number | null;
  net_rx: number | null;
  net_tx: number | null;
}

export class MetricsRepo {
  private readonly insert;
  private readonly pruneTier;
  private readonly all;
  private readonly vmList;
  private readonly insertMany;

  constructor(db: Db) {
    // A VM deleted between the round's list and this write has no row to cascade from: skipped.
    this.insert = db.prepare(
      `INSERT OR REPLACE INTO vm_metrics (vm_id, tier, t, cpu, rss, disk_rd, disk_wr, disk_rop, disk_wop, net_rx, net_tx)
       SELECT @vm_id, @tier, @t, @cpu, @rss, @disk_rd, @disk_wr, @disk_rop, @disk_wop, @net_rx, @net_tx
       WHERE EXISTS (SELECT 1 FROM vms WHERE id = @vm_id)`,
    );
    this.pruneTier = db.prepare('DELETE FROM vm_metrics WHERE tier = ? AND t < ?');
    this.all = db.prepare('SELECT * FROM vm_metrics ORDER BY vm_id, tier, t');
    this.vmList = db.prepare('SELECT id, name, status FROM vms ORDER BY created_at, id');
    this.insertMany = db.transaction((rows: Row[]) => {
      for (const r of rows) this.insert.run(r);
    });
  }

  save(points: ReadonlyArray<{ vmId: string; tier: number; point: Point }>): void {
    if (!points.length) return;
    this.insertMany(
      points.map(({ vmId, tier, point: { t, v } }) => ({
        vm_id: vmId,
        tier,
        t,
        cpu: v.cpuPercent,
        rss: v.rssBytes,
        disk_rd: v.diskReadBps,
        disk_wr: v.diskWriteBps,
        disk_rop: v.diskReadOps,
        disk_wop: v.diskWriteOps,
        net_rx: v.netRxBps,
        net_tx: v.netTxBps,
      })),
    );
  }

  /** Removes the points of `tier` older than `before` (Unix seconds). */
  prune(tier: number, before: number): number {
    return this.pruneTier.run(tier, before).changes;
  }

  /** Every stored point, oldest first per VM and tier. */
  load(): Array<{ vmId: string; tier: number; point: Point }> {
    return (this.all.all() as Row[]).map((r) => {
      const v: Sample = {
        cpuPercent: r.cpu,
        rssBytes: r.rss,
        diskReadBps: r.disk_rd,
        diskWriteBps: r.disk_wr,
        diskReadOps: r.disk_rop,
        diskWriteOps: r.disk_wop,
        netRxBps: r.net_rx,
        netTxBps: r.net_tx,
      };
      return { vmId: r.vm_id, tier: r.tier, point: { t: r.t, v } };
    });
  }

  /** The VMs, cheaply (one indexless scan of three columns, no disks). */
  vms(): Array<{ id: string; name: string; status: string }> {
    return this.vmList.all() as Array<{ id: string; name: string; status: string }>;
  }
}
