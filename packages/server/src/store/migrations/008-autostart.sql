-- Autostart (issue 15): whether a VM starts when the server comes up after a host boot, in which
-- order (lower first; shut down in the reverse order) and how many seconds to wait after its start
-- before the next one.
ALTER TABLE vms ADD COLUMN autostart_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN autostart_order INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN autostart_delay_s INTEGER NOT NULL DEFAULT 0;
