-- The snapshot table. IF NOT EXISTS: stores created before versioned
-- migrations already hold exactly this schema (with user_version 0).
CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_id  TEXT PRIMARY KEY,
    pseudonym    TEXT NOT NULL,
    generated_at TEXT NOT NULL,  -- UTC ISO 8601 with microseconds: sorts as text
    nonce        BLOB NOT NULL,
    payload      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_by_patient ON snapshots (pseudonym, generated_at);
