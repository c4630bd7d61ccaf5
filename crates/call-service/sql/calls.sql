-- The call lifecycle's SQL functions and triggers as they are defined today.
--
-- Owner: crates/call-service. Read this file, not the migrations, to learn what runs today. A
-- change here ships as a new migration that repeats the changed definitions; the test
-- tests/api/definitions.rs fails until the migrated database matches this file. (The slot
-- ledger's own functions are in crates/concurrency/sql/ledger.sql.)

-- Rows keep their last change time (users, calls, webhook_events, campaigns, campaign_contacts).
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

-- A call's terminal statuses: it will not change again (Rust: CallStatus::is_terminal; a test
-- checks that the two agree).
CREATE OR REPLACE FUNCTION call_status_is_terminal(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_status IN ('completed', 'no-answer', 'busy', 'failed', 'canceled', 'stopped', 'error', 'balance-low')
$$;

-- A finished call's outcome: its terminal status, except that a completed call answered by a
-- voice mail box is `voicemail`; NULL while the call is not finished. The contact retry policy,
-- campaign reports, exports and usage all read outcomes through this one function.
CREATE OR REPLACE FUNCTION call_outcome(p_status text, p_answered_by_voice_mail boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_status = 'completed' AND p_answered_by_voice_mail THEN 'voicemail'
        WHEN call_status_is_terminal(p_status) THEN p_status
    END
$$;

-- Live events (GET /v1/events) and the outbox of outbound webhooks: one `events` row per call
-- change that matters to a client (its status or its execution ID), plus one `call.ended` when a
-- call turns terminal, written once per statement from its transition tables, in the same
-- transaction as the change. A call.updated row carries the call as it was after the change, less
-- internal columns. Readers order by (tx_id, id) and read a row only once its transaction is older
-- than every running one (crates/call-service/src/events/repository.rs).
-- A call as clients see it in an event, less internal columns.
CREATE OR REPLACE FUNCTION call_event_payload(c calls) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(c) - ARRAY['request_fingerprint', 'reconcile_reason', 'cancel_requested_at',
                               'last_event_at', 'hangup_provider_code', 'contact_id']
$$;

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

-- A change of Bolna's own word counts too: a `placed` call moves between Bolna's pre-dial statuses
-- (queued, rescheduled, …) without changing its status.
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

-- campaign.updated (and campaign.completed when it completes) carries no snapshot: it is rendered
-- with the campaign's progress when sent.
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

-- The triggers, by table.
CREATE OR REPLACE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE OR REPLACE TRIGGER calls_set_updated_at BEFORE UPDATE ON calls
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER calls_events_on_insert AFTER INSERT ON calls
    REFERENCING NEW TABLE AS inserted_calls
    FOR EACH STATEMENT EXECUTE FUNCTION record_inserted_call_events();
CREATE OR REPLACE TRIGGER calls_events_on_update AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS previous_calls NEW TABLE AS updated_calls
    FOR EACH STATEMENT EXECUTE FUNCTION record_updated_call_events();

CREATE OR REPLACE TRIGGER webhook_events_set_updated_at BEFORE UPDATE ON webhook_events
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE OR REPLACE TRIGGER campaigns_set_updated_at BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE OR REPLACE TRIGGER campaigns_event_on_insert AFTER INSERT ON campaigns
    FOR EACH ROW EXECUTE FUNCTION record_campaign_event();
CREATE OR REPLACE TRIGGER campaigns_event_on_change AFTER UPDATE ON campaigns
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION record_campaign_event();

CREATE OR REPLACE TRIGGER webhook_endpoints_set_updated_at BEFORE UPDATE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE OR REPLACE TRIGGER campaign_contacts_set_updated_at BEFORE UPDATE ON campaign_contacts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
