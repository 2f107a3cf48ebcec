-- Retention walks the rows older than a cutoff in (generated_at, snapshot_id)
-- order, a batch at a time; without this index every batch scans the table.
CREATE INDEX IF NOT EXISTS snapshots_by_time ON snapshots (generated_at, snapshot_id);
