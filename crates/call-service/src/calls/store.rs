//! The writes of `calls` that the use cases share: plain functions over the caller's connection
//! (so they run in its transaction), each one statement. Reads are in `repository`.

use sqlx::PgConnection;

use super::model::Call;
use crate::{select_call, CallId};

/// The call's row, locked until the caller's transaction ends (lock order: the call first).
/// `None` when there is no such call.
pub(crate) async fn lock_call(conn: &mut PgConnection, id: CallId) -> sqlx::Result<Option<Call>> {
    select_call!("WHERE id = $1 FOR UPDATE", id as CallId).fetch_optional(conn).await
}

/// `failed` with a reason, unless the call already ended.
pub(crate) async fn mark_failed(conn: &mut PgConnection, id: CallId, reason: &str) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE calls SET status = 'failed', error = $2, ended_at = COALESCE(ended_at, now())
           WHERE id = $1 AND NOT call_status_is_terminal(status)"#,
        id as CallId,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// `status` (`canceled` or `stopped`) with `reason` after Bolna stopped the call, if Bolna still
/// had it waiting.
pub(crate) async fn mark_stopped_at_bolna(
    conn: &mut PgConnection,
    id: CallId,
    status: &str,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE calls SET status = $2, ended_at = COALESCE(ended_at, now()), error = $3
         WHERE id = $1 AND status = 'placed'",
        id as CallId,
        status,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// `canceled` while still waiting in Switchboard's queue. False when it no longer waits.
pub(crate) async fn cancel_waiting(conn: &mut PgConnection, id: CallId) -> sqlx::Result<bool> {
    let canceled = sqlx::query!(
        "UPDATE calls SET status = 'canceled', ended_at = now(), error = 'canceled by the user'
         WHERE id = $1 AND status IN ('scheduled', 'queued')",
        id as CallId
    )
    .execute(conn)
    .await?;
    Ok(canceled.rows_affected() == 1)
}

/// The user asked to cancel a call Bolna has placed: its `stopped` then reads as `canceled`.
pub(crate) async fn mark_cancel_requested(conn: &mut PgConnection, id: CallId) -> sqlx::Result<()> {
    sqlx::query!("UPDATE calls SET cancel_requested_at = now() WHERE id = $1", id as CallId)
        .execute(conn)
        .await?;
    Ok(())
}

/// Switchboard is about to stop a placed call at Bolna for `reason`: recorded first, so the call
/// ends with it whichever comes first — Bolna's `stopped` webhook (which keeps an error it does
/// not replace) or [`super::ending::end_call`]. `keep` false takes it back (Bolna refused the stop).
pub(crate) async fn mark_stop_reason(
    conn: &mut PgConnection,
    id: CallId,
    reason: &str,
    keep: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE calls SET error = CASE WHEN $3 THEN $2 END
         WHERE id = $1 AND status = 'placed' AND (error IS NULL OR error = $2)",
        id as CallId,
        reason,
        keep
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A call that held a slot but was not sent goes back to `queued`, keeping its place (its
/// `created_at`); the caller frees the slot.
pub(crate) async fn mark_requeued(conn: &mut PgConnection, id: CallId, why: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE calls SET status = 'queued', queued_at = COALESCE(queued_at, now()), error = $2 WHERE id = $1 AND status = 'initiating'",
        id as CallId,
        format!("re-queued: {why}")
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Bolna's answer to the call was lost: the reconciler must find out (unless a webhook already
/// told which execution it is).
pub(crate) async fn mark_for_reconciliation(
    conn: &mut PgConnection,
    id: CallId,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE calls SET reconcile_reason = $2 WHERE id = $1 AND bolna_execution_id IS NULL",
        id as CallId,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Adopts the execution ID a webhook names onto a call that had none.
pub(crate) async fn adopt_execution_id(
    conn: &mut PgConnection,
    id: CallId,
    execution_id: &str,
) -> sqlx::Result<()> {
    sqlx::query!("UPDATE calls SET bolna_execution_id = $2 WHERE id = $1", id as CallId, execution_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Calls whose line is free (`call-disconnected`) but whose final status has not come for `wait`
/// since their last change, oldest first: their final webhook was lost, or Bolna is slow to finish.
pub(crate) async fn unfinished_after_line_free(
    conn: &mut PgConnection,
    wait: std::time::Duration,
    limit: i64,
) -> sqlx::Result<Vec<(CallId, String)>> {
    let rows = sqlx::query!(
        r#"SELECT id AS "id: CallId", bolna_execution_id AS "execution_id!" FROM calls
           WHERE status = 'call-disconnected' AND bolna_execution_id IS NOT NULL
             AND updated_at < now() - make_interval(secs => $1)
           ORDER BY updated_at LIMIT $2"#,
        wait.as_secs_f64(),
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row.execution_id)).collect())
}

/// Marks the call as looked at now (its `updated_at`), so it is asked about again only after
/// another wait.
pub(crate) async fn touch_call(conn: &mut PgConnection, id: CallId) -> sqlx::Result<()> {
    sqlx::query!("UPDATE calls SET updated_at = now() WHERE id = $1", id as CallId).execute(conn).await?;
    Ok(())
}
