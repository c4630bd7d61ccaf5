-- Group commit for the hot paths (issue 8). Concurrent call starts are admitted by one statement
-- (admit_calls), so a burst of N requests costs one round trip, one commit and one pass of
-- executor start-up, constraint and trigger set-up instead of N. At 32 clients the per-statement
-- overhead, not the rows written, was most of an admission's database time.

-- Live events: written once per statement from its transition tables instead of once per row, so
-- a statement that admits or records N calls inserts its N events with one INSERT. The rows and
-- their order within a transaction are unchanged (every call change of a statement shares its
-- tx_id; readers order by (tx_id, id)).
DROP TRIGGER calls_event_on_insert ON calls;
DROP TRIGGER calls_event_on_change ON calls;
DROP FUNCTION record_call_event();

CREATE FUNCTION record_inserted_call_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (user_id, kind, subject_id, status, payload)
    SELECT n.user_id, 'call.updated', n.id, n.status,
           to_jsonb(n) - ARRAY['request_fingerprint', 'reconcile_reason', 'cancel_requested_at',
                               'last_event_at', 'hangup_provider_code', 'contact_id']
      FROM inserted_calls n;
    RETURN NULL;
END
$$;

-- A call change is an event when its status or its execution ID changed (as before).
CREATE FUNCTION record_updated_call_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (user_id, kind, subject_id, status, payload)
    SELECT n.user_id, 'call.updated', n.id, n.status,
           to_jsonb(n) - ARRAY['request_fingerprint', 'reconcile_reason', 'cancel_requested_at',
                               'last_event_at', 'hangup_provider_code', 'contact_id']
      FROM updated_calls n JOIN previous_calls o ON o.id = n.id
     WHERE o.status IS DISTINCT FROM n.status
        OR o.bolna_execution_id IS DISTINCT FROM n.bolna_execution_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER calls_events_on_insert AFTER INSERT ON calls
    REFERENCING NEW TABLE AS inserted_calls
    FOR EACH STATEMENT EXECUTE FUNCTION record_inserted_call_events();
CREATE TRIGGER calls_events_on_update AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS previous_calls NEW TABLE AS updated_calls
    FOR EACH STATEMENT EXECUTE FUNCTION record_updated_call_events();

-- Admission of a batch of calls (arrays of equal length, one element per call, in arrival order),
-- by the rules admit_call applied to one: a call whose number is on its user's do-not-call list, or
-- whose Idempotency-Key its user already used (in the table or earlier in the batch), is not
-- inserted; the others are inserted as `initiating` holding a slot when their user has one free of
-- that type, nobody of the same user and type waits (FIFO) and an account line is free, else as
-- `queued`. Calls of one user and type take free slots in batch order, and the calls left without
-- an account line are a suffix of that order, so FIFO holds within the batch too.
-- p_may_reserve is false while Bolna is held back (circuit open): every call then queues.
-- Returns the inserted calls (any order); the caller tells why a call is missing.
CREATE FUNCTION admit_calls(
    p_ids uuid[], p_users uuid[], p_call_types text[], p_campaigns uuid[], p_contacts uuid[],
    p_agents text[], p_recipients text[], p_froms text[], p_user_data jsonb[],
    p_idempotency_keys text[], p_fingerprints bytea[],
    p_may_reserve boolean, p_account_lines integer, p_lease_seconds double precision)
RETURNS SETOF calls
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- Per call: NULL (not inserted), 'queued', or 'candidate' (a user slot is free for it).
    v_decisions text[];
    v_wanted integer;
    v_lines integer[];
    v_more integer[];
    v_start integer;
