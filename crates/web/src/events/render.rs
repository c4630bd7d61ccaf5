//! Turns event rows into frames. A `call.updated` carries the call as it was right after the change
//! (the snapshot the trigger stored), so a replay sends the same data as the live stream did; a
//! `campaign.updated` carries the campaign with its progress as it is when sent.

use std::collections::HashMap;
use std::sync::Arc;

use call_service::campaigns::get_campaigns_by_ids;
use call_service::events::{load_payloads, EventRow};
use uuid::Uuid;

use super::frame::{self, Frame};
use crate::problem::ApiError;
use crate::routes::call_resource::CallResource;
use crate::routes::campaigns::campaign_resource;
use crate::state::AppState;

/// Frames for `rows`, in their order. A row whose subject cannot be rendered is skipped (logged).
pub async fn render(state: &AppState, rows: &mut [EventRow]) -> Result<Vec<Arc<Frame>>, ApiError> {
    let bodies = render_subjects(state, rows).await?;
    Ok(rows
        .iter()
        .zip(bodies)
        .filter_map(|(row, body)| {
            Some(Arc::new(Frame {
                position: row.position,
                bytes: frame::event(row.id, row.kind.as_str(), &body?),
            }))
        })
        .collect())
}

/// Each row's subject as the API returns it (JSON text), in the rows' order; `None` for a row
/// whose subject cannot be rendered (logged) or is gone. The event stream and outbound webhooks
/// both send these.
pub async fn render_subjects(
    state: &AppState,
    rows: &mut [EventRow],
) -> Result<Vec<Option<String>>, ApiError> {
    let mut campaign_ids: Vec<Uuid> =
        rows.iter().filter(|r| !r.kind.is_about_a_call()).map(|r| r.subject_id).collect();
    campaign_ids.sort_unstable();
    campaign_ids.dedup();
    let mut campaigns: HashMap<Uuid, String> = HashMap::new();
    // Replayed rows come with their payloads: only the hub's rows need reading here.
    let payloads_missing = rows.iter().any(|r| r.kind.is_about_a_call() && r.payload.is_none());
    if payloads_missing || !campaign_ids.is_empty() {
        let mut conn = state.pool.acquire().await?;
        if payloads_missing {
            load_payloads(&mut conn, rows).await?;
        }
        if !campaign_ids.is_empty() {
            let found = get_campaigns_by_ids(&mut conn, &campaign_ids).await?;
            drop(conn);
            for campaign in found {
                let id = campaign.id;
                campaigns.insert(id, json(&campaign_resource(state, campaign).await?)?);
            }
        }
    }
    Ok(rows
        .iter()
        .map(|row| match row.kind.is_about_a_call() {
            true => call_json(row),
            false => campaigns.get(&row.subject_id).cloned(),
        })
        .collect())
}

/// The stored snapshot in the API's shape (same fields and formats as `GET /v1/calls/{id}`).
fn call_json(row: &EventRow) -> Option<String> {
    let payload = row.payload.clone()?;
    match serde_json::from_value::<CallResource>(payload)
        .map_err(|e| e.to_string())
        .and_then(|call| serde_json::to_string(&call).map_err(|e| e.to_string()))
    {
        Ok(body) => Some(body),
        Err(error) => {
            tracing::error!(event = row.id, error, "an event's call snapshot does not read as a call");
            None
        }
    }
}

fn json(value: &impl serde::Serialize) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|error| ApiError::internal(error.into()))
}
