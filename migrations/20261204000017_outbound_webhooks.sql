-- Outbound webhooks (issue 15): each user's own endpoints, signed deliveries retried for about a
-- day, a delivery log, replay.
--
-- The `events` table is the outbox. A fan-out task follows it in stream order from a durable
-- cursor and, in one transaction with moving the cursor, writes one `webhook_messages` row per
-- event a user's endpoints want (the signed body, with the user's next sequence number) and one
-- `webhook_deliveries` row per endpoint. A crash between two fan-outs loses nothing and repeats
-- nothing. Current definitions of the triggers changed here: crates/call-service/sql/calls.sql.

-- Two more kinds: call.ended (once, when a call turns terminal) and campaign.completed.
ALTER TABLE events DROP CONSTRAINT events_kind_check;
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('call.updated', 'call.ended', 'campaign.updated', 'campaign.completed'));

CREATE OR REPLACE FUNCTION record_inserted_call_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (user_id, kind, subject_id, status, payload)
    SELECT n.user_id, k.kind, n.id, n.status, call_event_payload(n)
      FROM inserted_calls n
     CROSS JOIN LATERAL (VALUES ('call.updated'), ('call.ended')) AS k (kind)
     WHERE k.kind = 'call.updated' OR call_status_is_terminal(n.status);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION record_updated_call_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (user_id, kind, subject_id, status, payload)
    SELECT n.user_id, k.kind, n.id, n.status, call_event_payload(n)
      FROM updated_calls n JOIN previous_calls o ON o.id = n.id
     CROSS JOIN LATERAL (VALUES ('call.updated'), ('call.ended')) AS k (kind)
     WHERE (o.status IS DISTINCT FROM n.status
            OR o.provider_status IS DISTINCT FROM n.provider_status
            OR o.bolna_execution_id IS DISTINCT FROM n.bolna_execution_id)
       AND (k.kind = 'call.updated'
            OR (call_status_is_terminal(n.status) AND NOT call_status_is_terminal(o.status)));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION record_campaign_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (user_id, kind, subject_id, status)
    VALUES (NEW.user_id, 'campaign.updated', NEW.id, NEW.status);
    IF NEW.status = 'completed' THEN
        INSERT INTO events (user_id, kind, subject_id, status)
        VALUES (NEW.user_id, 'campaign.completed', NEW.id, NEW.status);
    END IF;
    RETURN NULL;
END
$$;

-- A user's endpoints. Secrets are sealed (AES-256-GCM, nonce then ciphertext) with
-- outbound_webhooks.secret_key; during a rotation's overlap the previous secret signs too.
CREATE TABLE webhook_endpoints (
    id                          uuid PRIMARY KEY,
    user_id                     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url                         text NOT NULL,
    events                      text[] NOT NULL,
    description                 text NULL,
    disabled                    boolean NOT NULL DEFAULT false,
    -- Why it is disabled: by its user, answered 410 Gone, or failed every attempt for days.
    disabled_reason             text NULL CHECK (disabled_reason IN ('user', 'gone', 'failing')),
    secret                      bytea NOT NULL,
    previous_secret             bytea NULL,
    previous_secret_expires_at  timestamptz NULL,
    -- The first failed attempt since the last success; NULL while the endpoint answers 2xx.
    failing_since               timestamptz NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (disabled = (disabled_reason IS NOT NULL))
);
CREATE INDEX idx_webhook_endpoints_user ON webhook_endpoints (user_id, created_at, id);

-- Each user's last sequence number: receivers order and de-duplicate by it.
CREATE TABLE webhook_sequences (
    user_id  uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last     bigint NOT NULL
);

-- One per event fanned out (or ping sent): the exact body every endpoint is sent.
CREATE TABLE webhook_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id    bigint NULL,
    event_type  text NOT NULL,
    sequence    bigint NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_messages_user ON webhook_messages (user_id, created_at, id);
CREATE INDEX idx_webhook_messages_created_at ON webhook_messages USING brin (created_at);

-- One per message and endpoint. `sending` holds a claim until next_attempt_at (the lease); a claim
-- that outlives it (its instance died) is taken again, as a retry.
CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id       bigint NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'succeeded', 'failed')),
    -- Every attempt ever made; the attempt numbers in webhook_delivery_attempts.
    attempts         integer NOT NULL DEFAULT 0,
    -- Attempts since the delivery was last armed (created, retried, replayed): the retry schedule's place.
    schedule_step    integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, message_id)
);
CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at, id)
    WHERE status IN ('pending', 'sending');
-- What is in flight per endpoint (the claim's cap), without reading the backlog.
CREATE INDEX idx_webhook_deliveries_sending ON webhook_deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'sending';
CREATE INDEX idx_webhook_deliveries_log ON webhook_deliveries (endpoint_id, id);
CREATE INDEX idx_webhook_deliveries_message ON webhook_deliveries (message_id);

CREATE TABLE webhook_delivery_attempts (
    delivery_id       bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt           integer NOT NULL,
    started_at        timestamptz NOT NULL,
    status_code       integer NULL,
    latency_ms        integer NOT NULL,
    error             text NULL,
    response_excerpt  text NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- Where the fan-out has read the events table to (one row; its lock makes one instance the fan-out).
CREATE TABLE webhook_fanout_cursor (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    tx_id     xid8 NOT NULL,
    event_id  bigint NOT NULL
);
INSERT INTO webhook_fanout_cursor (tx_id, event_id)
SELECT coalesce((SELECT tx_id FROM events ORDER BY tx_id DESC, id DESC LIMIT 1), '0'::xid8),
       coalesce((SELECT id FROM events ORDER BY tx_id DESC, id DESC LIMIT 1), 0);

CREATE TRIGGER webhook_endpoints_set_updated_at BEFORE UPDATE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
