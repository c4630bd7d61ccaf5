//! One module per measured scenario.

pub mod baseline;
pub mod bulk;
pub mod campaigns;
pub mod dispatch_latency;
pub mod large_tables;
pub mod memory;
pub mod outbound;
pub mod queue_depth;
pub mod results;
pub mod steady_rate;
pub mod throughput;
