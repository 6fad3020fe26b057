CREATE TABLE settings (
  key    TEXT PRIMARY KEY,
  value  TEXT NOT NULL
);

-- Browser sessions; only a hash of the cookie value is stored.
CREATE TABLE sessions (
  id_hash       TEXT PRIMARY KEY,
  created_at    TEXT NOT NULL,
  expires_at    TEXT NOT NULL
);

-- API tokens; only a hash of the secret is stored.
CREATE TABLE tokens (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  scope         TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
  secret_hash   TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  expires_at    TEXT,
  last_used_at  TEXT,
  revoked_at    TEXT
);

CREATE TABLE audit (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      TEXT NOT NULL,
  actor   TEXT NOT NULL,
  ip      TEXT,
  action  TEXT NOT NULL,
  target  TEXT,
  status  INTEGER NOT NULL
);
