//! `liftoff import events` and `liftoff export`: product events into and out of a running
//! server through its API, streamed both ways so memory stays bounded whatever the size.
//!
//! Import: a blocking reader thread turns the file (gzip recognised by its magic bytes) into
//! batches of native ingest events and hands them over a bounded channel to up to
//! `--concurrency` requests in flight; a request the server refuses for one event (422) is
//! sent again without that event, one too large (413) is split, 429 and 503 wait for
//! `Retry-After`. Export: the answer's chunks are written as they arrive.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal as _, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use liftoff_core::analytics::event::{format_uuid, parse_time};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::cli::{ExportArgs, ExportFormat, ImportEventsArgs, Remote};
use crate::remote;

/// Longest line read; a longer one is skipped as rejected (the server takes 1 MiB bodies by
/// default and 64 KiB of properties per event).
const MAX_LINE: usize = 4 << 20;
/// Rejected lines reported one by one; the rest are only counted.
const SHOWN_REJECTIONS: u64 = 100;
/// How long one batch keeps waiting while the server answers 429 or 503. The server answers
/// those at once when its writer is behind (a day being sealed, a checkpoint), which can last
/// longer than a few retries; it is alive, so waiting is right.
const BUSY_PATIENCE: Duration = Duration::from_secs(300);
/// Attempts per request while the server cannot be reached (about 8 s in all).
const MAX_CONNECT_ATTEMPTS: u32 = 5;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The UUID an event without one gets: a version-8 UUID laid out as a version 7 is, the
/// event's Unix milliseconds in the first 48 bits (when the line has a timestamp) and SHA-256
/// of the line's bytes in the rest. Importing the same line again gives the same UUID, so it
/// is a duplicate, not a second event; and a file in time order gives UUIDs in order, so the
/// server's uuid indexes grow at their end instead of at a random page per event.
pub fn line_uuid(line: &[u8], ts_ms: Option<i64>) -> String {
    let digest = Sha256::digest(line);
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    if let Some(ts) = ts_ms.and_then(|t| u64::try_from(t).ok()) {
        b[..6].copy_from_slice(&ts.to_be_bytes()[2..]);
    }
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    format_uuid(u128::from_be_bytes(b))
}

/// One line as an event in the native ingest shape (`{event, user_id, session_id?, timestamp?,
/// properties?, uuid}`), or why it cannot be one. Engine rows (`ts` in Unix ms, `properties`
/// as JSON text) are converted; the server validates the rest.
pub fn to_native(line: &[u8]) -> Result<String, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut o) = value else {
        return Err("not a JSON object".into());
    };
    if let Some(ts) = o.remove("ts")
        && o.get("timestamp").is_none_or(Value::is_null)
    {
        o.insert("timestamp".into(), ts);
    }
    if let Some(Value::String(text)) = o.get("properties") {
        let parsed: Value = serde_json::from_str(text)
            .map_err(|e| format!("`properties` is text but not JSON: {e}"))?;
        o.insert("properties".into(), parsed);
    }
    if !o.get("event").is_some_and(Value::is_string) {
        return Err("`event` is missing or not a string".into());
    }
    if !["user_id", "distinct_id"]
        .iter()
        .any(|k| o.get(*k).is_some_and(Value::is_string))
    {
        return Err("`user_id` is missing or not a string".into());
    }
    if o.get("session_id").is_some_and(Value::is_null) {
        o.remove("session_id");
    }
    if o.get("uuid").is_none_or(Value::is_null) {
        // Read as the server will read it, so the uuid's time is the stored event's.
        let ts = o.get("timestamp").and_then(|t| parse_time(t).ok());
        o.insert("uuid".into(), Value::String(line_uuid(line, ts)));
    }
    Ok(Value::Object(o).to_string())
}

/// An event read from the file: its line number and its native JSON.
struct Line {
    no: u64,
    json: String,
}

/// What the reader hands over.
enum Item {
    /// Events, and how many bytes of the file had been read once they were.
    Batch(Vec<Line>, u64),
    Rejected(u64, String),
}

