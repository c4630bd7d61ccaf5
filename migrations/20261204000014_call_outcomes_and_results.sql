-- Issue 16 (results and spend): one definition of a finished call's outcome, used by the contact
-- retry policy and by reports, exports and usage; and the indexes those reads need.

-- A finished call's outcome: its terminal status, except that a completed call answered by a
-- voice mail box is `voicemail`. NULL while the call is not finished.
CREATE OR REPLACE FUNCTION call_outcome(p_status text, p_answered_by_voice_mail boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_status = 'completed' AND p_answered_by_voice_mail THEN 'voicemail'
        WHEN call_status_is_terminal(p_status) THEN p_status
    END
$$;

-- A campaign's calls (its report).
CREATE INDEX idx_calls_campaign ON calls (campaign_id) WHERE campaign_id IS NOT NULL;

-- Usage across users by time (GET /v1/admin/usage). Calls are inserted in time order, so a BRIN
-- index is a few pages and costs the insert path almost nothing, where a B-tree would add a write
-- to every call.
CREATE INDEX idx_calls_created_brin ON calls USING brin (created_at);
