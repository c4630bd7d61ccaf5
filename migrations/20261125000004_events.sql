-- Live events (GET /v1/events): one row per call status change and per campaign status change,
-- written by triggers in the same transaction as the change, so every instance can stream every
-- change and a reconnect can replay what it missed.
--
-- Ordering: rows are read in (tx_id, id) order and only once their transaction is older than every
-- transaction still running (tx_id < pg_snapshot_xmin(pg_current_snapshot())). An identity value
-- alone is not enough: a transaction that took a smaller id can commit after one that took a
-- larger id, and a reader that had moved past the larger one would skip it for ever.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('call.updated', 'campaign.updated')),
    subject_id  uuid NOT NULL,
    status      text NOT NULL,
    -- For call.updated: the call as it was after this change (the API drops internal columns).
    -- campaign.updated carries no snapshot: it is rendered with the campaign's progress when sent.
    payload     jsonb NULL,
    tx_id       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_events_position ON events (tx_id, id);
CREATE INDEX idx_events_user_position ON events (user_id, tx_id, id);
CREATE INDEX idx_events_created_at ON events USING brin (created_at);

CREATE FUNCTION record_call_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (user_id, kind, subject_id, status, payload)
    VALUES (NEW.user_id, 'call.updated', NEW.id, NEW.status,
            to_jsonb(NEW) - ARRAY['request_fingerprint', 'reconcile_reason', 'cancel_requested_at',
                                  'last_event_at', 'hangup_provider_code', 'contact_id']);
    RETURN NULL;
END
$$;

CREATE TRIGGER calls_event_on_insert AFTER INSERT ON calls
    FOR EACH ROW EXECUTE FUNCTION record_call_event();
CREATE TRIGGER calls_event_on_change AFTER UPDATE ON calls
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.bolna_execution_id IS DISTINCT FROM NEW.bolna_execution_id)
    EXECUTE FUNCTION record_call_event();

CREATE FUNCTION record_campaign_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (user_id, kind, subject_id, status)
    VALUES (NEW.user_id, 'campaign.updated', NEW.id, NEW.status);
    RETURN NULL;
END
$$;

CREATE TRIGGER campaigns_event_on_insert AFTER INSERT ON campaigns
    FOR EACH ROW EXECUTE FUNCTION record_campaign_event();
CREATE TRIGGER campaigns_event_on_change AFTER UPDATE ON campaigns
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION record_campaign_event();

-- Single-use tickets for browsers (EventSource cannot send Authorization). Only a hash is kept.
CREATE TABLE event_tickets (
    ticket_hash bytea PRIMARY KEY CHECK (length(ticket_hash) = 32),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_event_tickets_expires_at ON event_tickets (expires_at);
