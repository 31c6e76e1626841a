//! The outbound policy (`--outbound-deny`): which destinations Liftoff's own outbound traffic
//! (uptime checks, webhook notifications, SMTP) must never reach. Pure: parsing and matching
//! only; the binary applies it to every resolved address of every connection, redirects
//! included, and the services refuse monitors and channels whose URL names a denied
//! destination literally.
//!
//! A list is comma-separated CIDRs (`169.254.0.0/16`), single addresses (`100.100.100.200`)
//! and host names (`metadata`, or `*.internal.example` for every name under it). Names match
//! case-insensitively and without a trailing dot. Addresses are matched after unwrapping an
//! IPv4-mapped IPv6 address (`::ffff:169.254.169.254` is `169.254.169.254`).
//!
//! The default denies link-local ranges and the cloud metadata services, where a request from
//! the server can read credentials of the machine it runs on; private and loopback ranges stay
//! allowed, because watching internal services is what uptime checks are for.

use std::fmt;
use std::net::IpAddr;

use crate::network::Net;
pub use crate::network::unmap;

/// The setting's flag, named in every refusal so people know what allows the destination.
pub const SETTING: &str = "--outbound-deny";
/// The setting's environment variable.
pub const SETTING_ENV: &str = "LIFTOFF_OUTBOUND_DENY";

/// What is denied unless the setting says otherwise:
/// - `169.254.0.0/16`: IPv4 link-local, home of the metadata service of AWS, GCP, Azure,
///   OpenStack, DigitalOcean, Oracle (169.254.169.254) and ECS task metadata (169.254.170.2);
/// - `fe80::/10`: IPv6 link-local;
/// - `fd00:ec2::254/128`: the AWS metadata service over IPv6;
/// - `100.100.100.200/32`: Alibaba Cloud's metadata service;
/// - `metadata.google.internal`, `metadata`: GCP's metadata names (refused by name before
///   they are resolved).
pub const DEFAULT_DENY: &str = "169.254.0.0/16, fe80::/10, fd00:ec2::254/128, 100.100.100.200/32, metadata.google.internal, metadata";

/// A destination the policy refuses; its message is what people see in delivery and check
/// errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("destination {destination} is denied by {SETTING}")]
pub struct Denied {
    /// The address or host name refused.
    pub destination: String,
}

impl Denied {
    fn new(destination: impl fmt::Display) -> Self {
        Self {
            destination: destination.to_string(),
        }
    }

    /// The message for a monitor or channel refused when it is created or changed; `what`
    /// names the field, e.g. ``url `http://169.254.169.254/` ``.
    pub fn refusal(&self, what: &str) -> String {
        format!(
            "{what} points at {}, which {SETTING} ({SETTING_ENV}) denies; remove the matching entry from that setting to allow it",
            self.destination
        )
    }
}

/// A host name in its comparable form: lower case, without a trailing dot.
fn normal_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Name {
    Exact(String),
    /// `*.suffix`: every name under `suffix` (not `suffix` itself).
    Under(String),
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The parsed `--outbound-deny` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundPolicy {
    nets: Vec<Net>,
    names: Vec<Name>,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        // The constant parses (a unit test says so).
        Self::parse(DEFAULT_DENY).unwrap_or_else(|_| Self::allow_all())
    }
}

