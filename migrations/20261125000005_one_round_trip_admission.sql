-- Reserving a slot and admitting a call, each in one round trip (issue 8: a call start was 13 round
-- trips, and PostgreSQL's per-statement work was the bottleneck). The rules are unchanged from the
-- statements these functions replace (crates/concurrency/src/reserve.rs, calls/admission.rs).
--
-- The functions are VOLATILE plpgsql: under READ COMMITTED every statement inside takes a fresh
-- snapshot, so the count of held slots is read after the user's row lock is granted and sees every
-- slot committed by whoever held that lock before.

-- Step one of a reservation: serialise on the user's row and decide. Locks a free account line too
-- (SKIP LOCKED) without claiming it, so the caller can still insert the call the line will point
-- at. outcome: 'free' (line = the locked line), 'held' (the call already holds a slot),
-- 'user_limit', 'account_limit', 'unknown_user'.
CREATE FUNCTION check_call_slot(
    p_user uuid, p_call_type text, p_call uuid, p_account_lines integer,
    OUT outcome text, OUT active bigint, OUT call_limit integer, OUT line integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_held boolean;
    v_start integer;
BEGIN
    -- Serialises this user's reservations across all instances until the caller commits.
    SELECT CASE p_call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END
      INTO call_limit
      FROM users u WHERE u.id = p_user FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        outcome := 'unknown_user';
        RETURN;
    END IF;
    SELECT count(*), COALESCE(bool_or(a.id = p_call), false) INTO active, v_held
      FROM active_calls a WHERE a.user_id = p_user AND a.call_type = p_call_type;
    IF v_held THEN
        outcome := 'held';
    ELSIF active >= call_limit THEN
        outcome := 'user_limit';
    ELSE
        -- The first free line at or after a random one, wrapping around. Starting every search at
        -- line 1 made all admissions race for the same few rows and walk past every line claimed
        -- before them (and their not yet vacuumed index entries): 10 ms per claim with 32 clients
        -- and thousands of live calls, two thirds of an admission's database time.
        v_start := 1 + floor(random() * p_account_lines)::integer;
        SELECT s.slot_no INTO line
          FROM account_slots s
         WHERE s.call_id IS NULL AND s.slot_no >= v_start AND s.slot_no <= p_account_lines
         ORDER BY s.slot_no LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF line IS NULL THEN
            SELECT s.slot_no INTO line
              FROM account_slots s
             WHERE s.call_id IS NULL AND s.slot_no < v_start
             ORDER BY s.slot_no LIMIT 1 FOR UPDATE SKIP LOCKED;
        END IF;
        outcome := CASE WHEN line IS NULL THEN 'account_limit' ELSE 'free' END;
    END IF;
END
$$;

-- Step two: the call (which must exist) takes the line locked by check_call_slot and its slot.
CREATE FUNCTION take_call_slot(
    p_user uuid, p_call_type text, p_call uuid, p_line integer, p_lease_seconds double precision)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE account_slots SET call_id = p_call, claimed_at = now() WHERE slot_no = p_line;
    INSERT INTO active_calls (id, user_id, call_type, started_at, lease_expires_at)
    VALUES (p_call, p_user, p_call_type, now(), now() + make_interval(secs => p_lease_seconds));
END
$$;

-- A whole reservation for an existing call. outcome: 'reserved', 'user_limit', 'account_limit',
-- 'unknown_user'; active and call_limit are set for 'user_limit'.
CREATE FUNCTION reserve_call_slot(
    p_user uuid, p_call_type text, p_call uuid, p_account_lines integer, p_lease_seconds double precision,
    OUT outcome text, OUT active bigint, OUT call_limit integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_line integer;
BEGIN
    SELECT c.outcome, c.active, c.call_limit, c.line INTO outcome, active, call_limit, v_line
      FROM check_call_slot(p_user, p_call_type, p_call, p_account_lines) c;
    IF outcome = 'free' THEN
        PERFORM take_call_slot(p_user, p_call_type, p_call, v_line, p_lease_seconds);
        outcome := 'reserved';
    ELSIF outcome = 'held' THEN
        outcome := 'reserved';
    END IF;
END
$$;

-- Admission: insert the call unless its number is on the user's do-not-call list or the user
-- already has a call with this Idempotency-Key, and give it a slot when one is free and nobody of
-- the same user and type waits ahead of it (FIFO) — as `initiating`, or else as `queued`.
-- p_may_reserve is false while Bolna is held back (circuit open): the call then queues.
-- Returns the inserted call, or no row when nothing was inserted (the caller tells why).
CREATE FUNCTION admit_call(
    p_id uuid, p_user uuid, p_call_type text, p_campaign uuid, p_contact uuid, p_agent text,
    p_recipient text, p_from text, p_user_data jsonb, p_idempotency_key text, p_fingerprint bytea,
    p_may_reserve boolean, p_account_lines integer, p_lease_seconds double precision)
RETURNS SETOF calls
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_slot record;
    v_status text := 'queued';
BEGIN
    IF EXISTS (SELECT 1 FROM do_not_call d WHERE d.user_id = p_user AND d.phone_number = p_recipient) THEN
        RETURN;
    END IF;
    IF p_may_reserve THEN
        SELECT * INTO v_slot FROM check_call_slot(p_user, p_call_type, p_id, p_account_lines);
        -- Read after the user's lock: a call of this user and type that waits goes first.
        IF v_slot.outcome = 'free' AND NOT EXISTS (
               SELECT 1 FROM calls q
                WHERE q.user_id = p_user AND q.call_type = p_call_type
                  AND q.status = 'queued' AND q.bolna_execution_id IS NULL) THEN
            v_status := 'initiating';
        END IF;
    END IF;
    RETURN QUERY
    INSERT INTO calls AS c (id, user_id, call_type, campaign_id, contact_id, agent_id, recipient_phone_number,
                            from_phone_number, user_data, status, idempotency_key, request_fingerprint, queued_at)
    VALUES (p_id, p_user, p_call_type, p_campaign, p_contact, p_agent, p_recipient, p_from, p_user_data,
            v_status, p_idempotency_key, p_fingerprint, CASE WHEN v_status = 'queued' THEN now() END)
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING c.*;
    IF FOUND AND v_status = 'initiating' THEN
        PERFORM take_call_slot(p_user, p_call_type, p_id, v_slot.line, p_lease_seconds);
    END IF;
END
$$;
