//! One module per measured scenario.

pub mod baseline;
pub mod dispatch_latency;
pub mod steady_rate;
pub mod throughput;
