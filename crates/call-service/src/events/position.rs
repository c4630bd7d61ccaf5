//! Where an event sits in the stream.

/// An event's place in the total order every reader sees: its transaction ID (`xid8`), then its
/// row ID. Rows are only read once their transaction is older than every running one, so a
/// position, once passed, never gains an earlier neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub tx_id: i64,
    pub id: i64,
}

impl Position {
    /// Before every event.
    pub const START: Self = Self { tx_id: 0, id: 0 };
}
