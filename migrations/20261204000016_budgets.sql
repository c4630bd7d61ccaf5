-- Issue 16 (results and spend), budgets: a user's monthly budget and a campaign's budget stop new
-- calls from taking a slot once spend reaches them (rule 7 in crates/concurrency/sql/ledger.sql,
-- which holds the current definitions); a campaign paused by its budget says why.

ALTER TABLE users ADD COLUMN monthly_budget double precision NULL
    CHECK (monthly_budget >= 0 AND monthly_budget < 'Infinity');
ALTER TABLE campaigns ADD COLUMN budget double precision NULL
    CHECK (budget >= 0 AND budget < 'Infinity');
-- Why a paused campaign is paused: its user paused it, or its (or its user's) budget is spent.
ALTER TABLE campaigns ADD COLUMN pause_reason text NULL
    CHECK (pause_reason IN ('user', 'budget_exhausted'));
UPDATE campaigns SET pause_reason = 'user' WHERE status = 'paused';

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

