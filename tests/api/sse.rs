//! A small Server-Sent Events reader over a real HTTP response (what an `EventSource` sees).

use std::time::Duration;

use serde_json::Value;

/// One record of the stream: an event, or a comment (`: …`).
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Event { id: Option<i64>, event: String, data: String },
    Comment(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
    ended: bool,
}

impl EventStream {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200, "the stream opens");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "content type {content_type}");
        Self { response, buffer: String::new(), ended: false }
    }

    /// The next record, or `None` when the server closed the stream or `wait` passed.
    pub async fn next_record(&mut self, wait: Duration) -> Option<Record> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(record) = parse(&block) {
                    return Some(record);
                }
                continue;
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(chunk))) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
            }
        }
    }

    /// The next event (comments skipped), or `None` on close or after `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_record(left).await? {
                Record::Event { id, event, data } => {
                    let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    return Some(Event { id, event, data });
                }
                Record::Comment(_) => continue,
            }
        }
    }

    /// Every event until none arrives for `quiet`.
    pub async fn events_until_quiet(&mut self, quiet: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event(quiet).await {
            events.push(event);
        }
        events
    }

    /// Events until one satisfies `done` (included), failing after `wait`.
    pub async fn events_until(&mut self, wait: Duration, mut done: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self
                .next_event(left)
                .await
                .unwrap_or_else(|| panic!("the awaited event did not arrive; got {events:#?}"));
            let finished = done(&event);
            events.push(event);
            if finished {
                return events;
            }
        }
    }
}

fn parse(block: &str) -> Option<Record> {
    let mut id = None;
    let mut event = None;
    let mut data = Vec::new();
    let mut comment = None;
    for line in block.lines() {
        if let Some(text) = line.strip_prefix(':') {
            comment = Some(text.trim().to_owned());
        } else if let Some((field, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = value.parse().ok(),
                "event" => event = Some(value.to_owned()),
                "data" => data.push(value.to_owned()),
                _ => {}
            }
        }
    }
    match (event, data.is_empty()) {
        (Some(event), _) => Some(Record::Event { id, event, data: data.join("\n") }),
        (None, false) => Some(Record::Event { id, event: "message".into(), data: data.join("\n") }),
        (None, true) => comment.map(Record::Comment),
    }
}
