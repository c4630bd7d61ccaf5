-- Bolna as it really is (issue 14).
--
-- 1. Bolna's rate limit, shared by every instance: bolna_send_tokens is a pool of send tokens, one
--    row per `POST /call` Bolna allows in its window (bolna.max_calls_per_minute rows, sized at
--    start-up like account_slots). A call takes a token with its slot; the token is free again a
--    window later.
-- 2. Scheduled direct calls: `scheduled` is Switchboard's own status (a call waiting for its
--    scheduled_at, holding nothing). At its time it joins the queue, placed by that time: the
--    queue is ordered by due_at = coalesce(scheduled_at, created_at).
-- 3. Even campaign pacing: campaigns.next_dial_at is when pacing lets the campaign's next dial go
--    (its slot on the grid of one dial every 60/N seconds).

CREATE TABLE bolna_send_tokens (
    token_no integer PRIMARY KEY CHECK (token_no > 0),
    -- When a call last took it; free again once the rate window has passed since.
    taken_at timestamptz NOT NULL DEFAULT '-infinity'
);

ALTER TABLE campaigns ADD COLUMN next_dial_at timestamptz NULL;

ALTER TABLE calls ADD COLUMN scheduled_at timestamptz NULL;
ALTER TABLE calls DROP CONSTRAINT calls_status_check;
ALTER TABLE calls ADD CONSTRAINT calls_status_check CHECK (status IN (
    'scheduled', 'queued', 'initiating', 'placed',
    'initiated', 'ringing', 'in-progress', 'call-disconnected',
    'completed', 'no-answer', 'busy', 'failed', 'canceled', 'stopped', 'error', 'balance-low'));
ALTER TABLE calls ADD CONSTRAINT calls_scheduled_has_a_time CHECK (status <> 'scheduled' OR scheduled_at IS NOT NULL);
CREATE INDEX idx_calls_scheduled ON calls (scheduled_at, id) WHERE status = 'scheduled';

-- The queue's indexes, in the queue's order.
DROP INDEX idx_calls_queue;
CREATE INDEX idx_calls_queue ON calls (user_id, call_type, (coalesce(scheduled_at, created_at)), id)
    WHERE status = 'queued';
DROP INDEX idx_calls_queue_fifo;
CREATE INDEX idx_calls_queue_fifo ON calls ((coalesce(scheduled_at, created_at)), id) WHERE status = 'queued';

-- Definitions whose columns or parameters change are dropped, then defined again.
DROP VIEW slot_queue;
DROP FUNCTION slot_queue_head(uuid, text);
DROP FUNCTION take_slots(uuid[], integer[], double precision);
DROP FUNCTION reserve_call_slot(uuid, text, uuid, integer, double precision);
DROP FUNCTION start_queue_head(uuid, text, integer, double precision);
DROP FUNCTION admission_rows(jsonb);
DROP FUNCTION admit_calls(jsonb, boolean, integer, double precision);

-- Changed definitions, as crates/concurrency/sql/ledger.sql gives them today.

-- Rule 1, the queue: a call waits for a slot while it is `queued` (Switchboard's own status; a
-- call Bolna has accepted is `placed`, one waiting for its time is `scheduled`). Its place is set
-- by when it asked to start (due_at): its scheduled time, else its creation. Served by the partial
-- indexes idx_calls_queue and idx_calls_queue_fifo.
CREATE OR REPLACE VIEW slot_queue AS
    SELECT c.id, c.user_id, c.call_type, coalesce(c.scheduled_at, c.created_at) AS due_at
      FROM calls c
     WHERE c.status = 'queued';

