//! Server-sent-events framing, incremental and allocation-free in the common case.
//!
//! Upstream bytes arrive at arbitrary boundaries, so [`Framer`] carries the few bits of line state
//! needed to find the blank line that ends an event across chunks, without ever re-scanning what
//! it has seen. It accepts `\n`, `\r\n` and bare `\r` line endings, as the SSE spec does. A `\r`
//! that might be the first half of `\r\n` is resolved by the next byte whenever it arrives, so the
//! boundaries found do not depend on how the stream was split.

use std::borrow::Cow;

use memchr::memchr2;

/// Line state between two calls of [`Framer::find_end`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Framer {
    /// The last byte seen is inside a line (not a terminator).
    mid_line: bool,
    /// The last byte seen is a `\r`, so a following `\n` belongs to the same terminator.
    after_cr: bool,
    /// The event already ended with a blank line made of a `\r`; a following `\n` is part of it.
    ended_on_cr: bool,
}

impl Framer {
    /// Scans `buf`, the bytes right after everything scanned so far, for the end of the current
    /// event. Returns the offset just past its final blank line, after which the framer is ready
    /// for the next event; `None` when `buf` holds no end (its state then covers all of `buf`).
    /// `Some(0)` means the event ended exactly where the previous buffer did.
    pub(crate) fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        let first = *buf.first()?;
        if self.ended_on_cr {
            *self = Framer::default();
            return Some(usize::from(first == b'\n'));
        }
        let mut pos = 0;
        loop {
            let Some(found) = buf.get(pos..).and_then(|rest| memchr2(b'\r', b'\n', rest)) else {
                if pos < buf.len() {
                    self.mid_line = true;
                    self.after_cr = false;
                }
                return None;
            };
            let at = pos + found;
            if found > 0 {
                self.mid_line = true;
                self.after_cr = false;
            }
            let byte = buf.get(at).copied().unwrap_or(b'\n');
            pos = at + 1;
            if byte == b'\n' && self.after_cr {
                // Second half of a `\r\n`: still at the start of a line.
                self.after_cr = false;
                continue;
            }
            if self.mid_line {
                self.mid_line = false;
                self.after_cr = byte == b'\r';
                continue;
            }
            // A terminator at the start of a line: the blank line that ends the event.
            *self = Framer::default();
            if byte == b'\r' {
                match buf.get(pos) {
                    Some(b'\n') => return Some(pos + 1),
                    Some(_) => return Some(pos),
                    None => {
                        // Wait for the next byte to know whether a `\n` belongs to this event.
                        self.ended_on_cr = true;
                        return None;
                    }
                }
            }
            return Some(pos);
        }
    }

    /// The bytes that would close the event scanned so far if the stream ended now, so that
    /// whatever is appended after it is framed as an event of its own. Empty when nothing of
    /// the current event has been seen or it is already closed.
    pub(crate) fn closing(&self, event_started: bool) -> &'static [u8] {
        if !event_started || self.ended_on_cr {
            b""
        } else if self.mid_line || self.after_cr {
            b"\n\n"
        } else {
            b"\n"
        }
    }
}

/// The fields of one event Rungate cares about.
#[derive(Debug, Default)]
pub(crate) struct Event<'a> {
    /// The `event:` field, if any.
    pub(crate) name: Option<&'a [u8]>,
    /// The `data:` lines joined with `\n` (borrowed when there is only one).
    pub(crate) data: Cow<'a, [u8]>,
    /// Whether there was any `data` line at all.
    pub(crate) has_data: bool,
}

/// Splits the bytes of one event (blank line included or not) into its fields.
pub(crate) fn parse_event(raw: &[u8]) -> Event<'_> {
    let mut event = Event::default();
    let mut rest = raw;
    while !rest.is_empty() {
        let (line, next) = match memchr2(b'\r', b'\n', rest) {
            Some(i) => {
                let skip = if rest.get(i..i + 2) == Some(b"\r\n") {
                    2
                } else {
                    1
                };
                (
                    rest.get(..i).unwrap_or(b""),
                    rest.get(i + skip..).unwrap_or(b""),
                )
            }
            None => (rest, &b""[..]),
        };
        rest = next;
        read_line(line, &mut event);
    }
    event
}

