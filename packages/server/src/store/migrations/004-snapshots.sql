-- Internal (qcow2) snapshots of a VM's disks. The images hold only tag, date and VM state; the
-- rest is ours. `disks` is the JSON list of the image paths the snapshot is in, in attach order;
-- `parent` names another snapshot of the same VM (the tree); one row per VM may be `current`.
CREATE TABLE vm_snapshots (
  vm_id         TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  name          TEXT NOT NULL,
  description   TEXT NOT NULL DEFAULT '',
  created_at    TEXT NOT NULL,
  vm_state      INTEGER NOT NULL CHECK (vm_state IN (0, 1)),
  parent        TEXT,
  current       INTEGER NOT NULL DEFAULT 0 CHECK (current IN (0, 1)),
  size_bytes    INTEGER NOT NULL DEFAULT 0,
  disks         TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (vm_id, name)
);
