-- Hardware options and templates (issue 12): machine type, disk bus, NIC model, boot order, the
-- OS preset the VM was made with, a second (drivers) CD-ROM, and whether the VM is a template.
ALTER TABLE vms ADD COLUMN machine TEXT NOT NULL DEFAULT 'q35' CHECK (machine IN ('q35', 'pc'));
ALTER TABLE vms ADD COLUMN disk_bus TEXT NOT NULL DEFAULT 'virtio' CHECK (disk_bus IN ('virtio', 'sata', 'scsi'));
ALTER TABLE vms ADD COLUMN nic_model TEXT NOT NULL DEFAULT 'virtio' CHECK (nic_model IN ('virtio', 'e1000e', 'rtl8139'));
-- A JSON array of 'disk' | 'cdrom' | 'network', checked by the server.
ALTER TABLE vms ADD COLUMN boot_order TEXT NOT NULL DEFAULT '["disk","cdrom"]';
ALTER TABLE vms ADD COLUMN os_type TEXT NOT NULL DEFAULT 'other' CHECK (os_type IN ('linux', 'windows', 'other'));
ALTER TABLE vms ADD COLUMN drivers_iso TEXT;
ALTER TABLE vms ADD COLUMN is_template INTEGER NOT NULL DEFAULT 0 CHECK (is_template IN (0, 1));