BEGIN
    -- Serialises admissions per user across all instances until commit. Every batch locks its
    -- users in one order (by id), so concurrent batches never wait on each other in a cycle.
    PERFORM 1 FROM users u WHERE u.id = ANY (p_users) ORDER BY u.id FOR NO KEY UPDATE;

    -- A new statement, so a new snapshot taken after the locks were granted (READ COMMITTED):
    -- the slot counts include every slot committed by whoever held a lock before.
    WITH input AS (
        SELECT i.* FROM unnest(p_ids, p_users, p_call_types, p_recipients, p_idempotency_keys)
                   WITH ORDINALITY AS i(id, user_id, call_type, recipient, idempotency_key, ord)),
    admissible AS (
        SELECT i.* FROM input i
         WHERE NOT EXISTS (SELECT 1 FROM do_not_call d
                            WHERE d.user_id = i.user_id AND d.phone_number = i.recipient)
           AND (i.idempotency_key IS NULL OR (
                NOT EXISTS (SELECT 1 FROM calls c
                             WHERE c.user_id = i.user_id AND c.idempotency_key = i.idempotency_key)
                AND NOT EXISTS (SELECT 1 FROM input j
                                 WHERE j.user_id = i.user_id AND j.idempotency_key = i.idempotency_key
                                   AND j.ord < i.ord)))),
    free_slots AS (
        SELECT g.user_id, g.call_type,
               CASE WHEN NOT p_may_reserve OR u.id IS NULL OR EXISTS (
                        SELECT 1 FROM calls q
                         WHERE q.user_id = g.user_id AND q.call_type = g.call_type
                           AND q.status = 'queued' AND q.bolna_execution_id IS NULL) THEN 0
                    ELSE (CASE g.call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END)
                         - (SELECT count(*) FROM active_calls a
                             WHERE a.user_id = g.user_id AND a.call_type = g.call_type)
               END AS free
          FROM (SELECT DISTINCT user_id, call_type FROM admissible) g
          LEFT JOIN users u ON u.id = g.user_id),
    decided AS (
        SELECT a.ord,
               CASE WHEN row_number() OVER (PARTITION BY a.user_id, a.call_type ORDER BY a.ord) <= f.free
                    THEN 'candidate' ELSE 'queued' END AS decision
          FROM admissible a JOIN free_slots f ON f.user_id = a.user_id AND f.call_type = a.call_type)
    SELECT array_agg(d.decision ORDER BY i.ord) INTO v_decisions
      FROM input i LEFT JOIN decided d ON d.ord = i.ord;

    -- Account lines for the candidates: the first free lines at or after a random one, wrapping
    -- around (starting every search at line 1 made all admissions race for the same rows).
    SELECT count(*) INTO v_wanted FROM unnest(v_decisions) d WHERE d = 'candidate';
    IF v_wanted > 0 THEN
        v_start := 1 + floor(random() * p_account_lines)::integer;
        SELECT array_agg(l.slot_no ORDER BY l.slot_no) INTO v_lines FROM (
            SELECT s.slot_no FROM account_slots s
             WHERE s.call_id IS NULL AND s.slot_no >= v_start AND s.slot_no <= p_account_lines
             ORDER BY s.slot_no LIMIT v_wanted FOR UPDATE SKIP LOCKED) l;
        IF coalesce(cardinality(v_lines), 0) < v_wanted THEN
            SELECT array_agg(l.slot_no ORDER BY l.slot_no) INTO v_more FROM (
                SELECT s.slot_no FROM account_slots s
                 WHERE s.call_id IS NULL AND s.slot_no < v_start
                 ORDER BY s.slot_no LIMIT v_wanted - coalesce(cardinality(v_lines), 0)
                 FOR UPDATE SKIP LOCKED) l;
            v_lines := coalesce(v_lines, '{}') || coalesce(v_more, '{}');
        END IF;
    END IF;

    RETURN QUERY
    WITH input AS (
        SELECT i.*,
               -- The n-th candidate takes the n-th line found; candidates past the last line queue.
               CASE WHEN i.decision = 'candidate'
                    THEN v_lines[count(*) FILTER (WHERE i.decision = 'candidate') OVER (ORDER BY i.ord)]
               END AS line
          FROM unnest(p_ids, p_users, p_call_types, p_campaigns, p_contacts, p_agents, p_recipients,
                      p_froms, p_user_data, p_idempotency_keys, p_fingerprints, v_decisions)
               WITH ORDINALITY AS i(id, user_id, call_type, campaign_id, contact_id, agent_id, recipient,
                                    from_number, user_data, idempotency_key, fingerprint, decision, ord)
         WHERE i.decision IS NOT NULL),
    inserted AS (
        INSERT INTO calls AS c (id, user_id, call_type, campaign_id, contact_id, agent_id,
                                recipient_phone_number, from_phone_number, user_data, status,
                                idempotency_key, request_fingerprint, queued_at)
        SELECT i.id, i.user_id, i.call_type, i.campaign_id, i.contact_id, i.agent_id, i.recipient,
               i.from_number, i.user_data, CASE WHEN i.line IS NULL THEN 'queued' ELSE 'initiating' END,
               i.idempotency_key, i.fingerprint, CASE WHEN i.line IS NULL THEN now() END
          FROM input i
         ORDER BY i.ord
        ON CONFLICT (user_id, idempotency_key) DO NOTHING
        RETURNING c.*),
    slots AS (
        INSERT INTO active_calls (id, user_id, call_type, started_at, lease_expires_at)
        SELECT n.id, n.user_id, n.call_type, now(), now() + make_interval(secs => p_lease_seconds)
          FROM inserted n
         WHERE n.status = 'initiating'),
    lines AS (
        UPDATE account_slots s SET call_id = n.id, claimed_at = now()
          FROM input i JOIN inserted n ON n.id = i.id
         WHERE s.slot_no = i.line AND n.status = 'initiating')
    SELECT * FROM inserted;
END
$$;

-- Replaced by admit_calls (a batch of one admits one call).
DROP FUNCTION admit_call(uuid, uuid, text, uuid, uuid, text, text, text, jsonb, text, bytea, boolean, integer,
                         double precision);
