//! A small, incremental parser for `text/event-stream` (the Server-Sent Events wire format).
//!
//! Follows the WHATWG parsing rules: lines end in `\n`, `\r\n` or `\r` (also when split across
//! chunks), a leading BOM is dropped, `:` lines are comments (keep-alives), one space after the
//! field's colon is stripped, `data` lines are joined with `\n`, and a blank line dispatches the
//! event unless it has no data. One deviation: an event's `id` is the `id` field of that event
//! only (the Liftoff server sends one with every event: its ETag), not the last one ever seen.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event` field; `"message"` when absent.
    pub event: String,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// The `id` field of this event, if any.
    pub id: Option<String>,
}

/// A line or an event grew past the parser's limit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge {
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event larger than {} bytes", self.limit)
    }
}

/// Feed it the body's chunks as they arrive; it returns the events they complete.
#[derive(Debug)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// At least one line was seen (only the first may carry a BOM).
    started: bool,
    event: String,
    data: String,
    id: Option<String>,
    max_bytes: usize,
}

impl SseParser {
    /// A parser that refuses lines and events larger than `max_bytes`.
    pub fn new(max_bytes: usize) -> SseParser {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            started: false,
            event: String::new(),
            data: String::new(),
            id: None,
            max_bytes,
        }
    }

    /// Consumes one chunk of the body.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<Vec<SseEvent>, TooLarge> {
        let mut out = Vec::new();
        while !chunk.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if chunk[0] == b'\n' {
                    chunk = &chunk[1..];
                    continue;
                }
            }
            match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.line.extend_from_slice(chunk);
                    self.check(self.line.len())?;
                    break;
                }
                Some(end) => {
                    self.line.extend_from_slice(&chunk[..end]);
                    self.check(self.line.len())?;
                    self.after_cr = chunk[end] == b'\r';
                    chunk = &chunk[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.process_line(&line, &mut out)?;
                    // Reuse the allocation for the next line.
                    self.line = line;
                    self.line.clear();
                }
            }
        }
        Ok(out)
    }

    fn check(&self, len: usize) -> Result<(), TooLarge> {
        if len > self.max_bytes {
            Err(TooLarge {
                limit: self.max_bytes,
            })
        } else {
            Ok(())
        }
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), TooLarge> {
        let decoded = String::from_utf8_lossy(line);
        let mut text: &str = &decoded;
        if !self.started {
            self.started = true;
            text = text.strip_prefix('\u{feff}').unwrap_or(text);
        }
        if text.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if text.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.check(self.data.len())?;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            // `retry` and unknown fields are ignored.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        let id = self.id.take();
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the '\n' after the last data line
        out.push(SseEvent {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
            id,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    fn parse_all(input: &[u8]) -> Vec<SseEvent> {
        SseParser::new(1 << 20).feed(input).unwrap()
    }

    const FLAGS: &[u8] =
        b": keep-alive\n\nevent: flags\nid: \"e1\"\ndata: {\"features\":[]}\n\n: keep-alive\n\n";

    #[test]
    fn parses_the_liftoff_flags_event_and_skips_keep_alives() {
        assert_eq!(
            parse_all(FLAGS),
            vec![ev("flags", "{\"features\":[]}", Some("\"e1\""))]
        );
    }

    #[test]
    fn any_chunking_gives_the_same_events() {
        let input: Vec<u8> = [
            FLAGS,
            b"event: flags\r\nid: e2\r\ndata: x\r\n\r\n".as_slice(),
        ]
        .concat();
        let whole = parse_all(&input);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[1], ev("flags", "x", Some("e2")));
        for split in 0..=input.len() {
            let mut p = SseParser::new(1 << 20);
            let mut got = p.feed(&input[..split]).unwrap();
            got.extend(p.feed(&input[split..]).unwrap());
            assert_eq!(got, whole, "split at {split}");
        }
        // One byte at a time.
        let mut p = SseParser::new(1 << 20);
        let mut got = Vec::new();
        for b in &input {
            got.extend(p.feed(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn line_endings_cr_crlf_lf() {
        assert_eq!(
            parse_all(b"data: a\rdata: b\r\ndata: c\n\r"),
            vec![ev("message", "a\nb\nc", None)]
        );
        // "\r\r" is two line ends, so this is an event followed by nothing.
        assert_eq!(parse_all(b"data: a\r\r"), vec![ev("message", "a", None)]);
    }

    #[test]
    fn field_rules() {
        // Only one leading space is stripped; no colon means an empty value; unknown fields and
        // `retry` are ignored; an event without data is not dispatched and its id is forgotten.
        assert_eq!(
            parse_all(b"id: lost\nevent: flags\n\ndata:  two\ndata\nretry: 10\nfoo: bar\n\n"),
            vec![ev("message", " two\n", None)]
        );
        // A BOM at the very start is dropped.
        assert_eq!(
            parse_all("\u{feff}data: x\n\n".as_bytes()),
            vec![ev("message", "x", None)]
        );
        // An id with NUL is ignored.
        assert_eq!(
            parse_all(b"id: a\0b\ndata: x\n\n"),
            vec![ev("message", "x", None)]
        );
        // No blank line yet: nothing is dispatched.
        assert_eq!(parse_all(b"event: flags\ndata: x\n"), vec![]);
    }

    #[test]
    fn multi_byte_characters_split_across_chunks() {
        let input = "data: h\u{e9}llo \u{1f680}\n\n".as_bytes();
        for split in 0..=input.len() {
            let mut p = SseParser::new(1 << 20);
            let mut got = p.feed(&input[..split]).unwrap();
            got.extend(p.feed(&input[split..]).unwrap());
            assert_eq!(got, vec![ev("message", "h\u{e9}llo \u{1f680}", None)]);
        }
    }

    #[test]
    fn refuses_oversized_lines_and_events() {
        let mut p = SseParser::new(8);
        assert_eq!(p.feed(b"data: 0123456789"), Err(TooLarge { limit: 8 }));
        let mut p = SseParser::new(8);
        assert!(p.feed(b"data: 1234\ndata: 5678\n").is_err());
        let mut p = SseParser::new(8);
        assert_eq!(p.feed(b"data: 12\n\n").unwrap().len(), 1);
    }
}