/// Counts the bytes read from the file (compressed, when it is gzip): the progress.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads `path` line by line into batches of `size` and sends them on `tx` (blocking when the
/// senders are behind, so only a few batches are ever in memory).
fn read_events(
    path: &Path,
    size: usize,
    tx: &mpsc::Sender<Item>,
    read: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    let mut counted = BufReader::with_capacity(
        256 << 10,
        Counting {
            inner: raw,
            read: read.clone(),
        },
    );
    let gzip = counted
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?
        .starts_with(&GZIP_MAGIC);
    if !gzip && path.extension().is_some_and(|e| e == "gz") && !counted.buffer().is_empty() {
        bail!("{} ends in .gz but is not gzip", path.display());
    }
    let mut lines: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            256 << 10,
            flate2::bufread::MultiGzDecoder::new(counted),
        ))
    } else {
        Box::new(counted)
    };
    let send = |item| tx.blocking_send(item).is_ok();
    let mut buf = Vec::new();
    let mut batch = Vec::with_capacity(size);
    let mut no = 0u64;
    loop {
        buf.clear();
        let n = lines
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {} at line {}", path.display(), no + 1))?;
        if n == 0 {
            break;
        }
        no += 1;
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            skip_line(&mut *lines)
                .with_context(|| format!("cannot read {} at line {no}", path.display()))?;
            if !send(Item::Rejected(
                no,
                format!("longer than {} MiB", MAX_LINE >> 20),
            )) {
                return Ok(());
            }
            continue;
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match to_native(line) {
            Ok(json) => {
                batch.push(Line { no, json });
                if batch.len() >= size
                    && !send(Item::Batch(
                        std::mem::take(&mut batch),
                        read.load(Ordering::Relaxed),
                    ))
                {
                    return Ok(());
                }
            }
            Err(why) => {
                if !send(Item::Rejected(no, why)) {
                    return Ok(());
                }
            }
        }
    }
    if !batch.is_empty() {
        send(Item::Batch(batch, read.load(Ordering::Relaxed)));
    }
    Ok(())
}

/// Consumes the rest of an over-long line without keeping it.
fn skip_line(r: &mut dyn BufRead) -> io::Result<()> {
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = chunk.len();
                r.consume(n);
            }
        }
    }
}

/// What the server made of one batch.
#[derive(Default)]
struct Sent {
    events: u64,
    accepted: u64,
    duplicates: u64,
    rejected: Vec<(u64, String)>,
}

