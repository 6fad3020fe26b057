-- Cloud-init (issue 12): a VM's NoCloud config, one row per VM that has one, gone with the VM.
-- The password only as its SHA-512 crypt hash; ssh_keys a JSON array of OpenSSH public key lines.
CREATE TABLE vm_cloud_init (
  vm_id          TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
  hostname       TEXT,
  user_name      TEXT,
  password_hash  TEXT CHECK (password_hash IS NULL OR password_hash LIKE '$6$%'),
  ssh_keys       TEXT NOT NULL DEFAULT '[]',
  user_data      TEXT,
  network_config TEXT,
  instance_id    TEXT NOT NULL,
  updated_at     TEXT NOT NULL
);
