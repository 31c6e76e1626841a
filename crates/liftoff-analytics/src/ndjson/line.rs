//! One NDJSON line in the export shape, read without a `String` per field.
//!
//! The fast path reads the shape the engine writes (`EventRow::to_ndjson`): one flat object
//! of known keys, strings and an integer. Strings without escapes are borrowed from the line;
//! escaped ones (the `properties` text always is) are unescaped into a scratch buffer kept
//! across lines. Anything else — an unknown key, a repeated key, a float, a control
//! character, an odd escape — goes to `serde_json` over [`EventRow`], so the answer (row or
//! error) is always exactly serde's; the fast path only ever takes lines serde would accept
//! the same way.

use crate::row::{EventRow, RowRef, uuid_text};
use crate::strings::Dict;
use std::ops::Range;

/// Where a parsed string lives until the row is handed out.
#[derive(Clone)]
enum Text {
    Line(Range<usize>),
    Scratch(Range<usize>),
}

impl Text {
    fn get<'a>(&self, line: &'a str, scratch: &'a str) -> &'a str {
        match self {
            Text::Line(r) => &line[r.clone()],
            Text::Scratch(r) => &scratch[r.clone()],
        }
    }
}

const TS: u8 = 1;
const USER: u8 = 2;
const SESSION: u8 = 4;
const EVENT: u8 = 8;
const PROPERTIES: u8 = 16;
const UUID: u8 = 32;

/// The rows of one chunk of whole lines; the rows borrow from it.
pub(crate) struct ParsedChunk {
    text: String,
    scratch: String,
    /// Each row with its 1-based line number within the chunk.
    rows: Vec<(u64, Parsed)>,
    owned: Vec<EventRow>,
    /// Lines in the chunk, blank ones included.
    pub(crate) lines: u64,
    pub(crate) blank: u64,
    /// The first bad line: its 1-based number within the chunk, and why.
    pub(crate) error: Option<(u64, String)>,
    /// Distinct property texts of the chunk: the bound of [`ChunkRow::properties_key`].
    pub(crate) distinct_properties: usize,
}

/// One row of a chunk.
pub(crate) struct ChunkRow<'a> {
    /// 1-based, within the chunk.
    pub(crate) line: u64,
    pub(crate) row: RowRef<'a>,
    /// Equal for rows of the chunk with equal property text (when the fast path read them).
    pub(crate) properties_key: Option<u32>,
}

enum Parsed {
    Fast(Fields),
    /// Read by serde: an index into `owned`.
    Owned(usize),
}

impl ParsedChunk {
    /// Parses every line of `chunk` (whole lines, the last one may lack its newline), up to
    /// the first bad one.
    pub(crate) fn parse(chunk: Vec<u8>) -> ParsedChunk {
        let mut parsed = ParsedChunk {
            text: String::new(),
            scratch: String::new(),
            rows: Vec::new(),
            owned: Vec::new(),
            lines: 0,
            blank: 0,
            error: None,
            distinct_properties: 0,
        };
        parsed.text = match String::from_utf8(chunk) {
            Ok(text) => text,
            Err(e) => {
                let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let line = 1 + before.iter().filter(|&&b| b == b'\n').count() as u64;
                parsed.error = Some((line, "not UTF-8".to_owned()));
                return parsed;
            }
        };
        parsed.rows.reserve(parsed.text.len() / 128);
        let mut properties = Unescaped::default();
        let text = &parsed.text;
        let mut start = 0;
        while start < text.len() {
            let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            parsed.lines += 1;
            let line = &text[start..end];
            let at = start;
            start = end + 1;
            match fast(&text[..end], at, &mut parsed.scratch, &mut properties) {
                Some(fields) => parsed.rows.push((parsed.lines, Parsed::Fast(fields))),
                None if line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) => {
                    parsed.blank += 1;
                }
                None => match EventRow::from_ndjson(line) {
                    Ok(row) => {
                        parsed
                            .rows
                            .push((parsed.lines, Parsed::Owned(parsed.owned.len())));
                        parsed.owned.push(row);
                    }
                    Err(e) => {
                        parsed.error = Some((parsed.lines, e.to_string()));
                        return parsed;
                    }
                },
            }
        }
        parsed.distinct_properties = properties.text.len();
        parsed
    }

    /// The rows in line order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = ChunkRow<'_>> {
        self.rows.iter().map(|(line, row)| ChunkRow {
            line: *line,
            row: self.row(row),
            properties_key: match row {
                Parsed::Fast(f) => f.properties.as_ref().map(|&(_, key)| key),
                Parsed::Owned(_) => None,
            },
        })
    }

    fn row(&self, row: &Parsed) -> RowRef<'_> {
        match row {
            Parsed::Fast(f) => {
                let text = |t: &Text| t.get(&self.text, &self.scratch);
                RowRef {
                    ts_ms: f.ts,
                    user: text(&f.user),
                    session: f.session.as_ref().map(text),
                    event: text(&f.event),
                    properties: f.properties.as_ref().map_or("{}", |(t, _)| text(t)),
                    uuid: f.uuid,
                }
            }
            Parsed::Owned(i) => self.owned[*i].as_ref(),
        }
    }
}

