//! `liftoff report`: a report from a running server's API, or offline from the stores
//! themselves (the same engine either way).

use std::io::{IsTerminal as _, Write as _};

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDate, Utc};
use liftoff_core::reports::{Format, ReportKind, ReportRequest};

use crate::cli::ReportArgs;
use crate::config::Settings;

/// RFC 3339, or a date meaning its UTC midnight.
fn instant(raw: &str, flag: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .with_context(|| {
            format!("{flag} `{raw}`: use RFC 3339 (2026-06-01T00:00:00Z) or YYYY-MM-DD")
        })
}

pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let Some(kind) = ReportKind::parse(&args.kind) else {
        bail!(
            "unknown report `{}`: use weekly, incident or launch",
            args.kind
        );
    };
    let Some(format) = Format::parse(&args.format) else {
        bail!(
            "unknown format `{}`: use md, html, pdf or json",
            args.format
        );
    };
    if format == Format::Pdf && args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("a PDF is binary: pass --output FILE (or redirect standard output)");
    }
    let req = ReportRequest {
        kind,
        from: args
            .from
            .as_deref()
            .map(|f| instant(f, "--from"))
            .transpose()?,
        to: args.to.as_deref().map(|t| instant(t, "--to")).transpose()?,
        id: args.id.clone(),
        month: args.month.clone(),
        funnel: args.funnel.clone(),
    };
    let body = if args.offline {
        offline(&args, &req, format).await?
    } else {
        online(&args, &req, format).await?
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &body)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "Wrote the {} report to {} ({} bytes).",
                kind.as_str(),
                path.display(),
                body.len()
            );
        }
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(())
}

async fn online(args: &ReportArgs, req: &ReportRequest, format: Format) -> anyhow::Result<Vec<u8>> {
    let (http, url, token) = crate::remote::client(&args.remote)?;
    let mut query = vec![("format", format.as_str().to_owned())];
    if let Some(f) = req.from {
        query.push(("from", f.to_rfc3339()));
    }
    if let Some(t) = req.to {
        query.push(("to", t.to_rfc3339()));
    }
    if let Some(id) = &req.id {
        query.push(("id", id.clone()));
    }
    if let Some(m) = &req.month {
        query.push(("month", m.clone()));
    }
    if let Some(steps) = &req.funnel {
        query.push(("funnel", steps.join(",")));
    }
    let res = http
        .get(format!("{url}/api/reports/{}", req.kind.as_str()))
        .bearer_auth(token)
        .query(&query)
        .send()
        .await
        .with_context(|| format!("cannot reach Liftoff at {url} (or pass --offline --data DIR)"))?;
    if !res.status().is_success() {
        crate::remote::check(res).await?;
        bail!("the server refused the report");
    }
    Ok(res.bytes().await?.to_vec())
}

async fn offline(
    args: &ReportArgs,
    req: &ReportRequest,
    format: Format,
) -> anyhow::Result<Vec<u8>> {
    let settings = Settings::resolve(args.store.settings.clone(), args.store.config.as_deref())?;
    let built = crate::startup::build(&settings).await?;
    let state = &built.state;
    let report = state.report(req).await;
    state.store.close().await?;
    Ok(report?.render(format).body)
}
