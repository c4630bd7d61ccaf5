//! The campaign scheduler: on every instance, after each dispatcher pass (woken by slot releases
//! and a tick). A pass reads only the running campaigns whose `next_due_at` has come (an index
//! scan: campaigns with nothing due cost nothing), and visits each it can lock (`FOR UPDATE SKIP
//! LOCKED`, so two instances never work on one campaign at once). A visit
//! 1. moves the zones whose calling period closed to their next period (one row per zone);
//! 2. starts contacts due now — in zones open now, the earliest opened first, and in each in the
//!    order they became due — while the campaign has free slots (`max_concurrency`) and pacing
//!    allows (`calls_per_minute`), skipping any on the do-not-call list. Each call is admitted in the same transaction that marks its
//!    contact `in_progress`, with an idempotency key per contact and attempt, so no contact is
//!    ever dialled twice for one attempt;
//! 3. sets when the campaign is due next (see [`next_due`]).
//!
//! See [`super::due`] for how the due instants are kept.

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;

use super::due::{next_contact_due, open_zones, rearm_zones, Zones};
use super::model::Campaign;
use super::repository::on_dnc_list;
use super::settle::complete_if_finished;
use crate::calls::{Admitted, Call, NewCall};
use crate::error::CallError;
use crate::phone::PhoneNumber;
use crate::service::CallService;
use crate::{select_campaign, CallType};

/// Due campaigns read per query of a pass; a pass reads until none is due.
const CAMPAIGNS_PER_READ: i64 = 100;

/// Campaigns visited at once by one instance's pass.
const VISITS_AT_ONCE: usize = 4;

/// What a campaign may start now.
#[derive(Debug, Clone, Copy)]
struct Capacity {
    /// Free slots of the campaign's `max_concurrency`.
    free_slots: i64,
    /// With `calls_per_minute`: the dial spacing and when the next dial may go.
    pacing: Option<Pacing>,
}

/// Pacing spaces a campaign's dials evenly, one every 60/N seconds for `calls_per_minute` N: a
/// minute's allowance sent at once would ring N phones in the same second, then none for a minute.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    spacing: TimeDelta,
    next_dial_at: DateTime<Utc>,
}

impl Pacing {
    fn spacing(calls_per_minute: i32) -> TimeDelta {
        TimeDelta::microseconds(60_000_000 / i64::from(calls_per_minute.max(1)))
    }
}

impl Capacity {
    /// Calls to start in this visit: one at a time when paced.
    fn calls(&self, now: DateTime<Utc>) -> i64 {
        let paced = match self.pacing {
            Some(pacing) if pacing.next_dial_at > now => 0,
            Some(_) => 1,
            None => i64::MAX,
        };
        self.free_slots.min(paced).max(0)
    }
}

impl CallService {
    /// One scheduler pass over the running campaigns due now.
    pub async fn schedule_campaigns(&self) -> Result<SchedulerPass, CallError> {
        if self.bolna_is_held_back() {
            return Ok(SchedulerPass { placed: 0, next_due: None });
        }
        let timer = self.metrics().scheduler_pass_seconds.start_timer();
        let now = self.now();
        let mut placed = 0;
        let mut after: Option<(DateTime<Utc>, Uuid)> = None;
        loop {
            // Keyset over (next_due_at, id): a campaign visited in this pass is not read again by
            // it even if it is still due (its next visit is the next pass's).
            let due = sqlx::query!(
                r#"SELECT id, next_due_at AS "next_due_at!" FROM campaigns
                   WHERE next_due_at <= $1 AND status = 'running'
                     AND ($2::timestamptz IS NULL OR (next_due_at, id) > ($2, $3))
                   ORDER BY next_due_at, id LIMIT $4"#,
                now,
                after.map(|(at, _)| at),
                after.map(|(_, id)| id),
                CAMPAIGNS_PER_READ
            )
            .fetch_all(self.pool())
            .await?;
            let Some(last) = due.last() else { break };
            after = Some((last.next_due_at, last.id));
            // A few visits at once: each waits on its commit and on Bolna's answers' recording, and
            // campaigns are independent (each its own lock; the same user's admissions serialise on
            // the user's row, in a lock order that cannot cycle).
            let ids: Vec<Uuid> = due.iter().map(|campaign| campaign.id).collect();
            let mut visits =
                futures::stream::iter(ids).map(|id| self.visit_campaign(id)).buffer_unordered(VISITS_AT_ONCE);
            while let Some(visited) = visits.next().await {
                // One campaign's failure (its transaction rolled back) does not hold up the others.
                match visited {
                    Ok(count) => placed += count,
                    Err(error) => tracing::warn!(error = %error, "campaign visit failed; it stays due"),
                }
            }
            if (due.len() as i64) < CAMPAIGNS_PER_READ {
                break;
            }
        }
        // When the next campaign is due, so that the dispatcher wakes for it rather than a tick
        // later (the index's first entry).
        let next_due: Option<DateTime<Utc>> =
            sqlx::query_scalar!("SELECT min(next_due_at) FROM campaigns").fetch_one(self.pool()).await?;
        timer.observe_duration();
        Ok(SchedulerPass { placed, next_due })
    }

