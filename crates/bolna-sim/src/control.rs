//! The simulator's own endpoints under `/_sim` (no Bolna counterpart): read statistics, change
//! faults at run time, hang up held calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::faults::{CallFault, CallFaultRates, WebhookFaults};
use crate::lifecycle;
use crate::state::SimState;

type State = web::Data<Arc<SimState>>;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/_sim/stats", web::get().to(stats))
        .route("/_sim/faults", web::put().to(set_faults))
        .route("/_sim/hangup", web::post().to(hang_up_all))
        .route("/_sim/executions/{id}/hangup", web::post().to(hang_up_one));
}

async fn stats(state: State) -> HttpResponse {
    HttpResponse::Ok().json(&*state.stats())
}

/// A change of faults; absent fields are left as they are.
#[derive(Debug, Default, Deserialize)]
pub struct FaultUpdate {
    pub next_calls: Option<Vec<CallFault>>,
    pub by_recipient: Option<HashMap<String, CallFault>>,
    pub call_rates: Option<CallFaultRates>,
    pub webhooks: Option<WebhookFaults>,
    /// The receiver is "down" for this long from now (0 ends an outage).
    pub webhook_outage_ms: Option<u64>,
    pub api_down: Option<bool>,
}

impl FaultUpdate {
    pub fn apply(self, state: &SimState) {
        let mut faults = state.faults();
        if let Some(next) = self.next_calls {
            faults.next_calls = next.into();
        }
        if let Some(by_recipient) = self.by_recipient {
            faults.by_recipient = by_recipient;
        }
        if let Some(rates) = self.call_rates {
            faults.call_rates = rates;
        }
        if let Some(webhooks) = self.webhooks {
            faults.webhooks = webhooks;
        }
        if let Some(ms) = self.webhook_outage_ms {
            faults.webhook_outage_until = (ms > 0).then(|| Instant::now() + Duration::from_millis(ms));
        }
        if let Some(down) = self.api_down {
            faults.api_down = down;
        }
    }
}

async fn set_faults(state: State, update: web::Json<FaultUpdate>) -> HttpResponse {
    update.into_inner().apply(&state);
    HttpResponse::NoContent().finish()
}

async fn hang_up_all(state: State) -> HttpResponse {
    let ids: Vec<String> = state.executions().keys().cloned().collect();
    let count = ids.iter().filter(|id| lifecycle::hang_up(&state, id)).count();
    HttpResponse::Ok().json(json!({"woken": count}))
}

async fn hang_up_one(state: State, id: web::Path<String>) -> HttpResponse {
    if lifecycle::hang_up(&state, &id) {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::NotFound().json(json!({"detail": "Execution not found"}))
    }
}
