-- One meaning per status (issue 20). `queued` meant two things: waiting in Switchboard's queue for
-- a slot (no execution ID), and accepted by Bolna, waiting in Bolna's queue (with one). Now:
--   queued   Switchboard's own queue, and nothing else;
--   placed   Bolna has the call and has not started dialling it. Bolna's own word for that
--            (`scheduled`, `prepared`, `rescheduled`, `queued`) is kept in provider_status.
-- Bolna's pre-dial statuses are no longer call statuses.

-- Live rows and their event history change name without emitting new events: nothing happened to
-- the calls. (The update trigger is off for this one statement, inside the migration's transaction.)
ALTER TABLE calls DROP CONSTRAINT calls_status_check;
ALTER TABLE calls DISABLE TRIGGER calls_events_on_update;
UPDATE calls
   SET provider_status = status, status = 'placed'
 WHERE status IN ('scheduled', 'prepared', 'rescheduled')
    OR (status = 'queued' AND bolna_execution_id IS NOT NULL);
ALTER TABLE calls ENABLE TRIGGER calls_events_on_update;
ALTER TABLE calls ADD CONSTRAINT calls_status_check CHECK (status IN (
    'queued', 'initiating', 'placed',
    'initiated', 'ringing', 'in-progress', 'call-disconnected',
    'completed', 'no-answer', 'busy', 'failed', 'canceled', 'stopped', 'error', 'balance-low'));

UPDATE events
   SET payload = payload || jsonb_build_object('status', 'placed', 'provider_status', status),
       status = 'placed'
 WHERE kind = 'call.updated'
   AND (status IN ('scheduled', 'prepared', 'rescheduled')
        OR (status = 'queued' AND payload->>'bolna_execution_id' IS NOT NULL));

-- The queue's indexes, with the queue's one condition.
DROP INDEX idx_calls_queue;
CREATE INDEX idx_calls_queue ON calls (user_id, call_type, created_at, id) WHERE status = 'queued';
DROP INDEX idx_calls_queue_fifo;
CREATE INDEX idx_calls_queue_fifo ON calls (created_at, id) WHERE status = 'queued';

-- Changed definitions, as crates/concurrency/sql/ledger.sql and crates/call-service/sql/calls.sql
-- give them today.

-- Rule 1, the queue: a call waits for a slot while it is `queued` (Switchboard's own status; a
-- call Bolna has accepted is `placed`). Served by the partial indexes idx_calls_queue and
-- idx_calls_queue_fifo.
CREATE OR REPLACE VIEW slot_queue AS
    SELECT c.id, c.user_id, c.call_type, c.created_at
      FROM calls c
     WHERE c.status = 'queued';

-- A change of Bolna's own word counts too: a `placed` call moves between Bolna's pre-dial statuses
-- (queued, rescheduled, …) without changing its status.
CREATE OR REPLACE FUNCTION record_updated_call_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (user_id, kind, subject_id, status, payload)
    SELECT n.user_id, 'call.updated', n.id, n.status, call_event_payload(n)
      FROM updated_calls n JOIN previous_calls o ON o.id = n.id
     WHERE o.status IS DISTINCT FROM n.status
        OR o.provider_status IS DISTINCT FROM n.provider_status
        OR o.bolna_execution_id IS DISTINCT FROM n.bolna_execution_id;
    RETURN NULL;
END
$$;
