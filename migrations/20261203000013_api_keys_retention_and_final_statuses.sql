-- Issue 17: API keys with a lifecycle, the retention of Bolna's webhook bodies, and the
-- reconciler's look at calls whose final status never came.

-- Several keys per user, each with a name, an optional expiry and its last use. last_used_at is
-- written about once a minute per instance from memory, never once per request.
ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT 'default'
    CONSTRAINT api_keys_name_length CHECK (length(name) BETWEEN 1 AND 100);
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz NULL;
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz NULL;
-- Every instance reads the revocations of the last few seconds once a second to drop those keys
-- from its cache; this index keeps that read to the few revoked rows.
CREATE INDEX idx_api_keys_revoked ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;
-- A user's keys, in creation order (listings).
CREATE INDEX idx_api_keys_user_created ON api_keys (user_id, created_at);
DROP INDEX idx_api_keys_user_id;

-- Retention finds processed webhook bodies past webhook.retention_days by their arrival time.
-- Rows arrive in time order, so a BRIN index (a few pages for millions of rows, almost nothing to
-- maintain per insert) narrows the search to the oldest blocks; a B-tree would add a write to
-- every webhook for a task that runs every few minutes.
CREATE INDEX idx_webhook_events_received_brin ON webhook_events USING brin (received_at);

-- The audit log read by subject and by time.
CREATE INDEX idx_audit_log_at ON audit_log (at);

-- The reconciler's fourth pass: calls whose line is free but whose final status never came.
CREATE INDEX idx_calls_line_free_unfinished ON calls (updated_at) WHERE status = 'call-disconnected';
