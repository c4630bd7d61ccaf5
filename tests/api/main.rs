//! Black-box tests of the whole service: real PostgreSQL, real HTTP, the Bolna simulator.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod admin;
mod api_keys;
mod bolna_limits;
mod browser;
mod budgets;
mod calls;
mod campaign_scheduling;
mod campaigns;
mod configuration;
mod definitions;
mod events;
mod health;
mod helpers;
mod hostile_input;
mod migrations;
mod number_cap;
mod outbound_webhooks;
mod race;
mod resilience;
mod results;
mod sse;
mod webhooks;
