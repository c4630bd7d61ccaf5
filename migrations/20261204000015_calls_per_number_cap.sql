-- Issue 16 (results and spend), the per-number frequency cap: at most so many calls of a user to one
-- number in 24 hours, enforced by admission under the user's row lock like the slot limits.
-- crates/concurrency/sql/ledger.sql holds the current definitions (rule 6 and admit_calls).

-- The user's own cap; NULL = limits.max_calls_per_number_per_day, 0 = none for this user.
ALTER TABLE users ADD COLUMN max_calls_per_number_per_day integer NULL
    CHECK (max_calls_per_number_per_day >= 0);

-- A user's calls to one number (the cap's count).
CREATE INDEX idx_calls_user_number ON calls (user_id, recipient_phone_number);

-- admit_calls takes the configured cap.
DROP FUNCTION admit_calls(jsonb, boolean, integer, integer, double precision, double precision);

-- Rule 6, the per-number cap: how many calls of a user to one number may fall in 24 hours — the
-- user's own figure (users.max_calls_per_number_per_day), else p_default
-- (limits.max_calls_per_number_per_day). NULL: no cap (a figure of 0, or none anywhere).
CREATE OR REPLACE FUNCTION number_call_cap(p_user uuid, p_default integer)
RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT nullif(coalesce(u.max_calls_per_number_per_day, p_default), 0) FROM users u WHERE u.id = p_user
$$;

