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

/// One audited action.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub action: String,
    pub subject_id: Option<Uuid>,
    pub details: Value,
}

/// Audited actions, newest first, before the entry `before` (a cursor), about `subject` if given.
pub async fn list_audit(
    conn: &mut PgConnection,
    subject: Option<Uuid>,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<AuditEntry>> {
    sqlx::query_as!(
        AuditEntry,
        r#"SELECT id, at, actor, action, subject_id, details FROM audit_log
           WHERE ($1::uuid IS NULL OR subject_id = $1) AND ($2::bigint IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3"#,
        subject,
        before,
        limit,
    )
    .fetch_all(conn)
    .await
}
