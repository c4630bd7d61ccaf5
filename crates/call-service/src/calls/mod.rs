//! Calls: admission, the hand-off to Bolna, ending and cancellation, and reads.

pub(crate) mod admission;
mod cancel;
pub(crate) mod ending;
mod model;
mod operations;
pub(crate) mod record;
mod repository;
pub(crate) mod starter;
mod status;
pub(crate) mod store;

pub use admission::{Admitted, NewCall};
pub use concurrency::DISPATCH_CHANNEL;
pub use model::Call;
pub use operations::{ConcurrencyView, ForceReleased, TypeUsage};
pub use repository::{get_call, get_call_by_id, get_calls_by_ids, list_calls, CallCursor, CallFilter};
pub use starter::SWITCHBOARD_USER_ID_KEY;
pub use status::{CallStatus, Transition, UnknownStatus};
