-- Alerts (issue 14): endpoints notified of events (smtp settings as JSON, the password in it is
-- never returned), and the last delivery attempts of each (pruned to the newest per endpoint).
CREATE TABLE notifications (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('webhook', 'ntfy', 'smtp')),
  url        TEXT,
  smtp       TEXT,
  events     TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE notification_deliveries (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  notification_id TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
  at              TEXT NOT NULL,
  event           TEXT NOT NULL,
  attempt         INTEGER NOT NULL,
  ok              INTEGER NOT NULL,
  status          INTEGER,
  error           TEXT,
  final           INTEGER NOT NULL
);
CREATE INDEX notification_deliveries_by_endpoint ON notification_deliveries (notification_id, seq);
