//! Black-box tests of the whole service: real PostgreSQL, real HTTP.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod configuration;
mod health;
mod helpers;
