//! Product analytics over raw events: a user's activity, erasure, and streaming export. (Funnels,
//! retention and paths come from the columnar engine.)

use std::fmt::Write as _;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::DateTime;
use liftoff_core::analytics::StoredEvent;
use liftoff_core::analytics::event::{format_uuid, now_ms};
use liftoff_core::analytics::ingest::time;
use liftoff_core::analytics::{EventsService, UserActivity};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Problem};
use crate::extract::{ApiPath, ApiQuery};
use crate::mw::auth::{Admin, Caller, Read};
use crate::state::AppState;

/// Events per export page: memory stays bounded whatever the range.
const PAGE: usize = 1_000;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_activity, erase_user))
        .routes(routes!(export))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysParam {
    /// Days back from now, 1–3650 (default 30).
    #[param(minimum = 1, maximum = 3650)]
    days: Option<u32>,
}

/// A user's person (first/last seen, properties), event counts by name, sessions (explicit
/// `session_id`, else 30 minutes of inactivity) and latest events over the last `days`.
#[utoipa::path(get, path = "/api/analytics/user/{user_id}", tag = "analytics",
    params(("user_id" = String, Path), DaysParam), security(("bearer" = ["read"])),
    responses((status = 200, body = UserActivity),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn user_activity(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DaysParam>,
) -> Result<Json<UserActivity>, ApiError> {
    let days = q.days.unwrap_or(30);
    if !(1..=3650).contains(&days) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`days` must be between 1 and 3650",
        ));
    }
    Ok(Json(
        state.events.user_activity(&user_id, days, now_ms()).await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Erased {
    pub user_id: String,
    /// Stored events removed.
    pub events_deleted: u64,
    /// Whether a person record existed.
    pub person_deleted: bool,
}

/// Erases a person: their person record and every stored event of theirs, at once and for
/// good. The erasure is recorded (user id and time) so data sealed elsewhere is filtered too.
#[utoipa::path(delete, path = "/api/analytics/user/{user_id}", tag = "analytics",
    params(("user_id" = String, Path)), security(("bearer" = ["admin"])),
    responses((status = 200, body = Erased)))]
async fn erase_user(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Json<Erased>, ApiError> {
    let done = state
        .events
        .erase(&caller.principal.actor, &user_id)
        .await?;
    // The next analytics query rebuilds its table without the person.
    state.insights.invalidate().await;
    Ok(Json(Erased {
        user_id,
        events_deleted: done.events,
        person_deleted: done.person,
    }))
}

#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Ndjson,
    Json,
    Csv,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `ndjson` (default; one `{ts, user_id, session_id?, event, properties: "<json text>",
    /// uuid?}` per line, the analytics engine's input), `json` (an array, `properties` as an
    /// object, plus `timestamp`) or `csv` (`uuid,ts,timestamp,user_id,session_id,event,properties`).
    format: Option<ExportFormat>,
    /// Start (included): an RFC 3339 date-time or Unix seconds/milliseconds (an integer).
    /// Default: the beginning.
    #[param(schema_with = time_bound_schema)]
    from: Option<String>,
    /// End (excluded), like `from`. Default: no end.
    #[param(schema_with = time_bound_schema)]
    to: Option<String>,
}

/// Integers above this many seconds are milliseconds (1e11 s is in the year 5138).
const SECONDS_BELOW: i64 = 100_000_000_000;
/// The largest magnitude of a Unix time in milliseconds accepted (year 33658).
const MAX_MS: i64 = 1_000_000_000_000_000;

/// `from`/`to` are either form: `oneOf` an RFC 3339 string and an integer.
fn time_bound_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(-MAX_MS))
                .maximum(Some(MAX_MS)),
        )
        .build()
        .into()
}

