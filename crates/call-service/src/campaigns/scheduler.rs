//! The campaign scheduler: on every instance, after each dispatcher pass (woken by slot releases
//! and a tick). For each running campaign it can lock (`FOR UPDATE SKIP LOCKED`, so two instances
//! never work on one campaign at once), it starts due contacts while the campaign has free slots
//! (`max_concurrency`), pacing allows (`calls_per_minute`) and the calling window is open in the
//! contact's time zone (else the campaign's). A contact on the do-not-call list is skipped. Each
//! call is admitted in the same transaction that marks its contact `in_progress`, with an
//! idempotency key per contact and attempt, so no contact is ever dialled twice for one attempt.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::model::Campaign;
use super::repository::on_dnc_list;
use super::settle::complete_if_finished;
use super::window::parse_tz;
use crate::calls::{Admitted, Call, NewCall};
use crate::error::CallError;
use crate::phone::PhoneNumber;
use crate::service::CallService;
use crate::{select_campaign, CallType};

/// Contacts looked at per campaign and pass (more than the free slots, for window filtering).
const CANDIDATES: i64 = 200;

impl CallService {
    /// One scheduler pass over every running campaign. Returns how many calls were placed.
    pub async fn schedule_campaigns(&self) -> Result<usize, CallError> {
        if self.bolna_is_held_back() {
            return Ok(0);
        }
        let running: Vec<Uuid> =
            sqlx::query_scalar!("SELECT id FROM campaigns WHERE status = 'running' ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        let mut placed = 0;
        for id in running {
            placed += self.schedule_campaign(id).await?;
        }
        Ok(placed)
    }

    async fn schedule_campaign(&self, id: Uuid) -> Result<usize, CallError> {
        let now = self.config().clock.now();
        let mut tx = self.pool().begin().await?;
        let Some(campaign) =
            select_campaign!("WHERE id = $1 AND status = 'running' FOR UPDATE SKIP LOCKED", id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(0);
        };
        if campaign.starts_at.is_some_and(|starts| now < starts) {
            return Ok(0);
        }
        if campaign.ends_at.is_some_and(|ends| now >= ends) {
            // Past its end: nothing more is dialled; it completes once live calls end.
            sqlx::query!(
                "UPDATE campaign_contacts SET status = 'canceled' WHERE campaign_id = $1 AND status IN ('pending', 'retry_scheduled')",
                id
            )
            .execute(&mut *tx)
            .await?;
            complete_if_finished(&mut tx, id).await?;
            tx.commit().await?;
            return Ok(0);
        }
        let budget = self.budget(&mut tx, &campaign, now).await?;
        if budget <= 0 {
            return Ok(0);
        }
        let contacts = sqlx::query!(
            r#"SELECT id, phone_number, timezone, variables, attempts FROM campaign_contacts
               WHERE campaign_id = $1 AND status IN ('pending', 'retry_scheduled')
                 AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
               ORDER BY next_attempt_at NULLS FIRST, created_at, id
               LIMIT $3 FOR UPDATE SKIP LOCKED"#,
            id,
            now,
            CANDIDATES
        )
        .fetch_all(&mut *tx)
        .await?;
        let window = campaign.window();
        let campaign_tz = parse_tz(&campaign.timezone).unwrap_or(chrono_tz::UTC);
        let mut started: Vec<Call> = Vec::new();
        let mut placed = 0;
        for contact in contacts {
            if placed >= budget {
                break;
            }
            let tz = contact.timezone.as_deref().and_then(|tz| parse_tz(tz).ok()).unwrap_or(campaign_tz);
            if window.as_ref().is_some_and(|w| !w.is_open(now, tz)) {
                continue;
            }
            if on_dnc_list(&mut tx, campaign.user_id, &contact.phone_number).await? {
                sqlx::query!("UPDATE campaign_contacts SET status = 'skipped_dnc', last_outcome = 'do_not_call' WHERE id = $1", contact.id)
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
            let attempt = contact.attempts + 1;
            let new = NewCall {
                agent_id: campaign.agent_id.clone(),
                recipient: PhoneNumber::parse(&contact.phone_number).map_err(CallError::Invalid)?,
                from: rotate(&campaign.from_phone_numbers, campaign.calls_placed + placed),
                user_data: user_data(&contact.variables, &campaign, contact.id),
                call_type: CallType::Campaign,
                idempotency_key: Some(format!("campaign:{}:{attempt}", contact.id)),
                campaign_id: Some(campaign.id),
                contact_id: Some(contact.id),
            };
            let call = match self.admit_in(&mut tx, campaign.user_id, &new).await? {
                Admitted::Reserved(call) => {
                    let record = call.clone();
                    started.push(call);
                    record
                }
                Admitted::Queued(call) | Admitted::Replayed(call) => call,
            };
            sqlx::query!(
                "UPDATE campaign_contacts SET status = 'in_progress', attempts = $2, last_attempt_at = $3,
                        last_call_id = $4, next_attempt_at = NULL WHERE id = $1",
                contact.id,
                attempt,
                now,
                call.id.as_uuid()
            )
            .execute(&mut *tx)
            .await?;
            placed += 1;
        }
        sqlx::query!("UPDATE campaigns SET calls_placed = calls_placed + $2 WHERE id = $1", id, placed)
            .execute(&mut *tx)
            .await?;
        complete_if_finished(&mut tx, id).await?;
        tx.commit().await?;
        for call in started {
            self.start_after_commit(Some(call));
        }
        Ok(placed as usize)
    }

    /// Calls this campaign may start now: free concurrency, capped by pacing.
    async fn budget(
        &self,
        conn: &mut sqlx::PgConnection,
        campaign: &Campaign,
        now: DateTime<Utc>,
    ) -> Result<i64, CallError> {
        // Live = waiting in the queue for a slot, or holding one until the line is free
        // (`call-disconnected` or a terminal status frees it).
        let row = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM calls WHERE campaign_id = $1
                         AND NOT call_status_is_terminal(status) AND status <> 'call-disconnected') AS "live!",
                      (SELECT count(*) FROM campaign_contacts WHERE campaign_id = $1 AND last_attempt_at > $2) AS "last_minute!""#,
            campaign.id,
            now - TimeDelta::seconds(60)
        )
        .fetch_one(conn)
        .await?;
        let mut budget = i64::from(campaign.max_concurrency) - row.live;
        if let Some(per_minute) = campaign.calls_per_minute {
            budget = budget.min(i64::from(per_minute) - row.last_minute);
        }
        Ok(budget)
    }
}

/// The from-number for the `n`-th call of a campaign (rotated; none = Bolna's default).
fn rotate(numbers: &[String], n: i64) -> Option<PhoneNumber> {
    if numbers.is_empty() {
        return None;
    }
    let index = usize::try_from(n.rem_euclid(numbers.len() as i64)).unwrap_or(0);
    PhoneNumber::parse(&numbers[index]).ok()
}

/// The contact's variables plus Switchboard's campaign and contact IDs.
fn user_data(variables: &Value, campaign: &Campaign, contact: Uuid) -> serde_json::Map<String, Value> {
    let mut data = variables.as_object().cloned().unwrap_or_default();
    data.insert("switchboard_campaign_id".into(), Value::String(campaign.id.to_string()));
    data.insert("switchboard_contact_id".into(), Value::String(contact.to_string()));
    data
}
