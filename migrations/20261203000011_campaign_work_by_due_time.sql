-- The campaign scheduler finds due work through indexes (issue 18), instead of visiting every
-- running campaign on every pass and filtering each one's first contacts by their windows.
--
-- campaign_zones: for each zone a campaign's contacts live in ('' = the campaign's own zone), the
-- calling window's current or next open period there, [opens, closes) (closes NULL = no window).
-- All contacts of a zone share it, so when a window closes one row moves, not its contacts.
--
-- A waiting contact (pending, retry_scheduled) may be dialled while its zone is open, once its
-- retry time (if any) has come: the expression the index below orders by.
--
-- campaigns.next_due_at: when a running campaign needs the scheduler next. NULL = nothing until one
-- of its calls frees a line or ends (which sets it); never set unless running. It may be early,
-- never late: a visit sets it exactly.
CREATE TABLE campaign_zones (
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    zone        text NOT NULL,
    opens       timestamptz NOT NULL,
    closes      timestamptz NULL,
    PRIMARY KEY (campaign_id, zone)
);
-- Zones whose period closed: the next visit moves them to their next one.
CREATE INDEX idx_campaign_zones_closes ON campaign_zones (campaign_id, closes);

ALTER TABLE campaigns ADD COLUMN next_due_at timestamptz NULL;

-- The zones of contacts waiting today, their period closed since ever: the first visit computes it.
INSERT INTO campaign_zones (campaign_id, zone, opens, closes)
SELECT DISTINCT cc.campaign_id, coalesce(cc.timezone, ''), '-infinity'::timestamptz, '-infinity'::timestamptz
  FROM campaign_contacts cc
 WHERE cc.status IN ('pending', 'retry_scheduled');
UPDATE campaigns SET next_due_at = now() WHERE status = 'running';
ALTER TABLE campaigns ADD CONSTRAINT campaigns_due_only_when_running
    CHECK (status = 'running' OR next_due_at IS NULL);

-- A zone's waiting contacts in the order they became due.
DROP INDEX idx_campaign_contacts_due;
CREATE INDEX idx_campaign_contacts_due
    ON campaign_contacts (campaign_id, coalesce(timezone, ''), coalesce(next_attempt_at, '-infinity'::timestamptz), id)
    WHERE status IN ('pending', 'retry_scheduled');

-- The running campaigns due now, soonest first. Not partial, and NULL unless running: the planner
-- then reads the column's real lowest value from the index when `now` is past its statistics
-- (it does so only with an index that has no predicate), and sees that nothing is due.
DROP INDEX idx_campaigns_running;
CREATE INDEX idx_campaigns_due ON campaigns (next_due_at);

-- A campaign's calls that count against its max_concurrency: waiting for a slot or holding one.
CREATE INDEX idx_calls_campaign_live ON calls (campaign_id)
    WHERE campaign_id IS NOT NULL AND NOT call_status_is_terminal(status) AND status <> 'call-disconnected';