/// Seconds the server asks us to wait, or an exponential backoff (capped at 30 s).
fn wait_for(res: Option<&reqwest::Response>, attempt: u32) -> Duration {
    let asked = res
        .and_then(|r| r.headers().get(reqwest::header::RETRY_AFTER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match asked {
        Some(secs) => Duration::from_secs(secs.clamp(1, 300)),
        None => Duration::from_millis((250u64 << attempt.min(7)).min(30_000)),
    }
}

/// The index in "event 3: …" of a 422 problem's detail, and the message after it.
fn refused_event(detail: &str) -> Option<(usize, String)> {
    let rest = detail.strip_prefix("event ")?;
    let (index, message) = rest.split_once(": ")?;
    let message = message
        .trim_end_matches("; nothing of this batch was stored")
        .to_owned();
    Some((index.parse().ok()?, message))
}

/// What the progress shows of an import: the file's bytes up to the last event sent (not
/// just read: the reader runs a few batches ahead) and the events sent.
#[derive(Clone, Default)]
struct Done {
    bytes: Arc<AtomicU64>,
    events: Arc<AtomicU64>,
}

/// Posts `lines` until every event is stored, a duplicate or rejected.
async fn post_batch(
    http: reqwest::Client,
    url: Arc<str>,
    token: Arc<str>,
    lines: Vec<Line>,
    upto: u64,
    done: Done,
) -> anyhow::Result<Sent> {
    let mut sent = Sent::default();
    let mut work = vec![lines];
    while let Some(mut part) = work.pop() {
        let mut attempt = 0u32;
        let mut busy = Duration::ZERO;
        loop {
            if part.is_empty() {
                break;
            }
            let mut body = String::with_capacity(part.iter().map(|l| l.json.len() + 1).sum());
            body.push('[');
            for (i, l) in part.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&l.json);
            }
            body.push(']');
            let res = http
                .post(format!("{url}/api/ingest/events"))
                .bearer_auth(&*token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await;
            attempt += 1;
            let res = match res {
                Ok(res) => res,
                Err(e) if attempt < MAX_CONNECT_ATTEMPTS && !e.is_builder() => {
                    tokio::time::sleep(wait_for(None, attempt)).await;
                    continue;
                }
                Err(e) => return Err(e).context(format!("cannot reach Liftoff at {url}")),
            };
            match res.status().as_u16() {
                200..=299 => {
                    let answer: Value = res.json().await.unwrap_or(Value::Null);
                    sent.events += part.len() as u64;
                    done.events.fetch_add(part.len() as u64, Ordering::Relaxed);
                    sent.accepted += answer["accepted"].as_u64().unwrap_or_default();
                    sent.duplicates += answer["duplicates"].as_u64().unwrap_or_default();
                    break;
                }
                429 | 503 if busy < BUSY_PATIENCE => {
                    let wait = wait_for(Some(&res), attempt);
                    busy += wait;
                    tokio::time::sleep(wait).await;
                }
                413 if part.len() > 1 => {
                    let half = part.split_off(part.len() / 2);
                    work.push(half);
                    work.push(part);
                    break;
                }
                413 => {
                    sent.rejected.push((
                        part[0].no,
                        "larger than the server's body limit (--max-body-bytes)".into(),
                    ));
                    break;
                }
                422 => {
                    let text = res.text().await.unwrap_or_default();
                    let detail = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["detail"].as_str().map(str::to_owned))
                        .unwrap_or(text);
                    match refused_event(&detail) {
                        Some((i, message)) if i < part.len() => {
                            let line = part.remove(i);
                            sent.rejected.push((line.no, format!("refused: {message}")));
                            attempt = 0;
                        }
                        _ => bail!("the server refused a batch: {detail}"),
                    }
                }
                _ => {
                    remote::check(res).await?;
                    bail!("unexpected answer from the server");
                }
            }
        }
    }
    done.bytes.fetch_max(upto, Ordering::Relaxed);
    Ok(sent)
}

/// Progress on standard error: redrawn in place on a terminal, a line every few seconds
/// otherwise.
struct Progress {
    shared: Arc<ProgressState>,
    ticker: tokio::task::JoinHandle<()>,
}

struct ProgressState {
    label: &'static str,
    /// Bytes read (import) or received (export).
    bytes: Arc<AtomicU64>,
    /// The file's size, when known.
    total: Option<u64>,
    /// Events sent (import) or written (export), when they can be counted.
    events: Option<Arc<AtomicU64>>,
    verb: &'static str,
    started: Instant,
    tty: bool,
    /// Whether a progress line is on screen (terminal only); the lock orders output.
    drawn: Mutex<bool>,
    done: AtomicBool,
}

fn megabytes(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// 1234567 → "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn seconds(d: f64) -> String {
    if d < 90.0 {
        format!("{d:.0} s")
    } else if d < 5400.0 {
        format!("{:.0} min", d / 60.0)
    } else {
        format!("{:.1} h", d / 3600.0)
    }
}

impl ProgressState {
    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let mut out = format!("{}: ", self.label);
        let mut eta = None;
        match self.total {
            Some(total) if total > 0 => {
                let share = (bytes as f64 / total as f64).min(1.0);
                if self.tty {
                    let width = 24;
                    let filled = (share * width as f64) as usize;
                    out.push('[');
                    out.push_str(&"#".repeat(filled));
                    out.push_str(&"-".repeat(width - filled));
                    out.push_str("] ");
                }
                out.push_str(&format!(
                    "{:.0}% {} of {}",
                    share * 100.0,
                    megabytes(bytes),
                    megabytes(total)
                ));
                if share > 0.0 {
                    eta = Some(elapsed * (1.0 - share) / share);
                }
            }
            _ => out.push_str(&megabytes(bytes)),
        }
        match &self.events {
            Some(events) => {
                let events = events.load(Ordering::Relaxed);
                out.push_str(&format!(
                    ", {} events {}, {}/s",
                    thousands(events),
                    self.verb,
                    thousands((events as f64 / elapsed) as u64)
                ));
            }
            None => out.push_str(&format!(
                ", {}/s",
                megabytes((bytes as f64 / elapsed) as u64)
            )),
        }
        if let Some(eta) = eta {
            out.push_str(&format!(", ETA {}", seconds(eta)));
        }
        out
    }

    fn draw(&self) {
        if self.done.load(Ordering::Relaxed) {
            return;
        }
        let mut drawn = self.drawn.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{}", self.line());
            *drawn = true;
        } else {
            let _ = writeln!(err, "{}", self.line());
        }
        let _ = err.flush();
    }

    /// Prints a message above the progress line.
    fn note(&self, message: &str) {
        let mut drawn = self.drawn.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = io::stderr().lock();
        if *drawn {
            let _ = write!(err, "\r\x1b[2K");
            *drawn = false;
        }
        let _ = writeln!(err, "{message}");
    }
}

