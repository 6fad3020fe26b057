CREATE TABLE vms (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  cpus          INTEGER NOT NULL CHECK (cpus >= 1),
  memory        INTEGER NOT NULL CHECK (memory >= 16),
  status        TEXT NOT NULL DEFAULT 'stopped'
                CHECK (status IN ('stopped', 'starting', 'running', 'paused', 'stopping')),
  vnc_port      INTEGER NOT NULL UNIQUE CHECK (vnc_port BETWEEN 5900 AND 65535),
  iso           TEXT,
  mac           TEXT NOT NULL UNIQUE,
  pid           INTEGER,
  pid_start     TEXT,
  started_at    TEXT,
  last_command  TEXT,
  created_at    TEXT NOT NULL
);

CREATE TABLE disks (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  size          INTEGER NOT NULL,
  format        TEXT NOT NULL CHECK (format IN ('qcow2', 'raw', 'vmdk')),
  path          TEXT NOT NULL UNIQUE,
  status        TEXT NOT NULL CHECK (status IN ('creating', 'ready', 'error')),
  error         TEXT,
  created_at    TEXT NOT NULL,
  completed_at  TEXT
);

-- One row per attached image; the primary key on path means an image is attached to one VM only.
CREATE TABLE vm_disks (
  path          TEXT PRIMARY KEY,
  vm_id         TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  format        TEXT NOT NULL,
  position      INTEGER NOT NULL,
  attached_at   TEXT NOT NULL
);
CREATE INDEX vm_disks_vm ON vm_disks(vm_id, position);
