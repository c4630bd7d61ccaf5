//! Recording Bolna's acceptances: each call becomes `placed` with its execution ID and Bolna's
//! status (its `provider_status`), and its slot gets the execution ID — one statement for a batch (see [`crate::batch`]).

use std::collections::HashMap;

use sqlx::PgPool;

use super::model::Call;
use crate::batch::{Batch, BatchResult};
use crate::error::CallError;
use crate::{call_query, CallId};

/// Bolna accepted a call: what to record.
#[derive(Debug)]
pub(crate) struct RecordRequest {
    pub id: CallId,
    pub execution_id: String,
    /// Bolna's status in its answer (`queued` or `scheduled`).
    pub status: String,
}

/// Records a batch of Bolna's acceptances (the batch worker's job) in one statement.
pub(crate) async fn record_batch(pool: &PgPool, requests: Batch<RecordRequest>) -> BatchResult<Call> {
    let mut calls = record_all(pool, &requests).await?;
    Ok(requests
        .iter()
        .map(|request| calls.remove(&request.id).ok_or(CallError::Database(sqlx::Error::RowNotFound)))
        .collect())
}

/// Bolna's answer for one call, as the record statement reads it (one JSON object per call).
#[derive(Debug, serde::Serialize)]
struct Answer<'a> {
    call_id: CallId,
    answered_execution_id: &'a str,
    answered_status: &'a str,
}

/// One statement, committed on its own: each call (returned as recorded), then its slot gets the
/// execution ID (the ledger's `attach_execution_ids`, after the calls' rows: the lock order).
async fn record_all(pool: &PgPool, requests: &[RecordRequest]) -> sqlx::Result<HashMap<CallId, Call>> {
    let answers: Vec<Answer<'_>> = requests
        .iter()
        .map(|r| Answer { call_id: r.id, answered_execution_id: &r.execution_id, answered_status: &r.status })
        .collect();
    let calls = call_query!(
        [r#"WITH answers AS (
             SELECT * FROM jsonb_to_recordset($1) AS a(call_id uuid, answered_execution_id text, answered_status text)),
           recorded AS (
             UPDATE calls SET bolna_execution_id = COALESCE(bolna_execution_id, a.answered_execution_id),
                              status = CASE WHEN status = 'initiating' THEN 'placed' ELSE status END,
                              provider_status = CASE WHEN status = 'initiating' THEN a.answered_status ELSE provider_status END,
                              started_at = COALESCE(started_at, now()),
                              reconcile_reason = NULL, error = NULL
             FROM answers a
             WHERE id = a.call_id
             RETURNING calls.*),
           slots AS (
             SELECT attach_execution_ids(array_agg(r.id), array_agg(r.bolna_execution_id)) FROM recorded r)
           SELECT"#],
        ["\n           FROM recorded, slots"],
        sqlx::types::Json(&answers) as _
    )
    .fetch_all(pool)
    .await?;
    Ok(calls.into_iter().map(|call| (call.id, call)).collect())
}