/// Reads a `from`/`to` value exactly as the document describes it: an RFC 3339 date-time (with
/// `T` and an offset) or an integer of Unix seconds (below 1e11) or milliseconds.
fn time_bound(raw: &str) -> Result<i64, String> {
    let is_integer = {
        let digits = raw.strip_prefix('-').unwrap_or(raw);
        !digits.is_empty() && digits.len() <= 16 && digits.bytes().all(|b| b.is_ascii_digit())
    };
    if is_integer {
        let n: i64 = raw.parse().map_err(|e| format!("{e}"))?;
        let ms = if n.abs() < SECONDS_BELOW { n * 1000 } else { n };
        return if ms.abs() <= MAX_MS {
            Ok(ms)
        } else {
            Err(format!("{n} is out of range"))
        };
    }
    let separator = raw.as_bytes().get(10).copied();
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) if matches!(separator, Some(b'T' | b't')) => Ok(t.timestamp_millis()),
        _ => Err(format!(
            "`{}` is neither an RFC 3339 date-time (2026-01-31T12:00:00Z) nor Unix seconds or milliseconds",
            raw.chars().take(40).collect::<String>()
        )),
    }
}

/// A CSV field, quoted when it holds a comma, quote or line break.
pub fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn render(format: ExportFormat, page: &[StoredEvent], first: bool, out: &mut String) {
    for (i, s) in page.iter().enumerate() {
        let e = &s.event;
        match format {
            ExportFormat::Ndjson => {
                let mut row = serde_json::Map::new();
                row.insert("ts".into(), json!(e.ts_ms));
                row.insert("user_id".into(), json!(e.user));
                if let Some(session) = &e.session {
                    row.insert("session_id".into(), json!(session));
                }
                row.insert("event".into(), json!(e.event));
                row.insert("properties".into(), json!(e.properties));
                if let Some(u) = e.uuid {
                    row.insert("uuid".into(), json!(format_uuid(u)));
                }
                out.push_str(&Value::Object(row).to_string());
                out.push('\n');
            }
            ExportFormat::Json => {
                if !(first && i == 0) {
                    out.push(',');
                }
                let props: Value = serde_json::from_str(&e.properties).unwrap_or_default();
                let row = json!({
                    "uuid": e.uuid.map(format_uuid),
                    "ts": e.ts_ms,
                    "timestamp": time(e.ts_ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "user_id": e.user,
                    "session_id": e.session,
                    "event": e.event,
                    "properties": props,
                });
                out.push_str(&row.to_string());
            }
            ExportFormat::Csv => {
                csv_field(out, &e.uuid.map(format_uuid).unwrap_or_default());
                let _ = write!(
                    out,
                    ",{},{},",
                    e.ts_ms,
                    time(e.ts_ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                );
                csv_field(out, &e.user);
                out.push(',');
                csv_field(out, e.session.as_deref().unwrap_or(""));
                out.push(',');
                csv_field(out, &e.event);
                out.push(',');
                csv_field(out, &e.properties);
                out.push_str("\r\n");
            }
        }
    }
}

struct Cursor {
    events: EventsService,
    format: ExportFormat,
    from: i64,
    to: i64,
    /// Sealed parts still to send (finished days, oldest first); then the rows.
    sealed: std::collections::VecDeque<(i64, i64)>,
    after: i64,
    /// The header (`[` or the CSV header line) is out.
    started: bool,
    /// A row is out: JSON needs a comma before the next.
    wrote_row: bool,
    done: bool,
}

/// The next chunk of the export, or `None` when it is complete.
async fn next_chunk(mut c: Cursor) -> Option<(Result<Bytes, std::io::Error>, Cursor)> {
    if c.done {
        return None;
    }
    let mut out = String::new();
    if !c.started {
        match c.format {
            ExportFormat::Json => out.push('['),
            ExportFormat::Csv => {
                out.push_str("uuid,ts,timestamp,user_id,session_id,event,properties\r\n")
            }
            ExportFormat::Ndjson => {}
        }
    }
    if let Some(part) = c.sealed.pop_front() {
        return match c.events.sealed_part(part, c.from, c.to).await {
            Ok(events) => {
                let page: Vec<StoredEvent> = events
                    .into_iter()
                    .map(|event| StoredEvent { seq: 0, event })
                    .collect();
                render(c.format, &page, !c.wrote_row, &mut out);
                c.started = true;
                c.wrote_row |= !page.is_empty();
                Some((Ok(Bytes::from(out)), c))
            }
            Err(e) => {
                tracing::error!(error = %e, "Event export failed mid-stream.");
                c.done = true;
                Some((Err(std::io::Error::other(e.to_string())), c))
            }
        };
    }
    match c.events.page(c.from, c.to, c.after, PAGE).await {
        Ok(page) => {
            render(c.format, &page, !c.wrote_row, &mut out);
            c.started = true;
            c.wrote_row |= !page.is_empty();
            match page.last() {
                Some(last) if page.len() == PAGE => c.after = last.seq,
                _ => {
                    c.done = true;
                    if c.format == ExportFormat::Json {
                        out.push(']');
                    }
                }
            }
            Some((Ok(Bytes::from(out)), c))
        }
        Err(e) => {
            // The status line is gone: the client sees a cut-off body, the log sees why.
            tracing::error!(error = %e, "Event export failed mid-stream.");
            c.done = true;
            Some((Err(std::io::Error::other(e.to_string())), c))
        }
    }
}

/// Streams every stored event with `from <= ts < to`: sealed (finished) days first, a part at
/// a time, then the unsealed rows in append order, page by page (memory stays bounded whatever
/// the range). Erased persons' events are gone already.
#[utoipa::path(get, path = "/api/analytics/export", tag = "analytics", params(ExportParams),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The events as NDJSON, a JSON array or CSV",
            content((String = "application/x-ndjson"), (Vec<Object> = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn export(
    State(state): State<AppState>,
    _caller: Caller<Read>,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let bound = |raw: Option<&String>, name: &str, default: i64| -> Result<i64, ApiError> {
        raw.map(|r| {
            time_bound(r)
                .map_err(|e| ApiError::bad_request("invalid_query", format!("`{name}`: {e}")))
        })
        .unwrap_or(Ok(default))
    };
    let from = bound(q.from.as_ref(), "from", i64::MIN)?;
    let to = bound(q.to.as_ref(), "to", i64::MAX)?;
    let format = q.format.unwrap_or_default();
    let (content_type, ext) = match format {
        ExportFormat::Ndjson => ("application/x-ndjson", "ndjson"),
        ExportFormat::Json => ("application/json", "json"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let sealed = state.events.sealed_parts(from, to).await?.into();
    let cursor = Cursor {
        events: state.events.clone(),
        format,
        from,
        to,
        sealed,
        after: 0,
        started: false,
        wrote_row: false,
        done: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(cursor, next_chunk));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"events.{ext}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_are_rfc3339_or_integers_only() {
        assert_eq!(time_bound("2026-01-31T12:00:00Z"), Ok(1_769_860_800_000));
        assert_eq!(
            time_bound("2026-01-31t12:00:00.5+01:00"),
            Ok(1_769_857_200_500)
        );
        assert_eq!(time_bound("1769860800"), Ok(1_769_860_800_000));
        assert_eq!(time_bound("1769860800000"), Ok(1_769_860_800_000));
        assert_eq!(time_bound("-5"), Ok(-5000));
        for bad in [
            "",
            "-",
            " 12",
            "1.5",
            "1e9",
            "2026-01-31 12:00:00Z",
            "2026-01-31T12:00:00",
            "99999999999999999",
            "abc",
        ] {
            assert!(time_bound(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = String::new();
        for s in ["plain", "a,b", "say \"hi\"", "two\nlines", ""] {
            csv_field(&mut out, s);
            out.push('|');
        }
        assert_eq!(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"||");
    }
}
