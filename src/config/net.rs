//! The one parser of each small network value lab.yaml holds: IPv4 subnets (through
//! `ipnet`) and lease durations (through `humantime`). Validation and every server use
//! these, so a value `check` accepts is read the same way by `up`.

use std::net::Ipv4Addr;
use std::time::Duration;

pub use ipnet::Ipv4Net;

/// Why a text is not a subnet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// Not `ADDRESS/PREFIX` with an IPv4 address and a prefix of 0..=32.
    #[error("`{0}` is not a subnet (expected ADDRESS/PREFIX, e.g. 192.168.64.128/27)")]
    Malformed(String),
    /// The address has bits set beyond the prefix.
    #[error("`{text}` has host bits set: did you mean {network}/{prefix}?")]
    HostBits {
        /// What was written.
        text: String,
        /// The network it probably meant.
        network: Ipv4Addr,
        /// The prefix.
        prefix: u8,
    },
}

/// Parses `ADDRESS/PREFIX` strictly: a decimal prefix of 0..=32 and no host bits set
/// (`192.168.64.130/27` is refused, naming the network it probably meant).
pub fn parse_subnet(s: &str) -> Result<Ipv4Net, SubnetError> {
    let bad = || SubnetError::Malformed(s.chars().take(64).collect());
    let t = s.trim();
    let (_, p) = t.split_once('/').ok_or_else(bad)?;
    // ipnet alone would take `+8`-like prefixes on some inputs; keep the form plain.
    if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.len() > 2 {
        return Err(bad());
    }
    let net: Ipv4Net = t.parse().map_err(|_| bad())?;
    if net.addr() != net.network() {
        return Err(SubnetError::HostBits {
            text: s.to_string(),
            network: net.network(),
            prefix: net.prefix_len(),
        });
    }
    Ok(net)
}

/// Parses a duration: plain seconds (`3600`) or humantime's forms (`30m`, `12h`, `1d`,
/// `1h 30m`). Zero, fractions of a second and anything above `u32::MAX` seconds (the
/// DHCP lease time field) are refused.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let d = if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        Duration::from_secs(t.parse::<u64>().ok()?)
    } else {
        humantime::parse_duration(t).ok()?
    };
    let whole = d.subsec_nanos() == 0 && d.as_secs() > 0;
    (whole && u32::try_from(d.as_secs()).is_ok()).then_some(d)
}

/// The lease time that never ends: RFC 2131 §3.3 reserves `0xffffffff` for
/// "infinity". Written `lease_time: infinite` (as dnsmasq spells it); a number of
/// seconds that large is refused, so only that word means it.
pub const INFINITE_LEASE: u32 = u32::MAX;

/// A lease time in seconds, through [`parse_duration`], or [`INFINITE_LEASE`] for
/// `infinite`.
pub fn lease_seconds(text: &str) -> Option<u32> {
    if text.trim() == "infinite" {
        return Some(INFINITE_LEASE);
    }
    parse_duration(text)
        .and_then(|d| u32::try_from(d.as_secs()).ok())
        .filter(|s| *s != INFINITE_LEASE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = parse_subnet("192.168.64.128/27").unwrap();
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 255, 224));
        assert_eq!(s.broadcast(), Ipv4Addr::new(192, 168, 64, 159));
        assert!(s.contains(&Ipv4Addr::new(192, 168, 64, 140)));
        assert!(!s.contains(&Ipv4Addr::new(192, 168, 64, 160)));
        assert!(parse_subnet("0.0.0.0/0")
            .unwrap()
            .contains(&Ipv4Addr::new(1, 2, 3, 4)));
        for bad in [
            "192.168.64.128",
            "192.168.64.128/33",
            "x/24",
            "1.2.3.4/",
            "1.2.3.0/+8",
        ] {
            assert!(
                matches!(parse_subnet(bad), Err(SubnetError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_subnet("192.168.64.130/27").unwrap_err().to_string(),
            "`192.168.64.130/27` has host bits set: did you mean 192.168.64.128/27?"
        );
    }

    #[test]
    fn lease_times() {
        for (t, want) in [
            ("3600", Some(3600)),
            ("30m", Some(1800)),
            ("12h", Some(43_200)),
            ("1d", Some(86_400)),
            ("90s", Some(90)),
            ("1h 30m", Some(5400)),
            ("1.5h", Some(5400)),
            ("infinite", Some(INFINITE_LEASE)),
            ("4294967294", Some(u32::MAX - 1)),
        ] {
            assert_eq!(lease_seconds(t), want, "{t}");
        }
        for t in [
            "",
            "0",
            "0h",
            "12x",
            "h",
            "-5",
            "1.5s",
            "99999999999",
            "200000d",
            "500ms",
            "4294967295",
            "Infinite",
            "infinity",
        ] {
            assert_eq!(lease_seconds(t), None, "{t}");
        }
    }
}
