-- Campaigns: a user's list of people to call, with a calling window, pacing and a retry policy,
-- dialled by the scheduler through the same slot ledger (campaign slots). And the per-user
-- do-not-call list, honoured at dial time for every call.

CREATE TABLE campaigns (
    id                  uuid PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users (id),
    name                text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    agent_id            text NOT NULL CHECK (length(agent_id) BETWEEN 1 AND 100),
    from_phone_numbers  text[] NOT NULL DEFAULT '{}',
    timezone            text NOT NULL DEFAULT 'UTC',
    -- Calling window in local time; NULL days = any time. Days: 0 = Monday … 6 = Sunday.
    window_days         smallint[] NULL,
    window_start        time NULL,
    window_end          time NULL,
    starts_at           timestamptz NULL,
    ends_at             timestamptz NULL,
    max_concurrency     integer NOT NULL CHECK (max_concurrency >= 1),
    calls_per_minute    integer NULL CHECK (calls_per_minute >= 1),
    retry_on            text[] NOT NULL DEFAULT '{}',
    retry_delay_seconds integer NOT NULL DEFAULT 0 CHECK (retry_delay_seconds >= 0),
    max_attempts        integer NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    status              text NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'running', 'paused', 'completed', 'canceled')),
    calls_placed        bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz NULL,
    ended_at            timestamptz NULL,
    CONSTRAINT campaigns_window_complete CHECK ((window_days IS NULL) = (window_start IS NULL)
                                                AND (window_start IS NULL) = (window_end IS NULL))
);
CREATE TRIGGER campaigns_set_updated_at BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX idx_campaigns_user ON campaigns (user_id, created_at DESC, id DESC);
CREATE INDEX idx_campaigns_running ON campaigns (id) WHERE status = 'running';

CREATE TABLE campaign_contacts (
    id              uuid PRIMARY KEY,
    campaign_id     uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    phone_number    text NOT NULL CHECK (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    name            text NULL,
    timezone        text NULL,
    variables       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(variables) = 'object'),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN (
                        'pending', 'in_progress', 'retry_scheduled', 'done', 'exhausted', 'skipped_dnc', 'canceled')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NULL,
    last_attempt_at timestamptz NULL,
    last_call_id    uuid NULL REFERENCES calls (id),
    last_outcome    text NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaign_contacts_campaign_phone_key UNIQUE (campaign_id, phone_number)
);
CREATE TRIGGER campaign_contacts_set_updated_at BEFORE UPDATE ON campaign_contacts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- The scheduler's work: due contacts of a campaign, oldest due first.
CREATE INDEX idx_campaign_contacts_due ON campaign_contacts (campaign_id, next_attempt_at, created_at)
    WHERE status IN ('pending', 'retry_scheduled');
CREATE INDEX idx_campaign_contacts_list ON campaign_contacts (campaign_id, created_at, id);
CREATE INDEX idx_campaign_contacts_pacing ON campaign_contacts (campaign_id, last_attempt_at);

ALTER TABLE calls ADD CONSTRAINT calls_campaign_id_fkey FOREIGN KEY (campaign_id) REFERENCES campaigns (id);
ALTER TABLE calls ADD CONSTRAINT calls_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES campaign_contacts (id);
CREATE INDEX idx_calls_contact ON calls (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX idx_calls_campaign_queued ON calls (campaign_id) WHERE status = 'queued' AND bolna_execution_id IS NULL;

CREATE TABLE do_not_call (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    phone_number text NOT NULL CHECK (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, phone_number)
);
