-- Retention walks the rows older than a cutoff in (generated_at, snapshot_id)
-- order, a batch at a time; without this index every batch scans the table.
-- Migrations run in one transaction, so this is a plain CREATE INDEX: inserts
-- wait while it builds. IF NOT EXISTS lets an operator build it beforehand with
-- CREATE INDEX CONCURRENTLY (docs/deploy.md, "Retention").
CREATE INDEX IF NOT EXISTS snapshots_by_time ON snapshots (generated_at, snapshot_id);