impl Progress {
    fn start(
        label: &'static str,
        verb: &'static str,
        total: Option<u64>,
        bytes: Arc<AtomicU64>,
        events: Option<Arc<AtomicU64>>,
    ) -> Self {
        let tty = io::stderr().is_terminal();
        let shared = Arc::new(ProgressState {
            label,
            bytes,
            total,
            events,
            verb,
            started: Instant::now(),
            tty,
            drawn: Mutex::new(false),
            done: AtomicBool::new(false),
        });
        let every = if tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        let state = shared.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                state.draw();
            }
        });
        Self { shared, ticker }
    }

    fn note(&self, message: &str) {
        self.shared.note(message);
    }

    /// Stops drawing and clears the line.
    fn finish(self) -> Duration {
        self.ticker.abort();
        self.shared.done.store(true, Ordering::Relaxed);
        let mut drawn = self.shared.drawn.lock().unwrap_or_else(|e| e.into_inner());
        if *drawn {
            let _ = write!(io::stderr(), "\r\x1b[2K");
            *drawn = false;
        }
        self.shared.started.elapsed()
    }
}

/// Totals of an import.
#[derive(Default)]
struct Totals {
    events: u64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
}

impl Totals {
    fn add(&mut self, sent: Sent, progress: &Progress) {
        self.events += sent.events;
        self.accepted += sent.accepted;
        self.duplicates += sent.duplicates;
        for (no, why) in sent.rejected {
            self.reject(no, &why, progress);
        }
    }

    fn reject(&mut self, no: u64, why: &str, progress: &Progress) {
        self.rejected += 1;
        if self.rejected <= SHOWN_REJECTIONS {
            progress.note(&format!("line {no}: {why}; skipped"));
        }
    }
}

/// `liftoff import events FILE`.
pub async fn import_events(args: ImportEventsArgs) -> anyhow::Result<()> {
    let (http, url, token) = remote::client(&Remote {
        url: args.url.clone(),
        token: args.token.clone(),
    })?;
    let (url, token): (Arc<str>, Arc<str>) = (url.into(), token.into());
    let path: PathBuf = args.file.clone();
    let name = if path.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    let total = if path.as_os_str() == "-" {
        None
    } else {
        Some(
            std::fs::metadata(&path)
                .with_context(|| format!("cannot open {name}"))?
                .len(),
        )
    };
    let read = Arc::new(AtomicU64::new(0));
    let done = Done::default();
    let concurrency = args.concurrency.max(1) as usize;
    let (tx, mut rx) = mpsc::channel(concurrency);
    let reader = {
        let read = read.clone();
        let size = args.batch.max(1) as usize;
        tokio::task::spawn_blocking(move || read_events(&path, size, &tx, read))
    };
    let progress = Progress::start(
        "import",
        "sent",
        total,
        done.bytes.clone(),
        Some(done.events.clone()),
    );
    let mut totals = Totals::default();
    let mut tasks: JoinSet<anyhow::Result<Sent>> = JoinSet::new();
    let outcome: anyhow::Result<()> = async {
        while let Some(item) = rx.recv().await {
            match item {
                Item::Rejected(no, why) => totals.reject(no, &why, &progress),
                Item::Batch(lines, upto) => {
                    while tasks.len() >= concurrency {
                        if let Some(done) = tasks.join_next().await {
                            totals.add(done??, &progress);
                        }
                    }
                    tasks.spawn(post_batch(
                        http.clone(),
                        url.clone(),
                        token.clone(),
                        lines,
                        upto,
                        done.clone(),
                    ));
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            totals.add(done??, &progress);
        }
        Ok(())
    }
    .await;
    // On failure, stop the reader (its channel closes) and the requests in flight.
    drop(rx);
    tasks.abort_all();
    let read_result = reader.await;
    let elapsed = progress.finish().as_secs_f64().max(1e-3);
    let summary = format!(
        "{} events sent ({} stored, {} duplicates), {} lines rejected, in {:.1} s ({}/s)",
        thousands(totals.events),
        thousands(totals.accepted),
        thousands(totals.duplicates),
        thousands(totals.rejected),
        elapsed,
        thousands((totals.events as f64 / elapsed) as u64)
    );
    if let Err(e) = outcome {
        return Err(e.context(format!("the import of {name} stopped after {summary}")));
    }
    read_result
        .context("the file reader failed")?
        .with_context(|| format!("the import of {name} stopped after {summary}"))?;
    println!("Imported {name}: {summary}.");
    if totals.rejected > SHOWN_REJECTIONS {
        eprintln!(
            "({} more rejected lines were not shown.)",
            thousands(totals.rejected - SHOWN_REJECTIONS)
        );
    }
    if totals.rejected > 0 {
        bail!(
            "{} line(s) of {name} were rejected (see above); the rest was imported",
            thousands(totals.rejected)
        );
    }
    Ok(())
}

/// Where the export goes.
enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Self::Stdout(w) => w.write_all(b),
            Self::File(w) => w.write_all(b),
            Self::Gzip(w) => w.write_all(b),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Self::Stdout(mut w) => w.flush(),
            Self::File(w) => w.into_inner().map_err(|e| e.into_error())?.sync_all(),
            Self::Gzip(w) => w
                .finish()?
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all(),
        }
    }
}

