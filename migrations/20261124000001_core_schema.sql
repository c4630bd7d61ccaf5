-- Switchboard's core schema: users and their keys, calls, the slot table, and every webhook as received.
-- Invariants enforced here rather than in code: enum values (CHECK), ownership (FOREIGN KEY),
-- one slot per call (active_calls.id = calls.id), one call per Bolna execution (partial UNIQUE).

-- Keeps updated_at honest on every table that has one (unless the statement sets it itself).
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id                        uuid PRIMARY KEY,
    name                      text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    direct_call_limit         integer NOT NULL DEFAULT 2 CHECK (direct_call_limit >= 0),
    campaign_call_limit       integer NOT NULL DEFAULT 5 CHECK (campaign_call_limit >= 0),
    default_agent_id          text NULL,
    default_from_phone_number text NULL CHECK (default_from_phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Only a SHA-256 of each key is stored; the key itself is shown once, when it is made.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash     bytea NOT NULL CHECK (length(key_hash) = 32),
    key_prefix   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz NULL,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
CREATE INDEX idx_api_keys_user_id ON api_keys (user_id);

-- One row per call attempt. Statuses: Switchboard's own before Bolna knows the call
-- (queued = waiting for a slot with no execution ID; initiating = slot held, request to Bolna in flight),
-- then Bolna's statuses verbatim.
CREATE TABLE calls (
    id                     uuid PRIMARY KEY,
    user_id                uuid NOT NULL REFERENCES users (id),
    call_type              text NOT NULL CHECK (call_type IN ('direct', 'campaign')),
    campaign_id            uuid NULL,
    contact_id             uuid NULL,
    agent_id               text NOT NULL CHECK (length(agent_id) BETWEEN 1 AND 100),
    recipient_phone_number text NOT NULL CHECK (recipient_phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    from_phone_number      text NULL CHECK (from_phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    user_data              jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(user_data) = 'object'),
    status                 text NOT NULL CHECK (status IN (
                               'queued', 'initiating',
                               'scheduled', 'prepared', 'rescheduled',
                               'initiated', 'ringing', 'in-progress', 'call-disconnected',
                               'completed', 'no-answer', 'busy', 'failed', 'canceled', 'stopped',
                               'error', 'balance-low')),
    bolna_execution_id     text NULL,
    idempotency_key        text NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_fingerprint    bytea NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    queued_at              timestamptz NULL,
    started_at             timestamptz NULL,
    answered_at            timestamptz NULL,
    ended_at               timestamptz NULL,
    conversation_duration  double precision NULL,
    total_cost             double precision NULL,
    transcript             text NULL,
    recording_url          text NULL,
    hangup_by              text NULL,
    hangup_reason          text NULL,
    hangup_provider_code   text NULL,
    answered_by_voice_mail boolean NULL,
    extracted_data         jsonb NULL,
    error                  text NULL,
    provider_status        text NULL,
    last_event_at          timestamptz NULL,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT calls_bolna_execution_id_key UNIQUE (bolna_execution_id),
    CONSTRAINT calls_user_id_idempotency_key_key UNIQUE (user_id, idempotency_key),
    CONSTRAINT calls_campaign_fields CHECK (
        (call_type = 'direct' AND campaign_id IS NULL AND contact_id IS NULL) OR call_type = 'campaign')
);
CREATE TRIGGER calls_set_updated_at BEFORE UPDATE ON calls
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- A user's calls, newest first (the list endpoint and its cursor).
CREATE INDEX idx_calls_user_created ON calls (user_id, created_at DESC, id DESC);
-- The queue: calls waiting for a slot, FIFO per user and type.
CREATE INDEX idx_calls_queue ON calls (user_id, call_type, created_at, id)
    WHERE status = 'queued' AND bolna_execution_id IS NULL;
-- The reconciler's work: calls whose request to Bolna may have been lost.
CREATE INDEX idx_calls_initiating ON calls (updated_at) WHERE status = 'initiating';

-- The slot table of the original system, kept recognisable: a row exists exactly while the call
-- holds one of its user's slots.
CREATE TABLE active_calls (
    id                 uuid PRIMARY KEY REFERENCES calls (id),
    user_id            uuid NOT NULL REFERENCES users (id),
    call_type          text NOT NULL CHECK (call_type IN ('direct', 'campaign')),
    started_at         timestamptz NOT NULL DEFAULT now(),
    bolna_execution_id text NULL,
    lease_expires_at   timestamptz NOT NULL
);
CREATE UNIQUE INDEX idx_active_calls_bolna_execution_id ON active_calls (bolna_execution_id)
    WHERE bolna_execution_id IS NOT NULL;
CREATE INDEX idx_active_calls_user_type ON active_calls (user_id, call_type);
CREATE INDEX idx_active_calls_lease ON active_calls (lease_expires_at);

-- Every webhook body as received, written before it is processed: nothing Bolna sends is lost.
CREATE TABLE webhook_events (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    execution_id text NULL,
    status       text NULL,
    call_id      uuid NULL REFERENCES calls (id),
    body         jsonb NULL,
    raw_body     text NULL,
    source_ip    text NULL,
    outcome      text NOT NULL DEFAULT 'pending' CHECK (outcome IN (
                     'pending', 'applied', 'duplicate', 'stale', 'unmatched', 'rejected')),
    detail       text NULL,
    processed_at timestamptz NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_events_body_present CHECK (body IS NOT NULL OR raw_body IS NOT NULL)
);
CREATE TRIGGER webhook_events_set_updated_at BEFORE UPDATE ON webhook_events
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX idx_webhook_events_execution ON webhook_events (execution_id, status);
CREATE INDEX idx_webhook_events_pending ON webhook_events (received_at) WHERE outcome IN ('pending', 'unmatched');
CREATE INDEX idx_webhook_events_call ON webhook_events (call_id);
