-- Backup schedules (issue 13, schedules and retention): the instant from which a schedule's due
-- times count. Due times at or before it never run (set when the schedule is made, when its timing
-- changes and when it is enabled), so a change does not fire a time that passed before it.
ALTER TABLE backup_schedules ADD COLUMN armed_at TEXT;
