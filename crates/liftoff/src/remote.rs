//! CLI commands that act on a running server through its API.

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::cli::{FlagsCommand, KeysCommand, Remote};

pub(crate) fn client(remote: &Remote) -> anyhow::Result<(reqwest::Client, String, String)> {
    let Some(token) = remote.token.clone() else {
        bail!("pass --token or set LIFTOFF_TOKEN (the admin token is in <data>/admin-token)");
    };
    Ok((
        reqwest::Client::new(),
        remote.url.trim_end_matches('/').to_owned(),
        token,
    ))
}

/// Turns an error answer into a message: the problem document's detail when there is one.
pub(crate) async fn check(res: reqwest::Response) -> anyhow::Result<Value> {
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or(text);
    bail!("the server answered {status}: {detail}")
}

pub async fn keys(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create {
            name,
            scope,
            reason,
            remote,
        } => {
            let (http, url, token) = client(&remote)?;
            let res = http
                .post(format!("{url}/api/keys"))
                .bearer_auth(token)
                .json(&json!({"name": name, "scope": scope, "reason": reason}))
                .send()
                .await
                .with_context(|| format!("cannot reach Liftoff at {url}"))?;
            let key = check(res).await?;
            println!(
                "Created key {} ({}), id {}.",
                key["name"], key["scope"], key["id"]
            );
            println!(
                "Token (shown once):\n  {}",
                key["token"].as_str().unwrap_or_default()
            );
        }
        KeysCommand::List { remote } => {
            let (http, url, token) = client(&remote)?;
            let res = http
                .get(format!("{url}/api/keys"))
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("cannot reach Liftoff at {url}"))?;
            let keys = check(res).await?;
            println!(
                "{:<18} {:<8} {:<14} {:<8} NAME",
                "ID", "SCOPE", "PREFIX", "STATUS"
            );
            for k in keys.as_array().into_iter().flatten() {
                let status = if k["revoked_at"].is_null() {
                    "active"
                } else {
                    "revoked"
                };
                println!(
                    "{:<18} {:<8} {:<14} {:<8} {}",
                    k["id"].as_str().unwrap_or_default(),
                    k["scope"].as_str().unwrap_or_default(),
                    k["prefix"].as_str().unwrap_or_default(),
                    status,
                    k["name"].as_str().unwrap_or_default()
                );
            }
        }
        KeysCommand::Revoke { id, reason, remote } => {
            let (http, url, token) = client(&remote)?;
            let mut req = http
                .delete(format!("{url}/api/keys/{id}"))
                .bearer_auth(token);
            if let Some(r) = reason {
                req = req.query(&[("reason", r)]);
            }
            check(
                req.send()
                    .await
                    .with_context(|| format!("cannot reach Liftoff at {url}"))?,
            )
            .await?;
            println!("Revoked key {id}.");
        }
    }
    Ok(())
}

/// A flag id as one URL path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn patch_flag(remote: &Remote, flag: &str, body: Value) -> anyhow::Result<Value> {
    let (http, url, token) = client(remote)?;
    let res = http
        .patch(format!("{url}/api/feature-flags/{}", segment(flag)))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach Liftoff at {url}"))?;
    check(res).await
}

pub async fn flags(cmd: FlagsCommand) -> anyhow::Result<()> {
    match cmd {
        FlagsCommand::List { remote } => {
            let (http, url, token) = client(&remote)?;
            let res = http
                .get(format!("{url}/api/feature-flags"))
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("cannot reach Liftoff at {url}"))?;
            let flags = check(res).await?;
            println!(
                "{:<32} {:<4} {:<15} {:>8} STALE",
                "FLAG", "ON", "STRATEGY", "PERCENT"
            );
            for f in flags.as_array().into_iter().flatten() {
                println!(
                    "{:<32} {:<4} {:<15} {:>8} {}",
                    f["flag_id"].as_str().unwrap_or_default(),
                    if f["enabled"] == true { "on" } else { "off" },
                    f["strategy"].as_str().unwrap_or_default(),
                    f["percentage"],
                    if f["stale"] == true { "stale" } else { "" }
                );
            }
        }
        FlagsCommand::Get { flag, remote } => {
            let (http, url, token) = client(&remote)?;
            let res = http
                .get(format!("{url}/api/feature-flags/{}", segment(&flag)))
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("cannot reach Liftoff at {url}"))?;
            println!("{}", serde_json::to_string_pretty(&check(res).await?)?);
        }
        FlagsCommand::Enable {
            flag,
            reason,
            remote,
        } => {
            patch_flag(&remote, &flag, json!({"enabled": true, "reason": reason})).await?;
            println!("{flag} is on.");
        }
        FlagsCommand::Disable {
            flag,
            reason,
            remote,
        } => {
            patch_flag(&remote, &flag, json!({"enabled": false, "reason": reason})).await?;
            println!("{flag} is off for everyone.");
        }
        FlagsCommand::SetPercentage {
            flag,
            percentage,
            reason,
            remote,
        } => {
            if !(0.0..=100.0).contains(&percentage) {
                bail!("the percentage must be between 0 and 100");
            }
            let f = patch_flag(
                &remote,
                &flag,
                json!({"percentage": percentage, "reason": reason}),
            )
            .await?;
            println!(
                "{flag} now reaches {}% of users (strategy {}).",
                f["percentage"],
                f["strategy"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}
