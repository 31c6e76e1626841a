//! Who is on the other end of the connection: the peer address the server recorded when it
//! accepted the connection, or, when that peer is a trusted proxy (`--trusted-proxies`), the
//! address the proxies say they forwarded for. Per-client limits (failed sign-ins, failed
//! authentication) key on it. Requests that did not come through the server (in-process tests)
//! have none and count as one unknown client.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use liftoff_core::network::Networks;

/// The client's address as the server resolved it, trusted proxies looked through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The client's IP address, or `0.0.0.0` when the request has no connection information.
pub fn client_ip(extensions: &Extensions) -> IpAddr {
    if let Some(ClientAddr(ip)) = extensions.get::<ClientAddr>() {
        return *ip;
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the
/// `X-Forwarded-For` entries are read from the right (each proxy appends the address it was
/// reached from) and the first one that is not a trusted proxy is the client. Entries left of
/// it were written by the client and prove nothing. Unreadable entries stop the walk at the
/// last trusted hop.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &Networks) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// The client's IP address as an extractor (never rejects).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_ip(&parts.extensions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_trusted_proxies_are_looked_through() {
        let trusted = Networks::parse("10.0.0.0/8").unwrap();
        let lb: IpAddr = "10.0.0.2".parse().unwrap();
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        // A client that is not a proxy cannot choose its address.
        assert_eq!(
            resolve(outsider, &headers(&["1.2.3.4"]), &trusted),
            outsider
        );
        // Through the load balancer: the address it saw.
        assert_eq!(
            resolve(lb, &headers(&["198.51.100.7"]), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // A forged entry left of the real one is ignored; trusted hops are skipped.
        assert_eq!(
            resolve(
                lb,
                &headers(&["6.6.6.6, 198.51.100.7", "10.1.1.1"]),
                &trusted
            ),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // Nothing forwarded, or garbage: the proxy itself.
        assert_eq!(resolve(lb, &HeaderMap::new(), &trusted), lb);
        assert_eq!(resolve(lb, &headers(&["nonsense"]), &trusted), lb);
        // No trusted proxies: the header is never read.
        assert_eq!(
            resolve(lb, &headers(&["1.2.3.4"]), &Networks::default()),
            lb
        );
    }
}
