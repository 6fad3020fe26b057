-- Metrics (issue 14): each VM's history, one row per completed point of a tier (0: 5 s, 1: 1 min,
-- 2: 5 min), t in Unix seconds (the start of its interval); pruned by age, gone with the VM.
CREATE TABLE vm_metrics (
  vm_id    TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  tier     INTEGER NOT NULL CHECK (tier BETWEEN 0 AND 9),
  t        INTEGER NOT NULL,
  cpu      REAL,
  rss      REAL,
  disk_rd  REAL,
  disk_wr  REAL,
  disk_rop REAL,
  disk_wop REAL,
  net_rx   REAL,
  net_tx   REAL,
  PRIMARY KEY (vm_id, tier, t)
) WITHOUT ROWID;
