-- Every webhook body is kept exactly as received (issue 20): `received` holds its bytes, whatever
-- they are (a body that is not JSON, or JSON with NUL characters, which `jsonb` and `text` refuse).
-- `body` stays the parsed JSON, for queries, without NUL characters. `raw_body` (text) is only
-- in rows written before this change.
ALTER TABLE webhook_events ADD COLUMN received bytea NULL;
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_body_present;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_body_present
    CHECK (received IS NOT NULL OR body IS NOT NULL OR raw_body IS NOT NULL);
