-- The snapshot table: clear pseudonym, id and time; everything clinical is
-- inside the AES-GCM payload (see twin_orchestrator/store.py).
CREATE TABLE snapshots (
    snapshot_id  TEXT PRIMARY KEY,
    pseudonym    TEXT NOT NULL,
    generated_at TIMESTAMPTZ NOT NULL,
    nonce        BYTEA NOT NULL,
    payload      BYTEA NOT NULL
);
CREATE INDEX snapshots_by_patient ON snapshots (pseudonym, generated_at, snapshot_id);
