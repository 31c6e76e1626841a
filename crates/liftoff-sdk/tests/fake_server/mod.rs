//! A tiny hand-written HTTP/1.1 server playing the Liftoff SDK endpoints, for tests that must
//! not need the real server:
//!
//! - `GET /api/sdk/flags?environment=…`: 200 with the current body and `ETag`, or 304 when
//!   `If-None-Match` matches;
//! - `GET /api/sdk/stream?environment=…`: `text/event-stream` (chunked), the current definitions
//!   as a `flags` event at once, then whatever the test pushes;
//! - 401 problem+json without `Authorization: Bearer test-token`.
//!
//! Every response closes its connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

pub const TOKEN: &str = "test-token";

#[derive(Clone, Debug)]
enum Push {
    /// Raw event-stream text for every open stream.
    Raw(String),
    /// Cut every open stream.
    Close,
}

struct Definitions {
    body: String,
    etag: String,
    version: u64,
}

#[derive(Default)]
struct Stats {
    flag_requests: AtomicUsize,
    not_modified: AtomicUsize,
    stream_connects: AtomicUsize,
    open_streams: AtomicUsize,
    unauthorized: AtomicUsize,
}

struct Inner {
    defs: Mutex<Definitions>,
    stream_enabled: Mutex<bool>,
    pushes: broadcast::Sender<Push>,
    tasks: Mutex<Vec<AbortHandle>>,
    stats: Stats,
    /// `If-None-Match` of each flags request, in order.
    if_none_match: Mutex<Vec<Option<String>>>,
    /// `environment` query parameter of each request, in order.
    environments: Mutex<Vec<Option<String>>>,
}

pub struct FakeServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl FakeServer {
    /// Starts on a free port, serving `body` as version 1.
    pub async fn start(body: &str) -> FakeServer {
        Self::start_on("127.0.0.1:0".parse().unwrap(), body).await
    }

