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
    /// With `calls_per_minute`: where the campaign is in its pacing.
    pacing: Option<Pacing>,
}

/// Pacing spaces a campaign's dials evenly, one every 60/N seconds for `calls_per_minute` N — a
/// minute's allowance sent at once would ring N phones in the same second, then none for a minute.
/// Dials keep to a grid: the next one's slot is one spacing after the last one's slot, not after
/// the moment it went, so visits a few milliseconds late do not slow the rate down; and no 60 s
/// ever holds more than N (a late dial followed by one on time could otherwise make N + 1).
#[derive(Debug, Clone, Copy)]
struct Pacing {
    spacing: TimeDelta,
    per_minute: i64,
    /// Dials in the last 60 s, and the oldest of them.
    recent: i64,
    oldest_recent: Option<DateTime<Utc>>,
    /// The next dial's slot (`campaigns.next_dial_at`; `None` before the first dial).
    next_slot: Option<DateTime<Utc>>,
}

/// The span `calls_per_minute` counts over.
const MINUTE: TimeDelta = TimeDelta::seconds(60);

impl Pacing {
    fn new(
        per_minute: i32,
        recent: i64,
        oldest_recent: Option<DateTime<Utc>>,
        next_slot: Option<DateTime<Utc>>,
    ) -> Self {
        let per_minute = i64::from(per_minute.max(1));
        Self {
            spacing: TimeDelta::microseconds(60_000_000 / per_minute),
            per_minute,
            recent,
            oldest_recent,
            next_slot,
        }
    }

    fn allows_a_dial(&self, now: DateTime<Utc>) -> bool {
        self.next_slot.is_none_or(|slot| slot <= now) && self.recent < self.per_minute
    }

    /// The slot after a dial made at `now`: one spacing after this dial's own slot while the
    /// campaign keeps to its grid (it is less than a spacing late), else one spacing after now.
    fn slot_after_dial(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.next_slot.filter(|slot| *slot > now - self.spacing).unwrap_or(now) + self.spacing
    }

    /// When the next dial may go, after a visit that placed `placed` calls.
    fn next_dial(&self, placed: i64, now: DateTime<Utc>) -> DateTime<Utc> {
        let slot = match placed {
            0 => self.next_slot.unwrap_or(now),
            _ => self.slot_after_dial(now),
        };
        match self.recent + placed >= self.per_minute {
            true => slot.max(self.oldest_recent.unwrap_or(now) + MINUTE),
            false => slot,
        }
    }
}

