-- Long operations with their progress. `partial` is a JSON list of files the task is writing
-- (temporary names, server-chosen): removed when the task fails, is cancelled or is interrupted.
CREATE TABLE tasks (
  id            TEXT PRIMARY KEY,
  kind          TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  progress      REAL NOT NULL DEFAULT 0,
  bytes_done    INTEGER NOT NULL DEFAULT 0,
  bytes_total   INTEGER,
  vm_id         TEXT,
  disk_id       TEXT,
  created_at    TEXT NOT NULL,
  started_at    TEXT,
  ended_at      TEXT,
  error         TEXT,
  result        TEXT,
  partial       TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX tasks_created ON tasks(created_at DESC);
CREATE INDEX tasks_vm ON tasks(vm_id, created_at DESC);
CREATE INDEX tasks_disk ON tasks(disk_id, created_at DESC);