    async fn visit_campaign(&self, id: Uuid) -> Result<usize, CallError> {
        let mut tx = self.pool().begin().await?;
        let Some(campaign) =
            select_campaign!("WHERE id = $1 AND status = 'running' FOR UPDATE SKIP LOCKED", id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(0);
        };
        self.metrics().campaign_visits.inc();
        // The visit's own instant (not the pass's): its contacts' attempt times, which pacing
        // counts, are then the calls' creation times, however long the pass has been running.
        let now = self.now();
        if let Some(starts) = campaign.starts_at.filter(|starts| now < *starts) {
            set_next_due(&mut tx, id, Some(starts), 0).await?;
            tx.commit().await?;
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
            set_next_due(&mut tx, id, None, 0).await?;
            complete_if_finished(&mut tx, id).await?;
            tx.commit().await?;
            return Ok(0);
        }
        let rearmed = rearm_zones(&mut tx, &campaign, Zones::Closed, now).await?;
        self.metrics().zones_rearmed.inc_by(rearmed);
        let capacity = self.capacity(&mut tx, &campaign, now).await?;
        let started = self.start_due_contacts(&mut tx, &campaign, capacity.calls(now), now).await?;
        let placed = started.placed;
        let next = next_due(&mut tx, &campaign, capacity, placed, now).await?;
        set_next_due(&mut tx, id, next, placed).await?;
        complete_if_finished(&mut tx, id).await?;
        tx.commit().await?;
        for call in started.calls {
            self.start_after_commit(Some(call));
        }
        Ok(placed as usize)
    }

    /// Admits up to `wanted` contacts due now, oldest due first. The calls that took a slot are
    /// returned to be started after commit.
    async fn start_due_contacts(
        &self,
        tx: &mut sqlx::PgConnection,
        campaign: &Campaign,
        wanted: i64,
        now: DateTime<Utc>,
    ) -> Result<Started, CallError> {
        let mut started = Started { calls: Vec::new(), placed: 0 };
        for zone in open_zones(&mut *tx, campaign.id, now).await? {
            self.start_zone(&mut *tx, campaign, &zone, wanted, now, &mut started).await?;
            if started.placed >= wanted {
                break;
            }
        }
        Ok(started)
    }

    /// Admits the due contacts of one open zone, in the order they became due, until `wanted`.
    async fn start_zone(
        &self,
        tx: &mut sqlx::PgConnection,
        campaign: &Campaign,
        zone: &str,
        wanted: i64,
        now: DateTime<Utc>,
        started: &mut Started,
    ) -> Result<(), CallError> {
        while started.placed < wanted {
            let contacts = sqlx::query!(
                r#"SELECT id, phone_number, name, variables, attempts FROM campaign_contacts
                   WHERE campaign_id = $1 AND coalesce(timezone, '') = $2 AND status IN ('pending', 'retry_scheduled')
                     AND coalesce(next_attempt_at, '-infinity') <= $3
                   ORDER BY coalesce(next_attempt_at, '-infinity'), id
                   LIMIT $4 FOR UPDATE SKIP LOCKED"#,
                campaign.id,
                zone,
                now,
                wanted - started.placed
            )
            .fetch_all(&mut *tx)
            .await?;
            if contacts.is_empty() {
                break;
            }
            for contact in contacts {
                if on_dnc_list(&mut *tx, campaign.user_id, &contact.phone_number).await? {
                    sqlx::query!("UPDATE campaign_contacts SET status = 'skipped_dnc', last_outcome = 'do_not_call' WHERE id = $1", contact.id)
                        .execute(&mut *tx)
                        .await?;
                    continue;
                }
                let attempt = contact.attempts + 1;
                let new = NewCall {
                    agent_id: campaign.agent_id.clone(),
                    recipient: PhoneNumber::parse(&contact.phone_number).map_err(CallError::Invalid)?,
                    from: rotate(&campaign.from_phone_numbers, campaign.calls_placed + started.placed),
                    user_data: user_data(contact.name.as_deref(), &contact.variables, campaign, contact.id),
                    call_type: CallType::Campaign,
                    idempotency_key: Some(format!("campaign:{}:{attempt}", contact.id)),
                    campaign_id: Some(campaign.id),
                    contact_id: Some(contact.id),
                    scheduled_at: None,
                };
                let call = match self.admit_in(&mut *tx, campaign.user_id, &new).await? {
                    Admitted::Reserved(call) => {
                        let record = call.clone();
                        started.calls.push(call);
                        record
                    }
                    Admitted::Waiting(call) | Admitted::Replayed(call) => call,
                };
                sqlx::query!(
                    "UPDATE campaign_contacts SET status = 'in_progress', attempts = $2, last_attempt_at = $3,
                            last_call_id = $4, next_attempt_at = NULL
                     WHERE id = $1",
                    contact.id,
                    attempt,
                    now,
                    call.id.as_uuid()
                )
                .execute(&mut *tx)
                .await?;
                started.placed += 1;
            }
        }
        Ok(())
    }