-- The calls that count against the cap for a call to p_number due at p_at: every call of the user
-- to that number, direct or of any campaign, due in the 24 hours before p_at or later (a call
-- scheduled ahead counts now), except one canceled before it reached Bolna. Their due times, oldest
-- first. Served by idx_calls_user_number.
CREATE OR REPLACE FUNCTION calls_counted_against_number_cap(p_user uuid, p_number text, p_at timestamptz)
RETURNS TABLE (due_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(c.scheduled_at, c.created_at) FROM calls c
     WHERE c.user_id = p_user AND c.recipient_phone_number = p_number
       AND coalesce(c.scheduled_at, c.created_at) > p_at - interval '24 hours'
       AND NOT (c.status = 'canceled' AND c.bolna_execution_id IS NULL)
     ORDER BY 1
$$;

-- When a call to p_number due at p_at fits under the cap: NULL when it fits now (or there is no
-- cap), else the time enough counted calls have left the 24 hours (the oldest leave first).
CREATE OR REPLACE FUNCTION number_cap_frees_at(p_user uuid, p_number text, p_at timestamptz, p_default integer)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT k.due_at + interval '24 hours'
      FROM number_call_cap(p_user, p_default) AS cap(calls),
           (SELECT c.due_at, count(*) OVER () AS counted, row_number() OVER (ORDER BY c.due_at) AS nth
              FROM calls_counted_against_number_cap(p_user, p_number, p_at) c) k
     WHERE cap.calls IS NOT NULL AND k.counted >= cap.calls AND k.nth = k.counted - cap.calls + 1
$$;

-- Admission of a batch of new calls (one call is a batch of one), in one statement from the
-- client's side. A call whose number is on its user's do-not-call list, or whose Idempotency-Key
-- its user already used (in the table or earlier in the batch), or that would go over its user's
-- per-number cap (rule 6; calls earlier in the batch count), is not inserted. A call with a
-- scheduled_at (the caller sets it only when that is still to come) is inserted `scheduled`: it
-- holds nothing until enqueue_due_scheduled_calls puts it in the queue at its time. The others are
-- inserted as `initiating` holding a slot, a send token and a line when rules 2-5 allow (nobody of
-- the same user and type waits, the user has a free slot of that type, a token and a line are
-- free), else as `queued`. Calls of one user and type take free slots in batch order, and the calls
-- left without a token or a line are a suffix of that order, so FIFO holds within the batch too.
-- p_may_reserve is false while Bolna is
-- held back (circuit open): every call then queues. Returns the inserted calls (any order); the
-- caller tells why a call is missing.
CREATE OR REPLACE FUNCTION admit_calls(
    p_calls jsonb, p_may_reserve boolean, p_account_lines integer, p_send_tokens integer,
    p_send_window_seconds double precision, p_lease_seconds double precision, p_number_cap integer)
RETURNS SETOF calls
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- Per call, in batch order: NULL (not inserted), 'queued', or 'candidate' (a slot is free).
    v_decisions text[];
    v_ids uuid[];
    v_tokens integer[];
    v_lines integer[];
    -- The calls that take a slot, and the token and line each takes.
    v_started uuid[] := '{}';
    v_started_tokens integer[] := '{}';
    v_started_lines integer[] := '{}';
BEGIN
    -- Serialises admissions per user across all instances until commit. Every batch locks its
    -- users in one order (by id), so concurrent batches never wait on each other in a cycle.
    PERFORM 1 FROM users u
     WHERE u.id IN (SELECT (e ->> 'user_id')::uuid FROM jsonb_array_elements(p_calls) e)
     ORDER BY u.id FOR NO KEY UPDATE;

    -- A new statement, so a snapshot taken after the locks were granted.
    WITH input AS (SELECT * FROM admission_rows(p_calls)),
    admissible AS (
        SELECT i.* FROM input i
         WHERE NOT EXISTS (SELECT 1 FROM do_not_call d
                            WHERE d.user_id = i.user_id AND d.phone_number = i.recipient_phone_number)
           AND (i.idempotency_key IS NULL OR (
                NOT EXISTS (SELECT 1 FROM calls c
                             WHERE c.user_id = i.user_id AND c.idempotency_key = i.idempotency_key)
                AND NOT EXISTS (SELECT 1 FROM input j
                                 WHERE j.user_id = i.user_id AND j.idempotency_key = i.idempotency_key
                                   AND j.ord < i.ord)))),
    within_cap AS (
        SELECT a.* FROM (
            SELECT a.*, number_call_cap(a.user_id, p_number_cap) AS cap,
                   row_number() OVER (PARTITION BY a.user_id, a.recipient_phone_number ORDER BY a.ord) AS nth
              FROM admissible a) a
         WHERE a.cap IS NULL
            OR a.nth + (SELECT count(*) FROM calls_counted_against_number_cap(
                            a.user_id, a.recipient_phone_number, coalesce(a.scheduled_at, now()))) <= a.cap),
    free AS (
        SELECT g.user_id, g.call_type,
               CASE WHEN p_may_reserve AND NOT EXISTS (SELECT 1 FROM slot_queue_head(g.user_id, g.call_type))
                    THEN coalesce((SELECT f.free FROM user_free_slots(g.user_id, g.call_type) f), 0)
                    ELSE 0 END AS slots
          FROM (SELECT DISTINCT a.user_id, a.call_type FROM within_cap a) g),
    decided AS (
        SELECT a.ord, 'scheduled' AS decision FROM within_cap a WHERE a.scheduled_at IS NOT NULL
        UNION ALL
        SELECT a.ord,
               CASE WHEN row_number() OVER (PARTITION BY a.user_id, a.call_type ORDER BY a.ord) <= f.slots
                    THEN 'candidate' ELSE 'queued' END
          FROM within_cap a JOIN free f ON f.user_id = a.user_id AND f.call_type = a.call_type
         WHERE a.scheduled_at IS NULL)
    SELECT array_agg(d.decision ORDER BY i.ord), array_agg(i.id ORDER BY i.ord) INTO v_decisions, v_ids
      FROM input i LEFT JOIN decided d ON d.ord = i.ord;

    -- The n-th candidate takes the n-th token and line found; candidates past the last queue.
    v_tokens := claim_send_tokens(
        (SELECT count(*)::integer FROM unnest(v_decisions) d WHERE d = 'candidate'), p_send_tokens,
        p_send_window_seconds);
    v_lines := claim_account_lines(cardinality(v_tokens), p_account_lines);
    FOR k IN 1 .. coalesce(cardinality(v_decisions), 0) LOOP
        IF v_decisions[k] = 'candidate' AND cardinality(v_started) < cardinality(v_lines) THEN
            v_started := v_started || v_ids[k];
            v_started_tokens := v_started_tokens || v_tokens[cardinality(v_started)];
            v_started_lines := v_started_lines || v_lines[cardinality(v_started)];
        END IF;
    END LOOP;

    RETURN QUERY
    INSERT INTO calls AS c (id, user_id, call_type, campaign_id, contact_id, agent_id,
                            recipient_phone_number, from_phone_number, user_data, status,
                            idempotency_key, request_fingerprint, queued_at, scheduled_at)
    SELECT i.id, i.user_id, i.call_type, i.campaign_id, i.contact_id, i.agent_id,
           i.recipient_phone_number, i.from_phone_number, i.user_data,
           CASE WHEN i.id = ANY (v_started) THEN 'initiating'
                WHEN v_decisions[i.ord] = 'scheduled' THEN 'scheduled' ELSE 'queued' END,
           i.idempotency_key, i.request_fingerprint,
           CASE WHEN i.id = ANY (v_started) OR v_decisions[i.ord] = 'scheduled' THEN NULL ELSE now() END,
           i.scheduled_at
      FROM admission_rows(p_calls) i
     WHERE v_decisions[i.ord] IS NOT NULL
     ORDER BY i.ord
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING c.*;

    IF cardinality(v_started) > 0 THEN
        PERFORM take_slots(v_started, v_started_lines, v_started_tokens, p_lease_seconds);
    END IF;
    -- A new scheduled call may be due before any dispatcher's next wake: wake them all at commit.
    IF 'scheduled' = ANY (v_decisions) THEN
        PERFORM pg_notify('switchboard_dispatch', '');
    END IF;
END
$$;