-- Rule 2, FIFO: the head of a user's queue of one call type is the call that has waited longest
-- (the earliest due_at). A new call may take a free slot only when its queue is empty; a freed slot
-- goes to the head.
CREATE OR REPLACE FUNCTION slot_queue_head(p_user uuid, p_call_type text)
RETURNS TABLE (id uuid, due_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT q.id, q.due_at
      FROM slot_queue q
     WHERE q.user_id = p_user AND q.call_type = p_call_type
     ORDER BY q.due_at, q.id
     LIMIT 1
$$;

-- Rule 5, Bolna's rate limit (bolna.max_calls_per_minute, for every instance together): locks up
-- to p_wanted send tokens numbered 1..p_tokens that no call took in the last p_window_seconds, and
-- returns them. A call takes one with its slot and keeps it for the window, so no window of that
-- length starts more calls than there are tokens. Searched like the lines (a random start, SKIP
-- LOCKED), so admissions of different users do not queue on one counter row.
CREATE OR REPLACE FUNCTION claim_send_tokens(p_wanted integer, p_tokens integer, p_window_seconds double precision)
RETURNS integer[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_start integer := 1 + floor(random() * p_tokens)::integer;
    v_free_since timestamptz := now() - make_interval(secs => p_window_seconds);
    v_tokens integer[];
    v_more integer[];
BEGIN
    IF p_wanted <= 0 THEN
        RETURN '{}';
    END IF;
    SELECT coalesce(array_agg(t.token_no), '{}') INTO v_tokens FROM (
        SELECT b.token_no FROM bolna_send_tokens b
         WHERE b.taken_at <= v_free_since AND b.token_no >= v_start AND b.token_no <= p_tokens
         ORDER BY b.token_no LIMIT p_wanted FOR UPDATE SKIP LOCKED) t;
    IF cardinality(v_tokens) < p_wanted THEN
        SELECT coalesce(array_agg(t.token_no), '{}') INTO v_more FROM (
            SELECT b.token_no FROM bolna_send_tokens b
             WHERE b.taken_at <= v_free_since AND b.token_no < v_start
             ORDER BY b.token_no LIMIT p_wanted - cardinality(v_tokens) FOR UPDATE SKIP LOCKED) t;
        v_tokens := v_tokens || v_more;
    END IF;
    RETURN v_tokens;
END
$$;

-- Taking slots: each call gets its slot row, with the lease running from now, the line
-- claim_account_lines locked for it (the slot copies the call's user and type), and the send token
-- claim_send_tokens locked for it, taken from now. A call that does not exist (its insert lost an
-- Idempotency-Key race) takes nothing: its line and token stay free.
CREATE OR REPLACE FUNCTION take_slots(
    p_calls uuid[], p_lines integer[], p_tokens integer[], p_lease_seconds double precision)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    WITH taken AS (
        INSERT INTO active_calls (id, user_id, call_type, started_at, lease_expires_at)
        SELECT c.id, c.user_id, c.call_type, now(), now() + make_interval(secs => p_lease_seconds)
          FROM unnest(p_calls) AS t(id) JOIN calls c ON c.id = t.id
        RETURNING id),
    lines AS (
        UPDATE account_slots s SET call_id = t.id, claimed_at = now()
          FROM unnest(p_calls, p_lines) AS t(id, line) JOIN taken USING (id)
         WHERE s.slot_no = t.line)
    UPDATE bolna_send_tokens b SET taken_at = now()
      FROM unnest(p_calls, p_tokens) AS t(id, token) JOIN taken USING (id)
     WHERE b.token_no = t.token;
END
$$;

-- Reserving a slot for an existing call (rules 3 to 5). outcome: 'reserved' (also when it held
-- one already), 'user_limit' (with active and call_limit), 'rate_limit', 'account_limit',
-- 'unknown_user'.
CREATE OR REPLACE FUNCTION reserve_call_slot(
    p_user uuid, p_call_type text, p_call uuid, p_account_lines integer, p_send_tokens integer,
    p_send_window_seconds double precision, p_lease_seconds double precision,
    OUT outcome text, OUT active bigint, OUT call_limit integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_free bigint;
    v_tokens integer[];
    v_lines integer[];
BEGIN
    -- Serialises this user's reservations across all instances until the caller commits.
    SELECT CASE p_call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END
      INTO call_limit
      FROM users u WHERE u.id = p_user FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        outcome := 'unknown_user';
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM active_calls a WHERE a.id = p_call) THEN
        outcome := 'reserved';
        RETURN;
    END IF;
    SELECT f.free INTO v_free FROM user_free_slots(p_user, p_call_type) f;
    IF v_free <= 0 THEN
        outcome := 'user_limit';
        active := call_limit - v_free;
        RETURN;
    END IF;
    v_tokens := claim_send_tokens(1, p_send_tokens, p_send_window_seconds);
    IF cardinality(v_tokens) = 0 THEN
        outcome := 'rate_limit';
        RETURN;
    END IF;
    v_lines := claim_account_lines(1, p_account_lines);
    IF cardinality(v_lines) = 0 THEN
        outcome := 'account_limit';
        RETURN;
    END IF;
    PERFORM take_slots(ARRAY[p_call], v_lines, v_tokens, p_lease_seconds);
    outcome := 'reserved';
END
$$;

-- Starting the head of a user's queue (rule 2, then a reservation): used by the hand-over of a
-- freed slot and by the dispatcher alike. Under the user's row lock the head is read, locked, and
-- given a slot and a line by reserve_call_slot; it becomes `initiating` (its queued_at is kept: it
-- waited). outcome: 'started' (call_id = the head), 'empty', 'user_limit', 'rate_limit',
-- 'account_limit', or 'busy' (another transaction holds the head: a cancel in flight).
CREATE OR REPLACE FUNCTION start_queue_head(
    p_user uuid, p_call_type text, p_account_lines integer, p_send_tokens integer,
    p_send_window_seconds double precision, p_lease_seconds double precision,
    OUT outcome text, OUT call_id uuid)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- The lock reserve_call_slot takes, taken first so that the head read below is the one that
    -- every other claimer of this queue sees after us.
    PERFORM 1 FROM users u WHERE u.id = p_user FOR NO KEY UPDATE;
    SELECT h.id INTO call_id FROM slot_queue_head(p_user, p_call_type) h;
    IF call_id IS NULL THEN
        outcome := 'empty';
        RETURN;
    END IF;
    PERFORM 1 FROM calls c WHERE c.id = call_id FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        outcome := 'busy';
        call_id := NULL;
        RETURN;
    END IF;
    SELECT r.outcome INTO outcome
      FROM reserve_call_slot(p_user, p_call_type, call_id, p_account_lines, p_send_tokens,
                             p_send_window_seconds, p_lease_seconds) r;
    IF outcome <> 'reserved' THEN
        call_id := NULL;
        RETURN;
    END IF;
    UPDATE calls SET status = 'initiating' WHERE id = call_id;
    outcome := 'started';
END
$$;

-- Scheduled calls whose time has come (p_now, the caller's clock) join the queue, at most p_limit,
-- the earliest first; their place in it is their scheduled time (due_at). A call another
-- transaction holds (a cancel in flight) is left for later. Returns how many joined, and when the
-- earliest call still scheduled is due (no later than p_now when some were left).
CREATE OR REPLACE FUNCTION enqueue_due_scheduled_calls(
    p_now timestamptz, p_limit integer, OUT enqueued integer, OUT next_due_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE calls c SET status = 'queued', queued_at = now()
      FROM (SELECT s.id FROM calls s
             WHERE s.status = 'scheduled' AND s.scheduled_at <= p_now
             ORDER BY s.scheduled_at, s.id LIMIT p_limit FOR UPDATE SKIP LOCKED) due
     WHERE c.id = due.id;
    GET DIAGNOSTICS enqueued = ROW_COUNT;
    SELECT min(s.scheduled_at) INTO next_due_at FROM calls s WHERE s.status = 'scheduled';
END
$$;

-- The new calls of an admission, one JSON object each, in arrival order (see
-- concurrency::CallToAdmit for the fields).
CREATE OR REPLACE FUNCTION admission_rows(p_calls jsonb)
RETURNS TABLE (ord bigint, id uuid, user_id uuid, call_type text, campaign_id uuid, contact_id uuid,
               agent_id text, recipient_phone_number text, from_phone_number text, user_data jsonb,
               idempotency_key text, request_fingerprint bytea, scheduled_at timestamptz)
LANGUAGE sql IMMUTABLE AS $$
    SELECT e.ord, r.id, r.user_id, r.call_type, r.campaign_id, r.contact_id, r.agent_id,
           r.recipient_phone_number, r.from_phone_number, coalesce(r.user_data, '{}'), r.idempotency_key,
           decode(r.request_fingerprint, 'hex'), r.scheduled_at
      FROM jsonb_array_elements(p_calls) WITH ORDINALITY AS e(call, ord),
           jsonb_to_record(e.call) AS r(id uuid, user_id uuid, call_type text, campaign_id uuid,
                                        contact_id uuid, agent_id text, recipient_phone_number text,
                                        from_phone_number text, user_data jsonb, idempotency_key text,
                                        request_fingerprint text, scheduled_at timestamptz)
$$;

-- Admission of a batch of new calls (one call is a batch of one), in one statement from the
-- client's side. A call whose number is on its user's do-not-call list, or whose Idempotency-Key
-- its user already used (in the table or earlier in the batch), is not inserted. A call with a
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
    p_send_window_seconds double precision, p_lease_seconds double precision)
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
    free AS (
        SELECT g.user_id, g.call_type,
               CASE WHEN p_may_reserve AND NOT EXISTS (SELECT 1 FROM slot_queue_head(g.user_id, g.call_type))
                    THEN coalesce((SELECT f.free FROM user_free_slots(g.user_id, g.call_type) f), 0)
                    ELSE 0 END AS slots
          FROM (SELECT DISTINCT a.user_id, a.call_type FROM admissible a) g),
    decided AS (
        SELECT a.ord, 'scheduled' AS decision FROM admissible a WHERE a.scheduled_at IS NOT NULL
        UNION ALL
        SELECT a.ord,
               CASE WHEN row_number() OVER (PARTITION BY a.user_id, a.call_type ORDER BY a.ord) <= f.slots
                    THEN 'candidate' ELSE 'queued' END
          FROM admissible a JOIN free f ON f.user_id = a.user_id AND f.call_type = a.call_type
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
