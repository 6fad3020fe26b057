-- Networks (issue 11). `user` (QEMU user-mode NAT) is a row like the others so NICs can name it;
-- it is never deleted. nat/isolated: a bridge qm-<name>, subnet, gateway, DHCP pool (null: none).
-- bridge: an existing host bridge (subnet, gateway and DHCP null).
CREATE TABLE networks (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  type       TEXT NOT NULL CHECK (type IN ('user', 'nat', 'isolated', 'bridge')),
  bridge     TEXT UNIQUE,
  subnet     TEXT,
  gateway    TEXT,
  dhcp_start TEXT,
  dhcp_end   TEXT,
  created_at TEXT
);
INSERT INTO networks (id, name, type) VALUES ('user', 'user', 'user');

-- A VM's NICs. `slot` names it in QEMU (net<slot>/nic<slot>) and its tap; `ip` is the fixed
-- address a managed network with DHCP gives it (a dnsmasq dhcp-host entry), else null.
-- vms.mac and vms.nic_model stay the first NIC's (v1's `mac`), kept in step by the repo.
CREATE TABLE vm_nics (
  id         TEXT PRIMARY KEY,
  vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  network_id TEXT NOT NULL REFERENCES networks(id),
  slot       INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 7),
  model      TEXT NOT NULL CHECK (model IN ('virtio', 'e1000e', 'rtl8139')),
  mac        TEXT NOT NULL UNIQUE,
  ip         TEXT,
  created_at TEXT NOT NULL,
  UNIQUE (vm_id, slot),
  UNIQUE (network_id, ip)
);
CREATE INDEX vm_nics_network ON vm_nics(network_id);

-- Every VM so far had one user-mode NIC with the VM's MAC and NIC model: it becomes slot 0.
INSERT INTO vm_nics (id, vm_id, network_id, slot, model, mac, ip, created_at)
  SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-'
         || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
         id, 'user', 0, nic_model, mac, NULL, created_at
  FROM vms;

-- Port forwards: to a NIC on the user network (QEMU hostfwd) or a managed one (DNAT to its ip).
-- One forward per protocol and host port, whatever the host address.
CREATE TABLE vm_forwards (
  id           TEXT PRIMARY KEY,
  vm_id        TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  nic_id       TEXT NOT NULL REFERENCES vm_nics(id) ON DELETE CASCADE,
  protocol     TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
  host_address TEXT NOT NULL CHECK (host_address IN ('127.0.0.1', '0.0.0.0')),
  host_port    INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
  guest_port   INTEGER NOT NULL CHECK (guest_port BETWEEN 1 AND 65535),
  created_at   TEXT NOT NULL,
  UNIQUE (protocol, host_port)
);
CREATE INDEX vm_forwards_vm ON vm_forwards(vm_id);