impl Capacity {
    /// Calls to start in this visit: one at a time when paced.
    fn calls(&self, now: DateTime<Utc>) -> i64 {
        let paced = match self.pacing {
            Some(pacing) if !pacing.allows_a_dial(now) => 0,
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
            set_next_due(&mut tx, id, Some(starts), 0, None).await?;
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
            set_next_due(&mut tx, id, None, 0, None).await?;
            complete_if_finished(&mut tx, id).await?;
            tx.commit().await?;
            return Ok(0);
        }
        let rearmed = rearm_zones(&mut tx, &campaign, Zones::Closed, now).await?;
        self.metrics().zones_rearmed.inc_by(rearmed);
        let capacity = self.capacity(&mut tx, &campaign, now).await?;
        let started = self.start_due_contacts(&mut tx, &campaign, capacity.calls(now), now).await?;
        let placed = started.placed;
        let next_dial = capacity.pacing.filter(|_| placed > 0).map(|pacing| pacing.slot_after_dial(now));
        if let Some(budget) = started.budget_spent {
            // Paused with its reason (the status change is its campaign.updated event): no visit
            // until resumed. Its queued calls stay queued and take no slot while the budget is spent.
            set_next_due(&mut tx, id, None, placed, next_dial).await?;
            sqlx::query!(
                "UPDATE campaigns SET status = 'paused', pause_reason = 'budget_exhausted' WHERE id = $1",
                id
            )
            .execute(&mut *tx)
            .await?;
            self.metrics().campaigns_paused_by_budget.inc();
            tracing::info!(campaign_id = %id, budget = budget.as_str(), "campaign paused: budget spent");
        } else {
            let next = next_due(&mut tx, &campaign, capacity, placed, now).await?;
            set_next_due(&mut tx, id, next, placed, next_dial).await?;
            complete_if_finished(&mut tx, id).await?;
        }
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
        let mut started = Started { calls: Vec::new(), placed: 0, budget_spent: None };
        for zone in open_zones(&mut *tx, campaign.id, now).await? {
            self.start_zone(&mut *tx, campaign, &zone, wanted, now, &mut started).await?;
            if started.placed >= wanted || started.budget_spent.is_some() {
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
                let call = match self.admit_in(&mut *tx, campaign.user_id, &new).await {
                    Ok(Admitted::Reserved(call)) => {
                        let record = call.clone();
                        started.calls.push(call);
                        record
                    }
                    Ok(Admitted::Waiting(call) | Admitted::Replayed(call)) => call,
                    // The number is at its per-number cap: the contact waits until it is under it
                    // (and then for its window, which the zones keep), without using an attempt.
                    Err(CallError::NumberCallCap { retry_at }) => {
                        sqlx::query!(
                            "UPDATE campaign_contacts SET next_attempt_at = $2 WHERE id = $1",
                            contact.id,
                            retry_at
                        )
                        .execute(&mut *tx)
                        .await?;
                        self.metrics().contacts_deferred_by_number_cap.inc();
                        continue;
                    }
                    // Its budget or its user's is spent: nothing more of this campaign goes to Bolna;
                    // the visit ends and the campaign pauses (the contact stays as it was).
                    Err(CallError::BudgetExhausted { budget }) => {
                        started.budget_spent = Some(budget);
                        return Ok(());
                    }
                    Err(error) => return Err(error),
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

    /// What `campaign` may start now: free concurrency, and where it is in its pacing.
    async fn capacity(
        &self,
        conn: &mut sqlx::PgConnection,
        campaign: &Campaign,
        now: DateTime<Utc>,
    ) -> Result<Capacity, CallError> {
        // Live = waiting in the queue for a slot, or holding one until the line is free
        // (`call-disconnected` or a terminal status frees it). All index scans.
        let row = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM calls WHERE campaign_id = $1
                         AND NOT call_status_is_terminal(status) AND status <> 'call-disconnected') AS "live!",
                      recent.n AS "recent!", recent.oldest AS "oldest_recent",
                      (SELECT next_dial_at FROM campaigns WHERE id = $1) AS "next_dial_at"
               FROM (SELECT count(*) AS n, min(last_attempt_at) AS oldest FROM campaign_contacts
                      WHERE campaign_id = $1 AND last_attempt_at > $2) recent"#,
            campaign.id,
            now - MINUTE
        )
        .fetch_one(conn)
        .await?;
        Ok(Capacity {
            free_slots: i64::from(campaign.max_concurrency) - row.live,
            pacing: campaign
                .calls_per_minute
                .map(|per_minute| Pacing::new(per_minute, row.recent, row.oldest_recent, row.next_dial_at)),
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
    /// Admission refused a call because this budget is spent: the visit stopped there.
    budget_spent: Option<concurrency::SpentBudget>,
}

/// When the campaign needs a visit next, after one that found `capacity` and placed `placed`:
/// - no free slot left: `None` — one of its calls freeing its line wakes it ([`super::due`]);
/// - else when its next contact is due ([`next_contact_due`]), but not before pacing lets the next
///   dial go ([`Pacing::next_dial`]);
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
        let next_dial = capacity.pacing.map(|pacing| pacing.next_dial(placed, now));
        earliest.map(|due| next_dial.map_or(due, |dial| due.max(dial)))
    };
    Ok(match (contact_due, campaign.ends_at) {
        (Some(due), Some(ends)) => Some(due.min(ends)),
        (due, None) => due,
        (None, Some(ends)) => Some(ends),
    })
}

/// Records when the campaign is due next, the calls a visit placed and, when it dialled under
/// pacing, the next dial's slot.
async fn set_next_due(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    next: Option<DateTime<Utc>>,
    placed: i64,
    next_dial: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE campaigns SET next_due_at = $2, calls_placed = calls_placed + $3,
                next_dial_at = coalesce($4, next_dial_at)
         WHERE id = $1",
        id,
        next,
        placed,
        next_dial
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
            + TimeDelta::milliseconds((seconds * 1000.0) as i64)
    }

    /// Dials of a campaign paced at `per_minute` whose visits come `late` seconds after each due
    /// time, over `seconds`: when each went.
    fn simulate(per_minute: i32, late: f64, seconds: f64) -> Vec<DateTime<Utc>> {
        let mut dials: Vec<DateTime<Utc>> = Vec::new();
        let mut next_slot = None;
        let mut now = at(0.0);
        while now < at(seconds) {
            let recent: Vec<_> = dials.iter().filter(|d| **d > now - MINUTE).collect();
            let pacing = Pacing::new(per_minute, recent.len() as i64, recent.first().map(|d| **d), next_slot);
            let placed = i64::from(pacing.allows_a_dial(now));
            if placed == 1 {
                dials.push(now);
                next_slot = Some(pacing.slot_after_dial(now));
            }
            now = pacing.next_dial(placed, now) + TimeDelta::milliseconds((late * 1000.0) as i64);
        }
        dials
    }

    #[test]
    fn late_visits_keep_the_grid_and_no_minute_goes_over_the_rate() {
        for (per_minute, late) in [(300, 0.0), (300, 0.015), (300, 0.15), (6, 0.4), (1, 0.2)] {
            let dials = simulate(per_minute, late, 180.0);
            let first_minute = dials.iter().filter(|d| **d < at(60.0)).count();
            assert_eq!(first_minute, per_minute as usize, "{per_minute}/min, {late} s late");
            for (i, dial) in dials.iter().enumerate() {
                let within = dials[i..].iter().take_while(|d| **d - *dial < MINUTE).count();
                assert!(within <= per_minute as usize, "{per_minute}/min, {late} s late: {within} in 60 s");
            }
            let spacing = 60.0 / f64::from(per_minute);
            for pair in dials.windows(2) {
                let gap = (pair[1] - pair[0]).num_milliseconds() as f64 / 1000.0;
                assert!(
                    gap >= spacing - late - 0.001 && gap <= spacing + late + 0.001,
                    "{per_minute}/min: gap {gap}"
                );
            }
        }
    }

    #[test]
    fn after_a_pause_the_grid_starts_again_from_the_next_dial() {
        let pacing = Pacing::new(6, 0, None, Some(at(10.0)));
        // An hour later (the campaign was paused): dial now, the next 10 s later, not at once.
        assert!(pacing.allows_a_dial(at(3600.0)));
        assert_eq!(pacing.slot_after_dial(at(3600.0)), at(3610.0));
        // On time: the grid goes on from the slot, not from the late moment.
        assert_eq!(pacing.slot_after_dial(at(10.3)), at(20.0));
    }
}
