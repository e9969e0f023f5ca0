//! Server-sent-event bodies: framing, pacing, and the scripted mid-stream death.
//!
//! The events of a reply are rendered up front (they are small) and then released one by one, waiting
//! `chunk_delay` between them, so each reaches the client as its own write and a gateway's streaming path
//! is exercised event by event. `die_after_events` ends the body with an error instead of its last
//! chunk: hyper then drops the connection without the terminating zero-length chunk (HTTP/1.1) or
//! resets the stream (HTTP/2), which is what a client sees when a provider dies mid-answer.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde::Serialize;

/// One `data: <json>\n\n` event (OpenAI's framing).
pub(crate) fn data_event(json: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    write_json(&mut out, json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// One `data: <json>\r\n\r\n` event (Google's framing for Gemini's `alt=sse`).
pub(crate) fn data_event_crlf(json: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    write_json(&mut out, json);
    out.extend_from_slice(b"\r\n\r\n");
    Bytes::from(out)
}

/// One `event: <name>\ndata: <json>\n\n` event (Anthropic's and OpenAI Responses' framing).
pub(crate) fn named_event(name: &str, json: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    write_json(&mut out, json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Serialize `value` as JSON onto `out`.
pub(crate) fn write_json(out: &mut Vec<u8>, value: &impl Serialize) {
    // The mock's wire structs are plain data with string keys: writing them to a Vec cannot fail.
    if let Err(error) = serde_json::to_writer(out, value) {
        tracing::error!(%error, "mock-upstream: could not serialize a response");
    }
}

/// How a stream of events is released.
pub(crate) struct Pacing {
    pub(crate) chunk_delay: Duration,
    /// Break the connection after this many events (after all of them if the number is larger).
    pub(crate) die_after_events: Option<usize>,
}

/// A streaming body that releases `events` as `pacing` says.
pub(crate) fn body(events: Vec<Bytes>, pacing: Pacing) -> Body {
    let feed = Feed {
        events: events.into_iter(),
        sent: 0,
        pacing,
        ended: false,
    };
    Body::from_stream(futures::stream::unfold(feed, Feed::next))
}

struct Feed {
    events: std::vec::IntoIter<Bytes>,
    sent: usize,
    pacing: Pacing,
    ended: bool,
}

impl Feed {
    async fn next(mut self) -> Option<(io::Result<Bytes>, Feed)> {
        if self.ended {
            return None;
        }
        let die_after = self.pacing.die_after_events;
        let next = if die_after == Some(self.sent) {
            None
        } else {
            self.events.next()
        };
        match next {
            Some(event) => {
                if self.sent > 0 && !self.pacing.chunk_delay.is_zero() {
                    tokio::time::sleep(self.pacing.chunk_delay).await;
                }
                self.sent += 1;
                Some((Ok(event), self))
            }
            None if die_after.is_some() => {
                // hyper drops what it has buffered when the body fails; going pending once lets it
                // flush the events already produced, so the client really receives them first.
                tokio::task::yield_now().await;
                Some(self.die())
            }
            None => None,
        }
    }

    fn die(mut self) -> (io::Result<Bytes>, Feed) {
        self.ended = true;
        let error = io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "mock-upstream: die_after_events",
        );
        (Err(error), self)
    }
}