    /// What `campaign` may start now: free concurrency, and when pacing lets the next dial go.
    async fn capacity(
        &self,
        conn: &mut sqlx::PgConnection,
        campaign: &Campaign,
        now: DateTime<Utc>,
    ) -> Result<Capacity, CallError> {
        let spacing = campaign.calls_per_minute.map(Pacing::spacing);
        // Live = waiting in the queue for a slot, or holding one until the line is free
        // (`call-disconnected` or a terminal status frees it). Both are index scans; the last dial
        // is looked for only within one spacing (none there: the next may go now).
        let row = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM calls WHERE campaign_id = $1
                         AND NOT call_status_is_terminal(status) AND status <> 'call-disconnected') AS "live!",
                      (SELECT max(last_attempt_at) FROM campaign_contacts
                        WHERE campaign_id = $1 AND last_attempt_at > $2) AS "last_dial""#,
            campaign.id,
            now - spacing.unwrap_or_default()
        )
        .fetch_one(conn)
        .await?;
        Ok(Capacity {
            free_slots: i64::from(campaign.max_concurrency) - row.live,
            pacing: spacing.map(|spacing| Pacing {
                spacing,
                next_dial_at: row.last_dial.map_or(now, |last| last + spacing),
            }),
        })
    }
}

/// What a scheduler pass did.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerPass {
    /// Calls placed.
    pub placed: usize,
    /// When the earliest running campaign is due next (`None`: none is, until something wakes one).
    pub next_due: Option<DateTime<Utc>>,
}

/// The calls a visit admitted.
struct Started {
    /// Those that took a slot: start them after commit.
    calls: Vec<Call>,
    placed: i64,
}

/// When the campaign needs a visit next, after one that found `capacity` and placed `placed`:
/// - no free slot left: `None` — one of its calls freeing its line wakes it ([`super::due`]);
/// - else when its next contact is due ([`next_contact_due`]), but not before pacing lets the next
///   dial go (one spacing after the last);
/// - and no later than its `ends_at`, which cancels what is left.
async fn next_due(
    conn: &mut sqlx::PgConnection,
    campaign: &Campaign,
    capacity: Capacity,
    placed: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    let contact_due = if capacity.free_slots - placed <= 0 {
        None
    } else {
        let earliest = next_contact_due(conn, campaign.id, now).await?;
        let next_dial = capacity.pacing.map(|pacing| match placed {
            0 => pacing.next_dial_at,
            _ => now + pacing.spacing,
        });
        earliest.map(|due| next_dial.map_or(due, |dial| due.max(dial)))
    };
    Ok(match (contact_due, campaign.ends_at) {
        (Some(due), Some(ends)) => Some(due.min(ends)),
        (due, None) => due,
        (None, Some(ends)) => Some(ends),
    })
}

/// Records when the campaign is due next and the calls a visit placed.
async fn set_next_due(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    next: Option<DateTime<Utc>>,
    placed: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE campaigns SET next_due_at = $2, calls_placed = calls_placed + $3 WHERE id = $1",
        id,
        next,
        placed
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The from-number for the `n`-th call of a campaign (rotated; none = Bolna's default).
fn rotate(numbers: &[String], n: i64) -> Option<PhoneNumber> {
    if numbers.is_empty() {
        return None;
    }
    let index = usize::try_from(n.rem_euclid(numbers.len() as i64)).unwrap_or(0);
    PhoneNumber::parse(&numbers[index]).ok()
}

/// What the agent's prompt gets, as Bolna's own batch files pass every column: the contact's
/// `name` and variables, plus Switchboard's campaign and contact IDs.
fn user_data(
    name: Option<&str>,
    variables: &Value,
    campaign: &Campaign,
    contact: Uuid,
) -> serde_json::Map<String, Value> {
    let mut data = variables.as_object().cloned().unwrap_or_default();
    if let Some(name) = name {
        data.insert("name".into(), Value::String(name.to_owned()));
    }
    data.insert("switchboard_campaign_id".into(), Value::String(campaign.id.to_string()));
    data.insert("switchboard_contact_id".into(), Value::String(contact.to_string()));
    data
}
