//! The account's lines (Bolna's concurrency cap) as a pool of rows in `account_slots`.

use sqlx::PgConnection;

/// Makes the pool exactly `size` lines: adds missing rows, removes free rows above `size` (rows
/// above it that are in use disappear once released and the pool is synced again).
#[tracing::instrument(name = "Size the account line pool", skip(conn))]
pub async fn sync_account_pool(conn: &mut PgConnection, size: u32) -> sqlx::Result<()> {
    let size = i32::try_from(size).unwrap_or(i32::MAX);
    sqlx::query!(
        "INSERT INTO account_slots (slot_no) SELECT generate_series(1, $1) ON CONFLICT (slot_no) DO NOTHING",
        size
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM account_slots WHERE slot_no > $1 AND call_id IS NULL", size)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
