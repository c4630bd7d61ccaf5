//! SQL for `campaigns` and `campaign_contacts`, and `select_campaign!`, the one column list.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use std::collections::BTreeSet;

use super::due::{add_zones, rearm_zones, wake_campaign, zone_key, Zones};
use super::model::{Campaign, CampaignSettings, CampaignStats, Contact, ContactStatus, NewContact};
use crate::phone::PhoneNumber;
use crate::UserId;

/// `sqlx::query_as!(Campaign, "SELECT <every column> FROM campaigns " + $rest, args…)`.
#[macro_export]
macro_rules! select_campaign {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::campaigns::Campaign,
            r#"SELECT id, user_id AS "user_id: call_service::UserId", name, agent_id, from_phone_numbers, timezone,
                      window_days, window_start, window_end, starts_at, ends_at, max_concurrency, calls_per_minute,
                      retry_on, retry_delay_seconds, max_attempts,
                      status AS "status: call_service::campaigns::CampaignStatus", pause_reason, budget,
                      calls_placed, created_at, updated_at, started_at, ended_at
               FROM campaigns "# + $rest
            $(, $arg)*
        )
    };
}

/// Creates the campaign row, then writes its settings with [`update_settings`] (one bind list).
pub(crate) async fn insert_campaign(
    conn: &mut PgConnection,
    user: UserId,
    s: &CampaignSettings,
    now: DateTime<Utc>,
) -> sqlx::Result<Campaign> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO campaigns (id, user_id, name, agent_id, max_concurrency) VALUES ($1, $2, $3, $4, $5)",
        id,
        user as UserId,
        s.name,
        s.agent_id,
        s.max_concurrency,
    )
    .execute(&mut *conn)
    .await?;
    update_settings(conn, id, s, now).await?;
    select_campaign!("WHERE id = $1", id).fetch_one(conn).await
}

pub(crate) async fn update_settings(
    conn: &mut PgConnection,
    id: Uuid,
    s: &CampaignSettings,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let (days, start, end) = window_columns(s);
    sqlx::query!(
        r#"UPDATE campaigns SET name = $2, agent_id = $3, from_phone_numbers = $4, timezone = $5, window_days = $6,
                  window_start = $7, window_end = $8, starts_at = $9, ends_at = $10, max_concurrency = $11,
                  calls_per_minute = $12, retry_on = $13, retry_delay_seconds = $14, max_attempts = $15,
                  budget = $16
           WHERE id = $1"#,
        id,
        s.name,
        s.agent_id,
        &phones(s),
        s.timezone,
        days.as_deref(),
        start,
        end,
        s.starts_at,
        s.ends_at,
        s.max_concurrency,
        s.calls_per_minute,
        &s.retry.on,
        s.retry.delay_seconds,
        s.retry.max_attempts,
        s.budget,
    )
    .execute(&mut *conn)
    .await?;
    // The window or the campaign's zone may have changed: every zone's period is computed again.
    let campaign = select_campaign!("WHERE id = $1", id).fetch_one(&mut *conn).await?;
    rearm_zones(conn, &campaign, Zones::All, now).await?;
    Ok(())
}

fn phones(s: &CampaignSettings) -> Vec<String> {
    s.from_phone_numbers.iter().map(|p| p.as_str().to_owned()).collect()
}

type WindowColumns = (Option<Vec<i16>>, Option<chrono::NaiveTime>, Option<chrono::NaiveTime>);

fn window_columns(s: &CampaignSettings) -> WindowColumns {
    match &s.window {
        Some(w) => (Some(w.days.iter().map(|d| i16::from(*d)).collect()), Some(w.start), Some(w.end)),
        None => (None, None, None),
    }
}

/// Adds contacts in batches; each zone that is new to the campaign gets its calling period from
/// `now`, and the campaign is woken for the earliest. A number already in the campaign (or twice in
/// the input) is a duplicate. Returns (accepted, duplicates).
pub async fn add_contacts(
    conn: &mut PgConnection,
    campaign: Uuid,
    contacts: &[NewContact],
    now: DateTime<Utc>,
) -> sqlx::Result<(u64, u64)> {
    // KEY SHARE (as the contacts' foreign key takes anyway): a window edit waits for this
    // transaction, so the new zones' periods are computed from the window that stays.
    let campaign = select_campaign!("WHERE id = $1 FOR KEY SHARE", campaign).fetch_one(&mut *conn).await?;
    let zones: BTreeSet<&str> = contacts.iter().map(|c| zone_key(c.timezone.as_deref())).collect();
    let zones: Vec<String> = zones.into_iter().map(str::to_owned).collect();
    let earliest = add_zones(&mut *conn, &campaign, &zones, now).await?;
    let mut accepted = 0;
    for batch in contacts.chunks(2_000) {
        let ids: Vec<Uuid> = batch.iter().map(|_| Uuid::now_v7()).collect();
        let numbers: Vec<String> = batch.iter().map(|c| c.phone_number.as_str().to_owned()).collect();
        let names: Vec<Option<String>> = batch.iter().map(|c| c.name.clone()).collect();
        let timezones: Vec<Option<String>> = batch.iter().map(|c| c.timezone.clone()).collect();
        let variables: Vec<serde_json::Value> =
            batch.iter().map(|c| serde_json::Value::Object(c.variables.clone())).collect();
        let inserted = sqlx::query!(
            r#"INSERT INTO campaign_contacts (id, campaign_id, phone_number, name, timezone, variables)
               SELECT id, $2, phone, name, tz, vars
               FROM UNNEST($1::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[]) AS t(id, phone, name, tz, vars)
               ON CONFLICT (campaign_id, phone_number) DO NOTHING"#,
            &ids,
            campaign.id,
            &numbers,
            &names as &[Option<String>],
            &timezones as &[Option<String>],
            &variables,
        )
        .execute(&mut *conn)
        .await?;
        accepted += inserted.rows_affected();
    }
    if let Some(earliest) = earliest.filter(|_| accepted > 0) {
        wake_campaign(conn, campaign.id, earliest).await?;
    }
    Ok((accepted, contacts.len() as u64 - accepted))
}