impl OutboundPolicy {
    /// A policy that denies nothing (`--outbound-deny ""`).
    pub fn allow_all() -> Self {
        Self {
            nets: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Parses a comma-separated list; empty items are ignored, so `""` denies nothing. The
    /// error names the entry that is neither a CIDR, an address nor a host name.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut policy = Self::allow_all();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Some(net) = Net::parse(entry) {
                policy.nets.push(net?);
                continue;
            }
            let name = normal_name(entry);
            let pattern = match name.strip_prefix("*.") {
                Some(suffix) if valid_name(suffix) => Name::Under(suffix.to_owned()),
                None if valid_name(&name) => Name::Exact(name),
                _ => {
                    return Err(format!(
                        "`{entry}` is neither a CIDR range, an IP address nor a host name"
                    ));
                }
            };
            policy.names.push(pattern);
        }
        Ok(policy)
    }

    /// Whether nothing is denied.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.names.is_empty()
    }

    /// Whether connecting to `ip` is denied.
    pub fn denies_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// Whether the host name `name` is denied by name (addresses it resolves to are checked
    /// separately, with [`Self::check_ip`]).
    pub fn denies_name(&self, name: &str) -> bool {
        let name = normal_name(name);
        self.names.iter().any(|n| match n {
            Name::Exact(e) => *e == name,
            Name::Under(suffix) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
        })
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Denied> {
        if self.denies_ip(ip) {
            Err(Denied::new(unmap(ip)))
        } else {
            Ok(())
        }
    }

    /// Checks a host as written in a URL or a setting: an IP literal (IPv6 with or without
    /// brackets) by address, anything else by name.
    pub fn check_host(&self, host: &str) -> Result<(), Denied> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.check_ip(ip);
        }
        if self.denies_name(bare) {
            return Err(Denied::new(normal_name(bare)));
        }
        Ok(())
    }

    /// Checks a parsed URL's host. The URL parser has already turned every spelling of an IPv4
    /// address (`0xa9fea9fe`, `2852039166`, `0251.0376.0251.0376`) into the address.
    pub fn check_parsed_url(&self, url: &url::Url) -> Result<(), Denied> {
        match url.host() {
            Some(url::Host::Ipv4(v4)) => self.check_ip(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.check_ip(IpAddr::V6(v6)),
            Some(url::Host::Domain(d)) => self.check_host(d),
            None => Ok(()),
        }
    }

    /// Checks what a URL names literally (an address, or a denied name). A URL that does not
    /// parse is left to the caller's own validation.
    pub fn check_url(&self, url: &str) -> Result<(), Denied> {
        match url::Url::parse(url.trim()) {
            Ok(u) => self.check_parsed_url(&u),
            Err(_) => Ok(()),
        }
    }

    /// The list in its normal form, for logs and `--help`.
    pub fn describe(&self) -> String {
        let nets = self.nets.iter().map(ToString::to_string);
        let names = self.names.iter().map(|n| match n {
            Name::Exact(e) => e.clone(),
            Name::Under(s) => format!("*.{s}"),
        });
        nets.chain(names).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_denies_metadata_and_link_local_but_not_private_or_loopback() {
        let p = OutboundPolicy::default();
        for denied in [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.0.1",
            "fe80::1",
            "febf:ffff::1",
            "fd00:ec2::254",
            "100.100.100.200",
            "::ffff:169.254.169.254",
            "::ffff:100.100.100.200",
        ] {
            assert!(p.denies_ip(ip(denied)), "{denied} should be denied");
        }
        for allowed in [
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.100.100.201",
            "169.253.255.255",
            "169.255.0.0",
            "fd00:ec2::253",
            "fec0::1",
            "::ffff:127.0.0.1",
            "8.8.8.8",
            "2001:db8::1",
        ] {
            assert!(!p.denies_ip(ip(allowed)), "{allowed} should be allowed");
        }
    }

    #[test]
    fn names_match_without_case_or_trailing_dot() {
        let p = OutboundPolicy::default();
        for denied in [
            "metadata",
            "METADATA",
            "metadata.",
            "Metadata.Google.Internal",
            "metadata.google.internal.",
        ] {
            assert!(p.denies_name(denied), "{denied}");
            assert!(p.check_host(denied).is_err(), "{denied}");
        }
        for allowed in [
            "metadata.example.com",
            "google.internal",
            "localhost",
            "meta",
        ] {
            assert!(!p.denies_name(allowed), "{allowed}");
        }
        let p = OutboundPolicy::parse("*.Internal.Example., db").unwrap();
        assert!(p.denies_name("a.internal.example"));
        assert!(p.denies_name("B.A.INTERNAL.EXAMPLE."));
        assert!(!p.denies_name("internal.example"), "the suffix itself");
        assert!(!p.denies_name("xinternal.example"));
        assert!(p.denies_name("DB."));
        assert!(!p.denies_name("db.example"));
    }

    #[test]
    fn urls_are_checked_by_literal_address_or_name() {
        let p = OutboundPolicy::default();
        for denied in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.169.254:80",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[fe80::1]:8080/x",
            "http://0xa9fea9fe/",
            "http://2852039166/",
            "http://0251.0376.0251.0376/",
            "http://169.254.43518/",
            "https://Metadata.Google.Internal./computeMetadata/v1/",
            "http://metadata/",
            "http://user:pw@169.254.169.254/",
        ] {
            let e = p.check_url(denied).unwrap_err();
            assert!(
                e.to_string().ends_with("is denied by --outbound-deny"),
                "{denied}: {e}"
            );
        }
        assert_eq!(
            p.check_url("http://[::ffff:169.254.169.254]/")
                .unwrap_err()
                .to_string(),
            "destination 169.254.169.254 is denied by --outbound-deny",
            "named by the unwrapped address"
        );
        for allowed in [
            "http://127.0.0.1:8080/healthz",
            "http://localhost/",
            "http://[::1]/",
            "http://10.1.2.3/",
            "https://hooks.slack.com/services/T/B/x",
            "http://169.254.169.254.nip.example/",
        ] {
            assert!(p.check_url(allowed).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn lists_parse_or_name_the_bad_entry() {
        let p = OutboundPolicy::parse(" 10.0.0.0/8 ,, ::1, [fd00::]/8 , 192.168.1.7/24 ,db.local ")
            .unwrap();
        assert_eq!(
            p.describe(),
            "10.0.0.0/8, ::1/128, fd00::/8, 192.168.1.7/24, db.local"
        );
        assert!(p.denies_ip(ip("10.255.0.1")));
        assert!(p.denies_ip(ip("192.168.1.200")), "host bits are ignored");
        assert!(!p.denies_ip(ip("192.168.2.1")));
        assert!(p.denies_ip(ip("::1")));
        assert!(p.denies_ip(ip("fdff::1")));
        assert!(OutboundPolicy::parse("").unwrap().is_empty());
        assert!(OutboundPolicy::parse(" , ").unwrap().is_empty());
        for (bad, says) in [
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("::/129", "::/129"),
            ("10.0.0.0/x", "10.0.0.0/x"),
            ("example.com/8", "example.com/8"),
            ("http://x", "http://x"),
            ("a..b", "a..b"),
            ("*.", "*."),
        ] {
            let e = OutboundPolicy::parse(&format!("127.0.0.1, {bad}")).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // A mapped range is the IPv4 range.
        let p = OutboundPolicy::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(p.denies_ip(ip("10.1.1.1")));
        assert!(!p.denies_ip(ip("11.0.0.1")));
        // /0 denies a whole family.
        let p = OutboundPolicy::parse("0.0.0.0/0").unwrap();
        assert!(p.denies_ip(ip("1.2.3.4")) && p.denies_ip(ip("::ffff:1.2.3.4")));
        assert!(!p.denies_ip(ip("::1")));
    }

    #[test]
    fn refusals_name_the_setting() {
        let e = OutboundPolicy::default()
            .check_url("http://169.254.169.254/")
            .unwrap_err();
        let msg = e.refusal("url `http://169.254.169.254/`");
        assert!(
            msg.contains("--outbound-deny") && msg.contains("LIFTOFF_OUTBOUND_DENY"),
            "{msg}"
        );
    }

    proptest! {
        #[test]
        fn an_ipv4_address_and_its_mapped_form_are_judged_alike(a: u32, net: u32, prefix in 0u8..=32) {
            let p = OutboundPolicy::parse(&format!("{}/{prefix}", Ipv4Addr::from(net))).unwrap();
            let v4 = Ipv4Addr::from(a);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            let inside = a & mask == net & mask;
            prop_assert_eq!(p.denies_ip(IpAddr::V4(v4)), inside);
            prop_assert_eq!(p.denies_ip(IpAddr::V6(v4.to_ipv6_mapped())), inside);
        }

        #[test]
        fn ipv6_ranges_match_by_prefix(a: u128, net: u128, prefix in 0u8..=128) {
            let p = OutboundPolicy::parse(&format!("{}/{prefix}", Ipv6Addr::from(net))).unwrap();
            let addr = Ipv6Addr::from(a);
            prop_assume!(addr.to_ipv4_mapped().is_none());
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            prop_assert_eq!(p.denies_ip(IpAddr::V6(addr)), a & mask == net & mask);
        }

        #[test]
        fn the_default_denies_exactly_link_local_ipv4(a: u32) {
            let v4 = Ipv4Addr::from(a);
            let want = v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200);
            prop_assert_eq!(OutboundPolicy::default().denies_ip(IpAddr::V4(v4)), want);
            prop_assert_eq!(OutboundPolicy::default().denies_ip(IpAddr::V6(v4.to_ipv6_mapped())), want);
        }

        #[test]
        fn names_match_in_any_case_with_or_without_a_trailing_dot(
            name in "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
            upper: Vec<bool>,
            dot: bool,
        ) {
            let p = OutboundPolicy::parse(&name).unwrap();
            let mut spelled: String = name
                .chars()
                .zip(upper.iter().chain(std::iter::repeat(&false)))
                .map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c })
                .collect();
            if dot {
                spelled.push('.');
            }
            prop_assert!(p.denies_name(&spelled));
            // A host the URL parser refuses (an invalid punycode label such as `xn--`) can
            // never be connected to, so only parseable URLs must be refused here.
            let url = format!("http://{spelled}:8080/x");
            if url::Url::parse(&url).is_ok() {
                prop_assert!(p.check_url(&url).is_err());
            }
            let longer = format!("{name}x");
            prop_assert!(!p.denies_name(&longer));
        }
    }
}
