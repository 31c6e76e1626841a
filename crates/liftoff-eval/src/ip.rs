//! IP networks for `IN_CIDR` and the `remoteAddress` strategy.

use std::net::IpAddr;

/// An IPv4 or IPv6 network; a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpNet {
    V4 { addr: u32, prefix: u8 },
    V6 { addr: u128, prefix: u8 },
}

impl IpNet {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or `ipv6/n`.
    pub(crate) fn parse(s: &str) -> Result<IpNet, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                let p: u8 = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid prefix length in `{s}`"))?;
                (a.trim(), Some(p))
            }
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR range"))?;
        match ip {
            IpAddr::V4(v4) => {
                let prefix = prefix.unwrap_or(32);
                if prefix > 32 {
                    return Err(format!("prefix length {prefix} is more than 32 in `{s}`"));
                }
                Ok(IpNet::V4 {
                    addr: u32::from(v4),
                    prefix,
                })
            }
            IpAddr::V6(v6) => {
                let prefix = prefix.unwrap_or(128);
                if prefix > 128 {
                    return Err(format!("prefix length {prefix} is more than 128 in `{s}`"));
                }
                Ok(IpNet::V6 {
                    addr: u128::from(v6),
                    prefix,
                })
            }
        }
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (*self, ip) {
            (IpNet::V4 { addr, prefix }, IpAddr::V4(v4)) => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(prefix))
                };
                (u32::from(v4) & mask) == (addr & mask)
            }
            (IpNet::V6 { addr, prefix }, IpAddr::V6(v6)) => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(prefix))
                };
                (u128::from(v6) & mask) == (addr & mask)
            }
            _ => false,
        }
    }
}

/// Parses a context's address (tolerating surrounding whitespace).
pub(crate) fn parse_addr(s: &str) -> Option<IpAddr> {
    s.trim().parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        parse_addr(s).unwrap_or_else(|| panic!("bad test address {s}"))
    }

    #[test]
    fn v4_ranges() {
        let net = IpNet::parse("160.33.0.0/16").unwrap_or_else(|e| panic!("{e}"));
        assert!(net.contains(ip("160.33.0.33")));
        assert!(!net.contains(ip("160.34.0.1")));
        assert!(net.contains(ip("::ffff:160.33.1.1")));
        let all = IpNet::parse("0.0.0.0/0").unwrap_or_else(|e| panic!("{e}"));
        assert!(all.contains(ip("8.8.8.8")));
        let one = IpNet::parse("127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
    }

    #[test]
    fn v6_ranges() {
        let net = IpNet::parse("2001:db8::/32").unwrap_or_else(|e| panic!("{e}"));
        assert!(net.contains(ip("2001:db8:0:1::42")));
        assert!(!net.contains(ip("2001:db9::1")));
        assert!(!net.contains(ip("10.0.0.1")));
    }

    #[test]
    fn invalid() {
        for bad in [
            "127.invalid",
            "bad::cidr",
            "10.0.0.0/33",
            "::/129",
            "1.2.3.4/x",
            "",
        ] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }
}