pub async fn campaign_stats(conn: &mut PgConnection, campaign: Uuid) -> sqlx::Result<CampaignStats> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "total!",
                  count(*) FILTER (WHERE status = 'pending') AS "pending!",
                  count(*) FILTER (WHERE status = 'in_progress') AS "in_progress!",
                  count(*) FILTER (WHERE status = 'retry_scheduled') AS "retry_scheduled!",
                  count(*) FILTER (WHERE status = 'done') AS "done!",
                  count(*) FILTER (WHERE status = 'exhausted') AS "exhausted!",
                  count(*) FILTER (WHERE status = 'skipped_dnc') AS "skipped_dnc!",
                  count(*) FILTER (WHERE status = 'canceled') AS "canceled!"
           FROM campaign_contacts WHERE campaign_id = $1"#,
        campaign
    )
    .fetch_one(&mut *conn)
    .await?;
    let outcomes = sqlx::query!(
        r#"SELECT last_outcome AS "outcome!", count(*) AS "n!" FROM campaign_contacts
           WHERE campaign_id = $1 AND status IN ('done', 'exhausted') AND last_outcome IS NOT NULL
           GROUP BY last_outcome"#,
        campaign
    )
    .fetch_all(conn)
    .await?;
    Ok(CampaignStats {
        total: row.total,
        pending: row.pending,
        in_progress: row.in_progress,
        retry_scheduled: row.retry_scheduled,
        done: row.done,
        exhausted: row.exhausted,
        skipped_dnc: row.skipped_dnc,
        canceled: row.canceled,
        by_outcome: outcomes.into_iter().map(|o| (o.outcome, o.n)).collect(),
    })
}

/// A page of a campaign's contacts in insertion order, after the contact `after`.
pub async fn list_contacts(
    conn: &mut PgConnection,
    campaign: Uuid,
    status: Option<ContactStatus>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Contact>> {
    sqlx::query_as!(
        Contact,
        r#"SELECT id, campaign_id, phone_number, name, timezone, variables,
                  status AS "status: ContactStatus", attempts, next_attempt_at, last_attempt_at, last_call_id,
                  last_outcome, created_at
           FROM campaign_contacts
           WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR id > $3)
           ORDER BY id LIMIT $4"#,
        campaign,
        status.map(ContactStatus::as_str),
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Whether `number` is on the user's do-not-call list.
pub async fn on_dnc_list(conn: &mut PgConnection, user: UserId, number: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM do_not_call WHERE user_id = $1 AND phone_number = $2) AS "listed!""#,
        user as UserId,
        number
    )
    .fetch_one(conn)
    .await
}

pub async fn add_to_dnc(conn: &mut PgConnection, user: UserId, numbers: &[PhoneNumber]) -> sqlx::Result<u64> {
    let numbers: Vec<String> = numbers.iter().map(|n| n.as_str().to_owned()).collect();
    let added = sqlx::query!(
        "INSERT INTO do_not_call (user_id, phone_number) SELECT $1, UNNEST($2::text[]) ON CONFLICT DO NOTHING",
        user as UserId,
        &numbers
    )
    .execute(conn)
    .await?;
    Ok(added.rows_affected())
}

pub async fn remove_from_dnc(conn: &mut PgConnection, user: UserId, number: &str) -> sqlx::Result<bool> {
    let removed = sqlx::query!(
        "DELETE FROM do_not_call WHERE user_id = $1 AND phone_number = $2",
        user as UserId,
        number
    )
    .execute(conn)
    .await?;
    Ok(removed.rows_affected() > 0)
}

/// A page of the user's do-not-call list, in number order, after `after`.
pub async fn list_dnc(
    conn: &mut PgConnection,
    user: UserId,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<(String, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        "SELECT phone_number, created_at FROM do_not_call WHERE user_id = $1 AND ($2::text IS NULL OR phone_number > $2)
         ORDER BY phone_number LIMIT $3",
        user as UserId,
        after,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.phone_number, r.created_at)).collect())
}

/// The campaigns with these ids (any user's), for rendering events.
pub async fn get_campaigns_by_ids(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<Campaign>> {
    select_campaign!("WHERE id = ANY($1)", ids).fetch_all(conn).await
}

/// Every user's campaigns, newest first, after the campaign `after` (the operator's view).
pub async fn list_all_campaigns(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Campaign>> {
    select_campaign!("WHERE ($1::uuid IS NULL OR id < $1) ORDER BY id DESC LIMIT $2", after, limit)
        .fetch_all(conn)
        .await
}
