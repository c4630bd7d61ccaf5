//! The audit log (`audit_log`): who changed users, their keys and limits, or force-released a
//! slot, when and why. Written in the transaction of the change it records.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records `actor` doing `action` to `subject` (a user, key or call id).
pub async fn record_audit(
    conn: &mut PgConnection,
    actor: &str,
    action: &str,
    subject: Option<Uuid>,
    details: Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO audit_log (actor, action, subject_id, details) VALUES ($1, $2, $3, $4)",
        actor,
        action,
        subject,
        details,
    )
    .execute(conn)
    .await?;
    Ok(())
}
