-- The campaign scheduler finds due work through indexes (issue 18), instead of visiting every
-- running campaign on every pass and filtering each one's first contacts by their windows.
--
-- campaign_contacts.dial_from / dial_until: the stretch of time in which a contact waiting to be
-- dialled (pending or retry_scheduled) may be dialled next: its calling window's current or next
-- open period in its own zone, not before its retry time. NULL dial_until = no window. The
-- scheduler moves a contact whose period closed before it was dialled to its next period.
--
-- campaigns.next_due_at: when a running campaign needs the scheduler next: the earliest dial_from
-- of its contacts, later if pacing says so, sooner for its end. NULL = nothing until one of its
-- calls frees a line or ends (which sets it). It may be early, never late: a visit sets it exactly.
ALTER TABLE campaign_contacts ADD COLUMN dial_from timestamptz NULL;
ALTER TABLE campaign_contacts ADD COLUMN dial_until timestamptz NULL;
ALTER TABLE campaigns ADD COLUMN next_due_at timestamptz NULL;

-- Contacts waiting today: due from their retry time or their creation; where the campaign has a
-- window, their period counts as closed (since ever), so the first visit computes it.
UPDATE campaign_contacts cc
   SET dial_from = coalesce(cc.next_attempt_at, cc.created_at),
       dial_until = CASE WHEN c.window_days IS NULL THEN NULL ELSE '-infinity'::timestamptz END
  FROM campaigns c
 WHERE c.id = cc.campaign_id AND cc.status IN ('pending', 'retry_scheduled');
UPDATE campaigns SET next_due_at = now() WHERE status = 'running';

ALTER TABLE campaign_contacts ADD CONSTRAINT campaign_contacts_waiting_have_dial_from
    CHECK (status NOT IN ('pending', 'retry_scheduled') OR dial_from IS NOT NULL);

-- A campaign's due contacts in the order they became due; and the ones whose period closed.
DROP INDEX idx_campaign_contacts_due;
CREATE INDEX idx_campaign_contacts_due ON campaign_contacts (campaign_id, dial_from, id)
    WHERE status IN ('pending', 'retry_scheduled');
CREATE INDEX idx_campaign_contacts_period_end ON campaign_contacts (campaign_id, dial_until)
    WHERE status IN ('pending', 'retry_scheduled') AND dial_until IS NOT NULL;

-- The running campaigns due now, soonest first. Not partial, and NULL unless running: the planner
-- then reads the column's real lowest value from the index when `now` is past its statistics
-- (it does so only with an index that has no predicate), and sees that nothing is due.
DROP INDEX idx_campaigns_running;
CREATE INDEX idx_campaigns_due ON campaigns (next_due_at);
ALTER TABLE campaigns ADD CONSTRAINT campaigns_due_only_when_running
    CHECK (status = 'running' OR next_due_at IS NULL);

-- A campaign's calls that count against its max_concurrency: waiting for a slot or holding one.
CREATE INDEX idx_calls_campaign_live ON calls (campaign_id)
    WHERE campaign_id IS NOT NULL AND NOT call_status_is_terminal(status) AND status <> 'call-disconnected';
