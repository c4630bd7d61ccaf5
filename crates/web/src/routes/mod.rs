//! HTTP routes, one module per area.

pub mod admin;
pub mod api_keys;
pub mod call_input;
pub mod call_resource;
pub mod calls;
pub mod campaign_input;
pub mod campaigns;
pub mod console;
pub mod contract;
pub mod docs;
pub mod events;
pub mod health;
pub mod operations;
pub mod results;
pub mod webhook_endpoints;
pub mod webhooks;
