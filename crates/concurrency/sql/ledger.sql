-- The slot ledger in PostgreSQL: the current definition of every rule and function it runs.
--
-- Owner: crates/concurrency. Read this file, not the migrations, to learn what runs today. A change
-- here ships as a new migration that repeats the changed definitions; the test
-- tests/api/definitions.rs fails until the migrated database matches this file.
--
-- Tables (only crates/concurrency reads or writes them):
--   active_calls   one row per held slot (id = the call's id): user, call type, Bolna's execution
--                  ID, and a lease the reconciler checks when it runs out;
--   account_slots  one row per account line (Bolna's account concurrency), naming the call on it;
--   bolna_send_tokens  one row per `POST /call` Bolna allows in its rate window, with when it was
--                  last taken.
-- The queue is not a table: it is the calls waiting for a slot (slot_queue below). The rules also
-- read users' limits, per-number cap and monthly budget, campaigns' budgets, and calls' numbers and
-- costs (tables call-service owns).
--
-- Lock order, on every path: a call's row, then its slot, then its user's row. Queued calls and
-- account lines are only ever locked with SKIP LOCKED, so they never wait.

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

-- Rule 3, the user's limit: how many more slots of a call type the user may hold now (its limit
-- minus the slots it holds; no row for an unknown user). Exact when read after the user's row
-- lock, in a statement that began after the lock was granted (READ COMMITTED: a fresh snapshot).
CREATE OR REPLACE FUNCTION user_free_slots(p_user uuid, p_call_type text)
RETURNS TABLE (free bigint)
LANGUAGE sql STABLE AS $$
    SELECT (CASE p_call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END)
           - (SELECT count(*) FROM active_calls a WHERE a.user_id = p_user AND a.call_type = p_call_type)
      FROM users u
     WHERE u.id = p_user
$$;

-- Rule 4, the account's lines: locks up to p_wanted free lines numbered 1..p_lines and returns
-- them in order. The search starts at a random line and wraps around: starting every search at
-- line 1 made all admissions race for the same rows and walk past every claimed line (10 ms per
-- claim at 32 clients). The lines are only locked here; take_slots writes who holds them.
CREATE OR REPLACE FUNCTION claim_account_lines(p_wanted integer, p_lines integer)
RETURNS integer[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_start integer := 1 + floor(random() * p_lines)::integer;
    v_lines integer[];
    v_more integer[];
BEGIN
    IF p_wanted <= 0 THEN
        RETURN '{}';
    END IF;
    SELECT coalesce(array_agg(l.slot_no ORDER BY l.slot_no), '{}') INTO v_lines FROM (
        SELECT s.slot_no FROM account_slots s
         WHERE s.call_id IS NULL AND s.slot_no >= v_start AND s.slot_no <= p_lines
         ORDER BY s.slot_no LIMIT p_wanted FOR UPDATE SKIP LOCKED) l;
    IF cardinality(v_lines) < p_wanted THEN
        SELECT coalesce(array_agg(l.slot_no ORDER BY l.slot_no), '{}') INTO v_more FROM (
            SELECT s.slot_no FROM account_slots s
             WHERE s.call_id IS NULL AND s.slot_no < v_start
             ORDER BY s.slot_no LIMIT p_wanted - cardinality(v_lines) FOR UPDATE SKIP LOCKED) l;
        v_lines := v_lines || v_more;
    END IF;
    RETURN v_lines;
END
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

-- Rule 7, budgets: a user's monthly budget (users.monthly_budget: its calls created since the start
-- of the UTC month) and a campaign's (campaigns.budget: all its calls), in Bolna's currency. Spend is
-- the cost Bolna reported on the calls, plus, for each call sent to Bolna whose cost has not arrived
-- (not queued or scheduled, not yet terminal: its line frees before its cost arrives), the average
-- reported cost of the same calls (nothing before the first cost arrives).
-- Once spend reaches a budget no call of that user or campaign takes a slot, so the overshoot is
-- what the calls live at the last admission cost beyond their estimate: less than their number
-- (at most the user's or campaign's concurrency) times the costliest call.
-- A call sent to Bolna whose cost is still to come:
CREATE OR REPLACE FUNCTION call_awaits_cost(p_status text, p_total_cost double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_total_cost IS NULL AND p_status NOT IN ('queued', 'scheduled') AND NOT call_status_is_terminal(p_status)
$$;

-- The estimate, given the reported costs' sum, how many calls have one, and how many await theirs:
CREATE OR REPLACE FUNCTION estimated_spend(p_reported double precision, p_costed bigint, p_awaiting bigint)
RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p_reported, 0) + p_awaiting * coalesce(p_reported / nullif(p_costed, 0), 0)
$$;

-- Which budget stops a new call of p_user (of campaign p_campaign, or a direct call when NULL):
-- 'user', 'campaign', or NULL when neither is spent (or none is set).
CREATE OR REPLACE FUNCTION spent_budget(p_user uuid, p_campaign uuid)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_budget double precision;
    v_spend double precision;
BEGIN
    SELECT u.monthly_budget INTO v_budget FROM users u WHERE u.id = p_user;
    IF v_budget IS NOT NULL THEN
        SELECT estimated_spend(sum(c.total_cost), count(c.total_cost),
                               count(*) FILTER (WHERE call_awaits_cost(c.status, c.total_cost)))
          INTO v_spend
          FROM calls c
         WHERE c.user_id = p_user AND c.created_at >= date_trunc('month', now(), 'UTC');
        IF v_spend >= v_budget THEN
            RETURN 'user';
        END IF;
    END IF;
    IF p_campaign IS NOT NULL THEN
        SELECT g.budget INTO v_budget FROM campaigns g WHERE g.id = p_campaign;
        IF v_budget IS NOT NULL THEN
            SELECT estimated_spend(sum(c.total_cost), count(c.total_cost),
                                   count(*) FILTER (WHERE call_awaits_cost(c.status, c.total_cost)))
              INTO v_spend
              FROM calls c
             WHERE c.campaign_id = p_campaign;
            IF v_spend >= v_budget THEN
                RETURN 'campaign';
            END IF;
        END IF;
    END IF;
    RETURN NULL;
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

-- Reserving a slot for an existing call (rules 3, 7, 4 and 5). outcome: 'reserved' (also when it
-- held one already), 'user_limit' (with active and call_limit), 'budget_exhausted' (its user's or
-- its campaign's budget is spent: it stays where it is), 'rate_limit', 'account_limit',
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
    IF spent_budget(p_user, (SELECT c.campaign_id FROM calls c WHERE c.id = p_call)) IS NOT NULL THEN
        outcome := 'budget_exhausted';
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
-- waited). outcome: 'started' (call_id = the head), 'empty', 'user_limit', 'budget_exhausted',
-- 'rate_limit', 'account_limit', or 'busy' (another transaction holds the head: a cancel in flight).
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
-- its user already used (in the table or earlier in the batch), or that would go over its user's
-- per-number cap (rule 6; calls earlier in the batch count), or whose user's or campaign's budget is
-- spent (rule 7), is not inserted. A call with a
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
    budgets AS (
        SELECT g.user_id, g.campaign_id, spent_budget(g.user_id, g.campaign_id) AS spent
          FROM (SELECT DISTINCT a.user_id, a.campaign_id FROM within_cap a) g),
    within_budget AS (
        SELECT a.* FROM within_cap a
          JOIN budgets b ON b.user_id = a.user_id AND b.campaign_id IS NOT DISTINCT FROM a.campaign_id
         WHERE b.spent IS NULL),
    free AS (
        SELECT g.user_id, g.call_type,
               CASE WHEN p_may_reserve AND NOT EXISTS (SELECT 1 FROM slot_queue_head(g.user_id, g.call_type))
                    THEN coalesce((SELECT f.free FROM user_free_slots(g.user_id, g.call_type) f), 0)
                    ELSE 0 END AS slots
          FROM (SELECT DISTINCT a.user_id, a.call_type FROM within_budget a) g),
    decided AS (
        SELECT a.ord, 'scheduled' AS decision FROM within_budget a WHERE a.scheduled_at IS NOT NULL
        UNION ALL
        SELECT a.ord,
               CASE WHEN row_number() OVER (PARTITION BY a.user_id, a.call_type ORDER BY a.ord) <= f.slots
                    THEN 'candidate' ELSE 'queued' END
          FROM within_budget a JOIN free f ON f.user_id = a.user_id AND f.call_type = a.call_type
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

-- Giving Bolna's execution IDs to the slots of their calls (a call without a slot, e.g. one whose
-- line a fast webhook already freed, is skipped). Returns how many slots changed. Called by the
-- statement that records Bolna's answers on the calls, after it has updated (locked) their rows.
-- (PL/pgSQL, like every function here that is not inlined into its caller: its plans are cached
-- per session, where a SQL-language function's body is planned again on every call.)
CREATE OR REPLACE FUNCTION attach_execution_ids(p_calls uuid[], p_executions text[])
RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_attached integer;
BEGIN
    UPDATE active_calls a SET bolna_execution_id = t.execution_id
      FROM unnest(p_calls, p_executions) AS t(id, execution_id)
     WHERE a.id = t.id AND t.execution_id IS NOT NULL
       AND a.bolna_execution_id IS DISTINCT FROM t.execution_id;
    GET DIAGNOSTICS v_attached = ROW_COUNT;
    RETURN v_attached;
END
$$;

-- Renewing the leases of live calls: to p_lease_seconds from now, but only once less than half of
-- the lease is left (a call's live webhooks come seconds apart; each renewal writes four indexes).
-- Called by the statement that applies live webhooks, after it has updated the calls' rows.
CREATE OR REPLACE FUNCTION renew_leases(p_calls uuid[], p_lease_seconds double precision)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE active_calls a SET lease_expires_at = now() + make_interval(secs => p_lease_seconds)
     WHERE a.id = ANY (p_calls)
       AND a.lease_expires_at < now() + make_interval(secs => p_lease_seconds / 2);
END
$$;