fn read_line<'a>(line: &'a [u8], event: &mut Event<'a>) {
    if line.is_empty() || line.first() == Some(&b':') {
        return;
    }
    let (field, value) = match memchr::memchr(b':', line) {
        Some(i) => {
            let value = line.get(i + 1..).unwrap_or(b"");
            (
                line.get(..i).unwrap_or(b""),
                value.strip_prefix(b" ").unwrap_or(value),
            )
        }
        None => (line, &b""[..]),
    };
    match field {
        b"event" => event.name = Some(value),
        b"data" if !event.has_data => {
            event.has_data = true;
            event.data = Cow::Borrowed(value);
        }
        b"data" => {
            let data = event.data.to_mut();
            data.push(b'\n');
            data.extend_from_slice(value);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in the given pieces and returns the event ends as offsets into `input`.
    fn ends(input: &[u8], cuts: &[usize]) -> Vec<usize> {
        let mut framer = Framer::default();
        let mut found = Vec::new();
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(input.len());
        let mut start = 0;
        for end in bounds {
            let mut pos = start;
            while let Some(n) = framer.find_end(input.get(pos..end).unwrap_or(b"")) {
                pos += n;
                found.push(pos);
            }
            start = end;
        }
        found
    }

    fn check(input: &str, expected: &[usize]) {
        let bytes = input.as_bytes();
        assert_eq!(ends(bytes, &[]), expected, "whole {input:?}");
        let every: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(ends(bytes, &every), expected, "byte by byte {input:?}");
    }

    #[test]
    fn finds_event_ends_for_every_line_ending() {
        check("data: a\n\ndata: b\n\n", &[9, 18]);
        check("data: a\r\n\r\ndata: b\r\n\r\n", &[11, 22]);
        check("data: a\r\rdata: b\r\r", &[9]);
        check("data: a\r\n\ndata: b\n\r\n", &[10, 20]);
        check("event: x\ndata: a\n\n", &[18]);
        check("data: a\ndata: b", &[]);
        check("\n\ndata: a\n\n", &[1, 2, 11]);
    }

    #[test]
    fn a_trailing_cr_blank_line_ends_the_event_and_swallows_its_lf() {
        let mut framer = Framer::default();
        assert_eq!(framer.find_end(b"data: a\r\n\r"), None);
        assert_eq!(framer.closing(true), b"");
        assert_eq!(framer.find_end(b"\ndata: b\n\n"), Some(1));
        assert_eq!(framer.find_end(b"data: b\n\n"), Some(9));
    }

    #[test]
    fn closing_completes_an_unterminated_event() {
        let mut framer = Framer::default();
        assert_eq!(framer.find_end(b"data: [DONE]"), None);
        assert_eq!(framer.closing(true), b"\n\n");
        assert_eq!(framer.find_end(b"\n"), None);
        assert_eq!(framer.closing(true), b"\n");
        assert_eq!(framer.closing(false), b"");
    }

    #[test]
    fn parses_fields_of_an_event() {
        let event =
            parse_event(b"event: message_delta\r\ndata: {\"a\":1}\r\n: comment\r\nid: 7\r\n\r\n");
        assert_eq!(event.name, Some(&b"message_delta"[..]));
        assert_eq!(&*event.data, b"{\"a\":1}");
        let event = parse_event(b"data:one\ndata: two\ndata\n\n");
        assert_eq!(&*event.data, b"one\ntwo\n");
        assert!(event.has_data);
        let event = parse_event(b": keep-alive\n\n");
        assert!(!event.has_data && event.name.is_none());
    }
}
