//! IP networks: CIDR ranges and single addresses, parsed once and matched with IPv4-mapped
//! IPv6 addresses unwrapped. The outbound policy and the trusted proxies both use them.

use std::fmt;
use std::net::IpAddr;

/// An IPv4 or IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Net {
    V4 { addr: u32, prefix: u8 },
    V6 { addr: u128, prefix: u8 },
}

impl Net {
    /// `None` when `s` is not an address at all (a host name, say).
    pub(crate) fn parse(s: &str) -> Option<Result<Net, String>> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let Ok(ip) = addr.parse::<IpAddr>() else {
            // Not an address: a host name, unless it tried to be a range.
            return prefix.map(|_| Err(format!("`{s}` is not a CIDR range")));
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    return Some(Err(format!(
                        "`{s}` has an invalid prefix length (0 to {max})"
                    )));
                }
            },
        };
        Some(Ok(match unmap(ip) {
            IpAddr::V4(v4) if max == 32 => Net::V4 {
                addr: u32::from(v4),
                prefix,
            },
            // `::ffff:a.b.c.d/n` with n ≥ 96 is the IPv4 range a.b.c.d/(n-96).
            IpAddr::V4(v4) if prefix >= 96 => Net::V4 {
                addr: u32::from(v4),
                prefix: prefix - 96,
            },
            _ => match ip {
                IpAddr::V6(v6) => Net::V6 {
                    addr: u128::from(v6),
                    prefix,
                },
                IpAddr::V4(v4) => Net::V4 {
                    addr: u32::from(v4),
                    prefix,
                },
            },
        }))
    }

    pub(crate) fn contains(self, ip: IpAddr) -> bool {
        match (self, unmap(ip)) {
            (Net::V4 { addr, prefix }, IpAddr::V4(v4)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(v4) & mask == addr & mask
            }
            (Net::V6 { addr, prefix }, IpAddr::V6(v6)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(v6) & mask == addr & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Net::V4 { addr, prefix } => write!(f, "{}/{prefix}", std::net::Ipv4Addr::from(addr)),
            Net::V6 { addr, prefix } => write!(f, "{}/{prefix}", std::net::Ipv6Addr::from(addr)),
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address it carries: the kernel
/// connects to that.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A set of networks from a comma-separated list of CIDRs and addresses (`--trusted-proxies`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks(Vec<Net>);

impl Networks {
    /// Parses `10.0.0.0/8, 192.168.1.5, fd00::/8`; empty items are ignored. The error names the
    /// entry that is not a range or an address.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                Net::parse(e)
                    .unwrap_or_else(|| Err(format!("`{e}` is not an IP address or CIDR range")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

impl fmt::Display for Networks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&all.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_match() {
        let n = Networks::parse("10.0.0.0/8, 192.168.1.5,, fd00::/8").unwrap();
        assert!(n.contains("10.2.3.4".parse().unwrap()));
        assert!(n.contains("::ffff:10.2.3.4".parse().unwrap()));
        assert!(n.contains("192.168.1.5".parse().unwrap()));
        assert!(!n.contains("192.168.1.6".parse().unwrap()));
        assert!(n.contains("fd12::1".parse().unwrap()));
        assert_eq!(n.to_string(), "10.0.0.0/8, 192.168.1.5/32, fd00::/8");
        assert!(Networks::parse("proxy.internal").is_err());
        assert!(Networks::parse("10.0.0.0/33").is_err());
        assert!(Networks::parse("").unwrap().is_empty());
    }
}
