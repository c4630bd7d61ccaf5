//! The bytes of Server-Sent Events (`text/event-stream`).

use actix_web::web::Bytes;
use call_service::events::Position;

/// One rendered event, shared by every stream that sends it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub position: Position,
    pub bytes: Bytes,
}

/// `id`, `event` and one `data` line (compact JSON has no newlines).
pub fn event(id: i64, kind: &str, json: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {kind}\ndata: {json}\n\n"))
}

/// Tells the client it missed events it cannot get back: it should reload its state.
pub fn reset(reason: &str) -> Bytes {
    Bytes::from(format!("event: reset\ndata: {{\"reason\":\"{reason}\"}}\n\n"))
}

/// A comment line: keeps proxies and clients from timing out an idle stream.
pub fn heartbeat() -> Bytes {
    Bytes::from_static(b": heartbeat\n\n")
}

/// Sent first: flushes the response headers and sets the client's reconnect delay.
pub fn opening() -> Bytes {
    Bytes::from_static(b": connected\nretry: 3000\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_well_formed_event_stream_records() {
        assert_eq!(
            &event(7, "call.updated", r#"{"a":1}"#)[..],
            b"id: 7\nevent: call.updated\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            &reset("client_too_slow")[..],
            b"event: reset\ndata: {\"reason\":\"client_too_slow\"}\n\n"
        );
        assert!(heartbeat().starts_with(b":"));
        assert!(opening().ends_with(b"\n\n"));
    }
}
