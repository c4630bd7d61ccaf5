//! Live events: the rows triggers write for every call and campaign status change (migration
//! `…04_events.sql`), read back in a stable order for streaming and replay, and the single-use
//! tickets browsers use to open a stream.

mod position;
mod repository;
mod tickets;

pub use position::Position;
pub use repository::{
    event_position, events_after, latest_position, load_payloads, prune_events, user_events_after, EventKind,
    EventRow,
};
pub use tickets::{issue_ticket, prune_tickets, redeem_ticket, IssuedTicket};
