//! Applies the `--outbound-deny` policy (`liftoff_core::outbound`) to real connections: a DNS
//! resolver for reqwest that drops denied addresses (and refuses when none is left), a redirect
//! policy that checks every hop, a check of the first URL (IP literals never reach a resolver),
//! and the address SMTP connects to. Also turns reqwest errors into Liftoff-written reasons
//! that never carry a URL's path or anything the remote side sent.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use liftoff_core::outbound::{Denied, OutboundPolicy};

/// Resolves names with the system resolver and keeps only the addresses the policy allows.
#[derive(Clone)]
pub struct PolicyResolver {
    policy: Arc<OutboundPolicy>,
}

impl PolicyResolver {
    pub fn new(policy: Arc<OutboundPolicy>) -> Self {
        Self { policy }
    }
}

/// No address was found for a name.
#[derive(Debug, thiserror::Error)]
#[error("{0} has no address")]
struct NoAddress(String);

/// Resolves `host` (a name or an IP literal) and returns the addresses the policy allows, in
/// the resolver's order; refuses a denied name, and a host whose every address is denied.
pub async fn resolve_allowed(
    policy: &OutboundPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
    policy.check_host(host)?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port)).await?.collect(),
    };
    let Some(first) = found.first().copied() else {
        return Err(Box::new(NoAddress(bare.to_owned())));
    };
    let allowed: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| !policy.denies_ip(a.ip()))
        .collect();
    if allowed.is_empty() {
        // Every address is denied: name the first one.
        policy.check_ip(first.ip())?;
    }
    Ok(allowed)
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs = resolve_allowed(&policy, name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// More redirects than a client follows.
#[derive(Debug, thiserror::Error)]
#[error("more than {0} redirects")]
struct TooManyRedirects(usize);

/// Follows at most `max` redirects, each only to a destination the policy allows by its
/// literal address or name (names are resolved, and their addresses checked, by the resolver).
pub fn redirect_policy(policy: Arc<OutboundPolicy>, max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            return attempt.error(TooManyRedirects(max));
        }
        match policy.check_parsed_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(denied) => attempt.error(denied),
        }
    })
}

/// A client builder whose every connection obeys `policy`. Proxies from the environment are
/// not used: through a proxy the policy could not see where a connection really goes.
pub fn client_builder(policy: &Arc<OutboundPolicy>) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(PolicyResolver::new(policy.clone())))
        .no_proxy()
}

/// The policy's refusal somewhere in an error's causes.
pub fn denied_in<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a Denied> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(d) = err.downcast_ref::<Denied>() {
            return Some(d);
        }
        cur = err.source();
    }
    None
}

/// A reqwest error as a Liftoff-written reason: what failed, and the local causes (I/O, TLS,
/// the policy). Never the URL (its path and query may hold a token) and never a response body.
pub fn describe(e: &reqwest::Error) -> String {
    if let Some(d) = denied_in(e) {
        return d.to_string();
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_redirect() {
        "redirect refused"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_builder() {
        "invalid request"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    };
    let mut out = what.to_owned();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolution_drops_denied_addresses_and_refuses_when_none_is_left() {
        let deny_v4_loopback = OutboundPolicy::parse("127.0.0.0/8").unwrap();
        let e = resolve_allowed(&deny_v4_loopback, "127.0.0.1", 80)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "destination 127.0.0.1 is denied by --outbound-deny"
        );
        let e = resolve_allowed(&deny_v4_loopback, "[::ffff:127.0.0.1]", 80)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "destination 127.0.0.1 is denied by --outbound-deny"
        );
        let ok = resolve_allowed(&deny_v4_loopback, "[::1]", 80)
            .await
            .unwrap();
        assert_eq!(ok, vec!["[::1]:80".parse().unwrap()]);
        let e = resolve_allowed(&OutboundPolicy::default(), "Metadata.", 80)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "destination metadata is denied by --outbound-deny"
        );
        // `localhost` resolves to loopback only; with all of it denied nothing is left.
        let all_loopback = OutboundPolicy::parse("127.0.0.0/8, ::1").unwrap();
        let e = resolve_allowed(&all_loopback, "localhost", 80)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("is denied by --outbound-deny"),
            "{e}"
        );
        let ok = resolve_allowed(&OutboundPolicy::default(), "localhost", 80)
            .await
            .unwrap();
        assert!(ok.iter().all(|a| a.ip().is_loopback()) && !ok.is_empty());
    }
}
