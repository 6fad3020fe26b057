-- Backing chains of managed disks: a linked clone is a qcow2 overlay whose backing file is another
-- managed disk. The base cannot be removed while a row names it (RESTRICT), and the overlay's row
-- goes with the overlay.
CREATE TABLE disk_chain (
  disk_id       TEXT PRIMARY KEY REFERENCES disks(id) ON DELETE CASCADE,
  backing_id    TEXT NOT NULL REFERENCES disks(id) ON DELETE RESTRICT,
  backing_path  TEXT NOT NULL,
  created_at    TEXT NOT NULL
);
CREATE INDEX disk_chain_backing ON disk_chain(backing_id);
