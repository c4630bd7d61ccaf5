//! One module per measured scenario.

pub mod dispatch_latency;