    /// Starts on `addr` (to come back on the port of a stopped server).
    pub async fn start_on(addr: SocketAddr, body: &str) -> FakeServer {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (pushes, _) = broadcast::channel(64);
        let inner = Arc::new(Inner {
            defs: Mutex::new(Definitions {
                body: body.to_owned(),
                etag: "\"v1\"".to_owned(),
                version: 1,
            }),
            stream_enabled: Mutex::new(true),
            pushes,
            tasks: Mutex::new(Vec::new()),
            stats: Stats::default(),
            if_none_match: Mutex::new(Vec::new()),
            environments: Mutex::new(Vec::new()),
        });
        let accept_inner = inner.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = tokio::spawn(handle(accept_inner.clone(), socket));
                accept_inner.tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        inner.tasks.lock().unwrap().push(accept.abort_handle());
        FakeServer { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current ETag, quoted as in the header.
    pub fn etag(&self) -> String {
        self.inner.defs.lock().unwrap().etag.clone()
    }

    /// New definitions (new ETag), pushed to every open stream.
    pub fn set_flags(&self, body: &str) {
        let event = self.replace(body);
        let _ = self.inner.pushes.send(Push::Raw(event));
    }

    /// New definitions (new ETag), served from now on but not pushed.
    pub fn set_flags_silently(&self, body: &str) {
        self.replace(body);
    }

    fn replace(&self, body: &str) -> String {
        let mut defs = self.inner.defs.lock().unwrap();
        defs.version += 1;
        defs.etag = format!("\"v{}\"", defs.version);
        defs.body = body.to_owned();
        flags_event(&defs)
    }

    /// Sends raw event-stream text to every open stream.
    pub fn push_raw(&self, text: &str) {
        let _ = self.inner.pushes.send(Push::Raw(text.to_owned()));
    }

    /// Cuts every open stream (mid-body, as a crash or a proxy would).
    pub fn close_streams(&self) {
        let _ = self.inner.pushes.send(Push::Close);
    }

    /// With false, `/api/sdk/stream` answers 404.
    pub fn set_stream_enabled(&self, enabled: bool) {
        *self.inner.stream_enabled.lock().unwrap() = enabled;
    }

    /// Stops listening and drops every connection: the port refuses connections afterwards.
    pub fn stop(&self) {
        for task in self.inner.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn flag_requests(&self) -> usize {
        self.inner.stats.flag_requests.load(Ordering::SeqCst)
    }

    pub fn not_modified(&self) -> usize {
        self.inner.stats.not_modified.load(Ordering::SeqCst)
    }

    pub fn stream_connects(&self) -> usize {
        self.inner.stats.stream_connects.load(Ordering::SeqCst)
    }

    pub fn open_streams(&self) -> usize {
        self.inner.stats.open_streams.load(Ordering::SeqCst)
    }

    pub fn unauthorized(&self) -> usize {
        self.inner.stats.unauthorized.load(Ordering::SeqCst)
    }

    pub fn if_none_match_seen(&self) -> Vec<Option<String>> {
        self.inner.if_none_match.lock().unwrap().clone()
    }

    pub fn environments_seen(&self) -> Vec<Option<String>> {
        self.inner.environments.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn flags_event(defs: &Definitions) -> String {
    format!("event: flags\nid: {}\ndata: {}\n\n", defs.etag, defs.body)
}

struct Request {
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
}

async fn read_request(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let _method = parts.next()?;
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Some(Request {
        path: path.to_owned(),
        query,
        headers,
    })
}

async fn respond(writer: &mut OwnedWriteHalf, status: &str, headers: &[(&str, &str)], body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = writer.write_all(head.as_bytes()).await;
    let _ = writer.write_all(body.as_bytes()).await;
    let _ = writer.shutdown().await;
}

async fn handle(inner: Arc<Inner>, socket: TcpStream) {
    let (read, mut writer) = socket.into_split();
    let mut reader = BufReader::new(read);
    let Some(request) = read_request(&mut reader).await else {
        return;
    };
    inner
        .environments
        .lock()
        .unwrap()
        .push(request.query.get("environment").cloned());
    let authorized = request.headers.get("authorization").map(String::as_str)
        == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        inner.stats.unauthorized.fetch_add(1, Ordering::SeqCst);
        return respond(
            &mut writer,
            "401 Unauthorized",
            &[("content-type", "application/problem+json")],
            r#"{"type":"about:blank","title":"Unauthorized","status":401}"#,
        )
        .await;
    }
    match request.path.as_str() {
        "/api/sdk/flags" => {
            inner.stats.flag_requests.fetch_add(1, Ordering::SeqCst);
            let if_none_match = request.headers.get("if-none-match").cloned();
            inner
                .if_none_match
                .lock()
                .unwrap()
                .push(if_none_match.clone());
            let (body, etag) = {
                let defs = inner.defs.lock().unwrap();
                (defs.body.clone(), defs.etag.clone())
            };
            if if_none_match.as_deref() == Some(etag.as_str()) {
                inner.stats.not_modified.fetch_add(1, Ordering::SeqCst);
                respond(&mut writer, "304 Not Modified", &[("etag", &etag)], "").await;
            } else {
                respond(
                    &mut writer,
                    "200 OK",
                    &[("content-type", "application/json"), ("etag", &etag)],
                    &body,
                )
                .await;
            }
        }
        "/api/sdk/stream" if *inner.stream_enabled.lock().unwrap() => {
            stream(inner, reader, writer).await;
        }
        _ => respond(&mut writer, "404 Not Found", &[], "").await,
    }
}

async fn write_chunk(writer: &mut OwnedWriteHalf, text: &str) -> std::io::Result<()> {
    let chunk = format!("{:x}\r\n{text}\r\n", text.len());
    writer.write_all(chunk.as_bytes()).await?;
    writer.flush().await
}

/// Decrements the open-stream count however the stream task ends (even when aborted).
struct OpenStream(Arc<Inner>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.stats.open_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn stream(
    inner: Arc<Inner>,
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    mut writer: OwnedWriteHalf,
) {
    // Subscribe before reading the definitions, so no change falls in between.
    let mut pushes = inner.pushes.subscribe();
    let first = flags_event(&inner.defs.lock().unwrap());
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    if writer.write_all(head.as_bytes()).await.is_err()
        || write_chunk(&mut writer, &first).await.is_err()
    {
        return;
    }
    inner.stats.open_streams.fetch_add(1, Ordering::SeqCst);
    let _open = OpenStream(inner.clone());
    inner.stats.stream_connects.fetch_add(1, Ordering::SeqCst);
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            push = pushes.recv() => match push {
                Ok(Push::Raw(text)) => {
                    if write_chunk(&mut writer, &text).await.is_err() {
                        return;
                    }
                }
                Ok(Push::Close) | Err(broadcast::error::RecvError::Closed) => return,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
            },
            // The client hung up.
            read = reader.read(&mut buf) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
        }
    }
}