/// `liftoff export`.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let (http, url, token) = remote::client(&Remote {
        url: args.url.clone(),
        token: args.token.clone(),
    })?;
    let mut query = vec![("format", args.format.as_str().to_owned())];
    if let Some(from) = &args.from {
        query.push(("from", from.clone()));
    }
    if let Some(to) = &args.to {
        query.push(("to", to.clone()));
    }
    let mut res = http
        .get(format!("{url}/api/analytics/export"))
        .bearer_auth(token)
        .query(&query)
        .send()
        .await
        .with_context(|| format!("cannot reach Liftoff at {url}"))?;
    if !res.status().is_success() {
        remote::check(res).await?;
        bail!("unexpected answer from the server");
    }
    let part = args.output.as_ref().map(|p| {
        let mut name = p.as_os_str().to_owned();
        name.push(".part");
        PathBuf::from(name)
    });
    let mut sink = match (&args.output, &part) {
        (Some(out), Some(part)) => {
            let file = BufWriter::with_capacity(
                256 << 10,
                File::create(part).with_context(|| format!("cannot create {}", part.display()))?,
            );
            if out.extension().is_some_and(|e| e == "gz") {
                Sink::Gzip(flate2::write::GzEncoder::new(
                    file,
                    flate2::Compression::default(),
                ))
            } else {
                Sink::File(file)
            }
        }
        _ => Sink::Stdout(BufWriter::with_capacity(256 << 10, io::stdout())),
    };
    let bytes = Arc::new(AtomicU64::new(0));
    let lines = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(
        "export",
        "written",
        None,
        bytes.clone(),
        (args.format != ExportFormat::Json).then(|| lines.clone()),
    );
    let outcome: anyhow::Result<bool> = async {
        while let Some(chunk) = res
            .chunk()
            .await
            .context("the export was cut off (see the server's log)")?
        {
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            lines.fetch_add(
                chunk.iter().filter(|b| **b == b'\n').count() as u64,
                Ordering::Relaxed,
            );
            match sink.write(&chunk) {
                Ok(()) => {}
                // `liftoff export | head`: the reader has what it wanted.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(false),
                Err(e) => return Err(e).context("cannot write the export"),
            }
        }
        Ok(true)
    }
    .await;
    let elapsed = progress.finish().as_secs_f64();
    let complete = match outcome {
        Ok(complete) => complete,
        Err(e) => {
            if let Some(part) = &part {
                let _ = std::fs::remove_file(part);
            }
            return Err(e);
        }
    };
    match sink.finish() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        r => r.context("cannot write the export")?,
    }
    if !complete {
        return Ok(());
    }
    if let (Some(out), Some(part)) = (&args.output, &part) {
        std::fs::rename(part, out)
            .with_context(|| format!("cannot rename {} to {}", part.display(), out.display()))?;
    }
    let rows = match args.format {
        ExportFormat::Ndjson => Some(lines.load(Ordering::Relaxed)),
        ExportFormat::Csv => Some(lines.load(Ordering::Relaxed).saturating_sub(1)),
        ExportFormat::Json => None,
    };
    let to = args
        .output
        .as_ref()
        .map_or_else(|| "standard output".to_owned(), |p| p.display().to_string());
    eprintln!(
        "Exported {}{} to {to} in {elapsed:.1} s.",
        rows.map(|n| format!("{} events, ", thousands(n)))
            .unwrap_or_default(),
        megabytes(bytes.load(Ordering::Relaxed))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_rows_become_native_events() {
        let line = br#"{"ts": 1704067200000, "user_id": "u1", "session_id": "s1", "event": "signup", "properties": "{\"plan\": \"pro\"}"}"#;
        let v: Value = serde_json::from_str(&to_native(line).unwrap()).unwrap();
        assert_eq!(v["timestamp"], 1_704_067_200_000i64);
        assert!(v.get("ts").is_none());
        assert_eq!(v["properties"]["plan"], "pro");
        assert_eq!(v["session_id"], "s1");
        assert_eq!(v["uuid"], line_uuid(line, Some(1_704_067_200_000)));
        assert!(v["uuid"].as_str().unwrap().starts_with("018cc251-f400-8"));
    }

    #[test]
    fn native_events_keep_their_uuid_and_malformed_lines_say_why() {
        let line = br#"{"event": "e", "user_id": "u", "uuid": "0190c3d2-7a4b-7c00-8000-000000000001", "session_id": null}"#;
        let v: Value = serde_json::from_str(&to_native(line).unwrap()).unwrap();
        assert_eq!(v["uuid"], "0190c3d2-7a4b-7c00-8000-000000000001");
        assert!(v.get("session_id").is_none());
        assert!(to_native(b"{nope").unwrap_err().starts_with("not JSON"));
        assert!(to_native(b"[1]").unwrap_err().contains("object"));
        assert!(
            to_native(br#"{"user_id": "u"}"#)
                .unwrap_err()
                .contains("event")
        );
        assert!(
            to_native(br#"{"event": "e"}"#)
                .unwrap_err()
                .contains("user_id")
        );
        assert!(
            to_native(br#"{"event": "e", "user_id": "u", "properties": "{"}"#)
                .unwrap_err()
                .contains("properties")
        );
    }

    #[test]
    fn line_uuids_are_stable_version_8_uuids_in_time_order() {
        for ts in [None, Some(1_704_067_200_000)] {
            let a = line_uuid(b"{\"event\":\"e\"}", ts);
            assert_eq!(a, line_uuid(b"{\"event\":\"e\"}", ts));
            assert_ne!(a, line_uuid(b"{\"event\":\"f\"}", ts));
            assert_eq!(&a[14..15], "8");
            assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        }
        // Later events sort after earlier ones, whatever their lines hash to.
        let lines: Vec<String> = (0..200).map(|i| format!("{{\"n\":{i}}}")).collect();
        let uuids: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| line_uuid(l.as_bytes(), Some(1_704_067_200_000 + i as i64)))
            .collect();
        assert!(uuids.is_sorted());
        let text = br#"{"event": "e", "user_id": "u", "timestamp": "2024-01-01T00:00:00Z"}"#;
        let v: Value = serde_json::from_str(&to_native(text).unwrap()).unwrap();
        assert!(v["uuid"].as_str().unwrap().starts_with("018cc251-f400-8"));
    }

    #[test]
    fn refused_events_are_found_in_the_problem_detail() {
        assert_eq!(
            refused_event(
                "event 3: timestamp 1999 is before 2000; nothing of this batch was stored"
            ),
            Some((3, "timestamp 1999 is before 2000".to_owned()))
        );
        assert_eq!(refused_event("send an array of events"), None);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