struct Fields {
    ts: i64,
    user: Text,
    session: Option<Text>,
    event: Text,
    /// The text and its key among the chunk's distinct property texts.
    properties: Option<(Text, u32)>,
    uuid: Option<u128>,
}

/// The property texts of one chunk unescaped, by their escaped text: a chunk repeats a few
/// hundred objects thousands of times, so each is unescaped once. `None` marks a text the
/// fast path refused.
#[derive(Default)]
struct Unescaped {
    raw: Dict,
    text: Vec<Option<Text>>,
}

/// The fields of the line starting at `at` and ending where `line` ends, when it is in the
/// plain export shape; `None` sends it to serde. Ranges are into `line`, which starts with
/// the lines before this one.
fn fast(
    line: &str,
    mut at: usize,
    scratch: &mut String,
    properties: &mut Unescaped,
) -> Option<Fields> {
    let b = line.as_bytes();
    at = skip_ws(b, at);
    if b.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_ws(b, at + 1);
    let mut seen = 0u8;
    let (mut ts, mut user, mut event) = (None, None, None);
    let (mut session, mut properties_text, mut uuid) = (None, None, None);
    if b.get(at) == Some(&b'}') {
        return None;
    }
    loop {
        // A key, compared whole against the known ones: no scan for its end. Any other key
        // (or one spelled with an escape) goes to serde.
        if b.get(at) != Some(&b'"') {
            return None;
        }
        let rest = &b[at + 1..];
        let (key, bit): (&[u8], u8) = match rest.first()? {
            b't' => (b"ts\"", TS),
            b'u' if rest.get(1) == Some(&b's') => (b"user_id\"", USER),
            b'u' => (b"uuid\"", UUID),
            b's' => (b"session_id\"", SESSION),
            b'e' => (b"event\"", EVENT),
            b'p' => (b"properties\"", PROPERTIES),
            _ => return None,
        };
        if !rest.starts_with(key) {
            return None;
        }
        at = skip_ws(b, at + 1 + key.len());
        if b.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(b, at + 1);
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        match bit {
            TS => {
                let (v, next) = integer(b, at)?;
                ts = Some(v);
                at = next;
            }
            SESSION | UUID if b[at..].starts_with(b"null") => at += 4,
            PROPERTIES => {
                let (text, key, next) = unescaped_once(line, at, scratch, properties)?;
                properties_text = Some((text, key));
                at = next;
            }
            _ => {
                let (text, next) = string(line, at, scratch)?;
                at = next;
                match bit {
                    USER => user = Some(text),
                    SESSION => session = Some(text),
                    EVENT => event = Some(text),
                    _ => uuid = Some(uuid_text::parse(text.get(line, scratch)).ok()?),
                }
            }
        }
        at = skip_ws(b, at);
        match b.get(at) {
            Some(b',') => at = skip_ws(b, at + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    if skip_ws(b, at + 1) != b.len() {
        return None;
    }
    Some(Fields {
        ts: ts?,
        user: user?,
        session,
        event: event?,
        properties: properties_text,
        uuid,
    })
}

/// A string that is likely repeated within the chunk: unescaped the first time its escaped
/// text is seen, looked up after. Answers the text, its key among the distinct texts, and
/// where it ends.
fn unescaped_once(
    line: &str,
    at: usize,
    scratch: &mut String,
    seen: &mut Unescaped,
) -> Option<(Text, u32, usize)> {
    let b = line.as_bytes();
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    // The closing quote: the first one not escaped.
    let mut end = start;
    loop {
        match *b.get(end)? {
            b'"' => break,
            b'\\' => end += 2,
            _ => end += 1,
        }
    }
    let key = seen.raw.intern(&line[start..end]);
    let id = key as usize;
    if id == seen.text.len() {
        let text = string(line, at, scratch).map(|(text, next)| {
            debug_assert_eq!(next, end + 1);
            text
        });
        seen.text.push(text);
    }
    Some((seen.text[id].clone()?, key, end + 1))
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while matches!(b.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// A JSON integer that fits an `i64` (`0` or `-?[1-9][0-9]*`, not followed by a fraction or
/// exponent), and where it ends.
fn integer(b: &[u8], at: usize) -> Option<(i64, usize)> {
    let negative = b.get(at) == Some(&b'-');
    let digits = at + usize::from(negative);
    let len = b[digits..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let end = digits + len;
    if len == 0 || (len > 1 && b[digits] == b'0') || matches!(b.get(end), Some(b'.' | b'e' | b'E'))
    {
        return None;
    }
    // Accumulated negative, so i64::MIN fits; overflow answers None.
    let mut v: i64 = 0;
    for &c in &b[digits..end] {
        v = v.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    Some((if negative { v } else { v.checked_neg()? }, end))
}

/// A JSON string starting at its opening quote, and where it ends.
fn string(line: &str, at: usize, scratch: &mut String) -> Option<(Text, usize)> {
    let b = line.as_bytes();
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let mut i = start;
    loop {
        match *b.get(i)? {
            b'"' => return Some((Text::Line(start..i), i + 1)),
            b'\\' => break,
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
    // Escaped: copy what came before, then unescape the rest into the scratch buffer.
    let from = scratch.len();
    scratch.push_str(&line[start..i]);
    loop {
        let plain = b[i..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        scratch.push_str(&line[i..i + plain]);
        i += plain;
        match b[i] {
            b'"' => return Some((Text::Scratch(from..scratch.len()), i + 1)),
            b'\\' => {
                let escaped = match *b.get(i + 1)? {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        let (c, next) = unicode_escape(b, i)?;
                        scratch.push(c);
                        i = next;
                        continue;
                    }
                    _ => return None,
                };
                scratch.push(escaped);
                i += 2;
            }
            _ => return None,
        }
    }
}

/// `\uXXXX` (or a surrogate pair of two) at `at`: the character and where it ends. A lone
/// surrogate goes to serde, which refuses it.
fn unicode_escape(b: &[u8], at: usize) -> Option<(char, usize)> {
    let unit = |at: usize| -> Option<u32> {
        if b.get(at..at + 2)? != b"\\u" {
            return None;
        }
        let hex = std::str::from_utf8(b.get(at + 2..at + 6)?).ok()?;
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    };
    let first = unit(at)?;
    match first {
        0xD800..=0xDBFF => {
            let second = unit(at + 6)?;
            if !(0xDC00..=0xDFFF).contains(&second) {
                return None;
            }
            let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            Some((char::from_u32(c)?, at + 12))
        }
        0xDC00..=0xDFFF => None,
        _ => Some((char::from_u32(first)?, at + 6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fast path's answer must be serde's: same row, or an error exactly when serde errs.
    fn agrees(line: &str) {
        assert_eq!(
            read(line),
            EventRow::from_ndjson(line).map_err(|e| e.to_string()),
            "line {line:?}"
        );
    }

    fn read(line: &str) -> Result<EventRow, String> {
        let chunk = ParsedChunk::parse(format!("{line}\n").into_bytes());
        if let Some((_, e)) = chunk.error {
            return Err(e);
        }
        let rows: Vec<EventRow> = chunk.rows().map(|r| r.row.to_owned_row()).collect();
        match rows.as_slice() {
            [row] => Ok(row.clone()),
            _ => Err(format!("{} rows", rows.len())),
        }
    }

    #[test]
    fn reads_the_export_shape_without_serde() {
        let row = EventRow {
            ts_ms: 1_704_067_226_356,
            user: "u149877".into(),
            session: Some("s937204".into()),
            event: "page_view".into(),
            properties: r#"{"path": "/blog", "plan": "free"}"#.into(),
            uuid: Some(0x0192_3456_789a_bcde_f012_3456_789a_bcde),
        };
        let line = row.to_ndjson();
        let mut scratch = String::new();
        assert!(
            fast(&line, 0, &mut scratch, &mut Unescaped::default()).is_some(),
            "{line}"
        );
        agrees(&line);
    }

    #[test]
    fn odd_lines_answer_as_serde_does() {
        for line in [
            r#"{"ts":1,"user_id":"u","event":"e"}"#,
            r#" { "ts" : -5 , "user_id" : "u" , "event" : "e" , "session_id" : null } "#,
            r#"{"ts":0,"user_id":"\u00e9\ud83d\ude00","event":"a\/b\n","properties":"{}"}"#,
            r#"{"ts":1,"user_id":"u","event":"e","extra":[1,{"a":2}]}"#,
            r#"{"ts":1,"user_id":"u","event":"e","ts":2}"#,
            r#"{"ts":1.5,"user_id":"u","event":"e"}"#,
            r#"{"ts":01,"user_id":"u","event":"e"}"#,
            r#"{"ts":1e3,"user_id":"u","event":"e"}"#,
            r#"{"ts":99999999999999999999,"user_id":"u","event":"e"}"#,
            r#"{"ts":1,"user_id":"u","event":"e","uuid":"nope"}"#,
            r#"{"ts":1,"user_id":"u","event":"e","uuid":"0192-3456-789abcdef0123456789abcde"}"#,
            r#"{"ts":1,"user_id":"\ud83d","event":"e"}"#,
            "{\"ts\":1,\"user_id\":\"a\tb\",\"event\":\"e\"}",
            r#"{"ts":1,"user_id":"u","event":"e","properties":null}"#,
            r#"{"ts":1,"user_id":"u"}"#,
            r#"{"ts":1,"user_id":"u","event":"e"} x"#,
            r#"{"ts":1,"user_id":"u","event":"e",}"#,
            r#"{"ts":1,"user_id":"u","event":"e""#,
            r#"{"ts":1,"user_id":"u","event":"\x"}"#,
            r#"{"ts":1,"user_id":"u","event":"\u12"}"#,
            r#"{}"#,
            r#"[]"#,
            "\u{c}{}",
        ] {
            agrees(line);
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9_]{0,12}",
            any::<String>(),
            Just(r#"{"path": "/a\"b", "plan": "free"}"#.to_owned()),
        ]
    }

    proptest! {
        /// A chunk reads as serde reads its lines one by one, up to the first bad one — also
        /// when lines repeat, fail, or share escaped property texts.
        #[test]
        fn a_chunk_reads_as_its_lines_do(picks in proptest::collection::vec(0usize..8, 0..40)) {
            let pool = [
                r#"{"ts":1,"user_id":"a","event":"e","properties":"{\"k\": \"v\"}"}"#,
                r#"{"ts":2,"user_id":"b","event":"e","properties":"{\"k\": \"w\"}"}"#,
                r#"{"ts":3,"user_id":"c","event":"e","properties":"{\"k\": \"\q\"}"}"#,
                r#"{"ts":4,"user_id":"d","event":"e","properties":"{\"k\": \"\\\"}"}"#,
                r#"{"ts":5,"user_id":"e","event":"e","properties":"{}","x":1}"#,
                r#"{"ts":6,"user_id":"f","event":"e","properties":"{\"k\": \"\u00e9\"}"}"#,
                "   ",
                r#"{"ts":7,"user_id":"g"}"#,
            ];
            let lines: Vec<&str> = picks.iter().map(|&i| pool[i]).collect();
            let chunk = ParsedChunk::parse(lines.join("\n").into_bytes());
            let mut expected = Vec::new();
            let mut error = None;
            for (no, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match EventRow::from_ndjson(line) {
                    Ok(row) => expected.push((no as u64 + 1, row)),
                    Err(e) => {
                        error = Some((no as u64 + 1, e.to_string()));
                        break;
                    }
                }
            }
            prop_assert_eq!(&chunk.error, &error);
            if error.is_none() {
                let rows: Vec<(u64, EventRow)> =
                    chunk.rows().map(|r| (r.line, r.row.to_owned_row())).collect();
                // Equal keys, equal texts.
                let mut texts = std::collections::HashMap::new();
                for r in chunk.rows() {
                    if let Some(key) = r.properties_key {
                        prop_assert!((key as usize) < chunk.distinct_properties);
                        let text = texts.entry(key).or_insert(r.row.properties);
                        prop_assert_eq!(*text, r.row.properties);
                    }
                }
                prop_assert_eq!(rows, expected);
            }
        }

        /// Every row the engine writes reads back, through the fast path, as itself.
        #[test]
        fn written_rows_read_back(
            ts in any::<i64>(),
            user in text(),
            session in proptest::option::of(text()),
            event in text(),
            properties in text(),
            uuid in proptest::option::of(any::<u128>()),
        ) {
            let row = EventRow { ts_ms: ts, user, session, event, properties, uuid };
            let line = row.to_ndjson();
            prop_assert_eq!(read(&line), Ok(row));
        }

        /// Any line, damaged or not, gets serde's answer.
        #[test]
        fn damaged_lines_answer_as_serde_does(
            user in text(),
            cut in 0usize..120,
            flip in 0usize..120,
            with in prop_oneof![Just('"'), Just('\\'), Just(','), Just('}'), Just('1'), Just(' '), any::<char>()],
        ) {
            let row = EventRow {
                ts_ms: 1_704_067_226_356,
                user,
                session: Some("s1".into()),
                event: "page_view".into(),
                properties: r#"{"path": "/blog"}"#.into(),
                uuid: Some(7),
            };
            let mut chars: Vec<char> = row.to_ndjson().chars().collect();
            if flip < chars.len() {
                chars[flip] = with;
            }
            chars.truncate(chars.len().saturating_sub(cut % 8));
            let line: String = chars.into_iter().collect();
            prop_assume!(!line.contains('\n'), "a newline makes two lines");
            agrees(&line);
        }
    }
}
