//! Wire models, matching the bodies in `fixtures/`.

mod api;
mod execution;
mod lenient;
mod status;

pub use api::{
    AccountConcurrency, ApiErrorBody, CallRequest, CallResponse, ExecutionsPage, StopResponse, UserMe,
};
pub use execution::{ContextDetails, Execution, TelephonyData, SWITCHBOARD_CALL_ID_KEY};
pub use lenient::parse_timestamp;
pub use status::{BolnaStatus, ExecutionStatus};
