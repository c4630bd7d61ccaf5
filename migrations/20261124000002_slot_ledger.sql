-- The account-wide cap (Bolna's concurrency) as a pool of rows, one per line: a call claims a free
-- row with FOR UPDATE SKIP LOCKED, so admissions of different users never queue behind one hot
-- counter row. The pool is sized from limits.account_max_concurrent at start-up.
CREATE TABLE account_slots (
    slot_no    integer PRIMARY KEY CHECK (slot_no >= 1),
    call_id    uuid NULL REFERENCES calls (id),
    claimed_at timestamptz NULL,
    CONSTRAINT account_slots_call_id_key UNIQUE (call_id),
    CONSTRAINT account_slots_claim_consistent CHECK ((call_id IS NULL) = (claimed_at IS NULL))
);
CREATE INDEX idx_account_slots_free ON account_slots (slot_no) WHERE call_id IS NULL;

-- Operator actions (force-release of a slot, limit changes): who, what, when, why.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    subject_id  uuid NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX idx_audit_log_subject ON audit_log (subject_id);

-- Why a call needs the reconciler (outcome of the request to Bolna unknown, and so on).
ALTER TABLE calls ADD COLUMN reconcile_reason text NULL;
-- The user asked to cancel a call queued at Bolna: Bolna's `stopped` then reads as `canceled`.
ALTER TABLE calls ADD COLUMN cancel_requested_at timestamptz NULL;
-- The queue's head per user and type, and the dispatcher's fair order across users.
CREATE INDEX idx_calls_queue_fifo ON calls (created_at, id) WHERE status = 'queued' AND bolna_execution_id IS NULL;
