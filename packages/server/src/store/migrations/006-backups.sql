-- Backups (issue 13). The backup directories (manifest.json + disk files) are the truth a host can
-- restore from; these rows are the server's index of them.
-- Targets the admin added (the default target, $DATA_DIR/backups, is not stored: always present).
CREATE TABLE backup_targets (
  name        TEXT PRIMARY KEY,
  path        TEXT NOT NULL UNIQUE,
  created_at  TEXT NOT NULL
);

-- One row per complete backup (a backup is listed only once every file is written, hashed and
-- renamed into place). `vm_id` is kept after the VM is deleted (a backup outlives its VM);
-- `manifest` is the manifest.json as written; `dir` the real path of the backup directory.
CREATE TABLE backups (
  id           TEXT PRIMARY KEY,
  vm_id        TEXT NOT NULL,
  vm_name      TEXT NOT NULL,
  target       TEXT NOT NULL,
  dir          TEXT NOT NULL UNIQUE,
  created_at   TEXT NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('full', 'incremental')),
  parent_id    TEXT REFERENCES backups(id),
  size_bytes   INTEGER NOT NULL DEFAULT 0,
  verified_at  TEXT,
  state        TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'corrupt', 'missing')),
  frozen       INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1)),
  manifest     TEXT NOT NULL
);
CREATE INDEX backups_vm ON backups (vm_id, created_at);

-- The dirty bitmap kept in a VM's qcow2 disk for incremental backups: which backup it counts
-- changes since. A row is written only when the backup that (re)started the bitmap is listed; a
-- disk without a row (or whose bitmap is gone from the image) gets a full backup next.
CREATE TABLE backup_bitmaps (
  vm_id        TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  disk_path    TEXT NOT NULL,
  bitmap       TEXT NOT NULL,
  backup_id    TEXT NOT NULL,
  PRIMARY KEY (vm_id, disk_path)
);

CREATE TABLE backup_schedules (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE,
  vms          TEXT NOT NULL,          -- JSON: an array of VM ids, or "all"
  target       TEXT NOT NULL,
  every        TEXT NOT NULL,
  at           TEXT,
  retention    TEXT NOT NULL,          -- JSON Retention
  enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  last_run_at  TEXT,
  last_task    TEXT,
  last_status  TEXT,
  created_at   TEXT NOT NULL
);
