//! The `switchboard` binary's library: configuration, telemetry, HTTP routes, start-up and the
//! command line. `main.rs` only parses arguments and calls [`commands::run`].

pub mod auth;
pub mod cli;
pub mod commands;
pub mod components;
pub mod cors;
pub mod database;
pub mod events;
pub mod extract;
pub mod outbound;
pub mod problem;
pub mod request_limit;
pub mod routes;
pub mod secrets;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhook_guard;

pub use settings::Settings;
pub use startup::Application;
