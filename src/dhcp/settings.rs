//! Server mode's settings from lab.yaml (`dhcp.subnet`, `range`, `lease_time`),
//! validated once at start, and the clock the lease table runs on.

use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Lab;

/// The server-mode settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Our address (option 54).
    pub server: Ipv4Addr,
    /// Network address.
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Dynamic range, inclusive.
    pub range: (Ipv4Addr, Ipv4Addr),
    /// Lease time.
    pub lease_secs: u32,
}

/// Why server mode cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `dhcp.subnet` missing or malformed.
    #[error("dhcp.subnet `{0}` is not an IPv4 subnet like 192.168.64.0/24")]
    Subnet(String),
    /// `dhcp.range` outside the subnet or reversed.
    #[error("dhcp.range {0}-{1} is not an ordered range inside dhcp.subnet")]
    Range(Ipv4Addr, Ipv4Addr),
    /// `dhcp.lease_time` malformed.
    #[error("dhcp.lease_time `{0}` is not a duration like 12h, 30m or 3600")]
    LeaseTime(String),
}

/// Parses `12h`, `30m`, `45s`, `2d` or plain seconds.
pub fn parse_duration(s: &str) -> Option<u32> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'd' => (&s[..s.len() - 1], 86_400),
        'h' => (&s[..s.len() - 1], 3_600),
        'm' => (&s[..s.len() - 1], 60),
        's' => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u32>()
        .ok()?
        .checked_mul(mult)
        .filter(|v| *v > 0)
}

impl Settings {
    /// Validates the `dhcp:` section for server mode.
    pub fn from_lab(lab: &Lab) -> Result<Settings, SettingsError> {
        let d = &lab.file.dhcp;
        let sub = d.subnet.clone().unwrap_or_default();
        let (a, p) = sub
            .split_once('/')
            .ok_or_else(|| SettingsError::Subnet(sub.clone()))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| SettingsError::Subnet(sub.clone()))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| SettingsError::Subnet(sub.clone()))?;
        let mask = u32::MAX << (32 - prefix);
        let network = Ipv4Addr::from(u32::from(addr) & mask);
        let bcast = u32::from(network) | !mask;
        let range = match d.range {
            Some([s, e]) => (s, e),
            None => (
                Ipv4Addr::from(u32::from(network) + 1),
                Ipv4Addr::from(bcast - 1),
            ),
        };
        let inside = |ip: Ipv4Addr| {
            let v = u32::from(ip);
            v & mask == u32::from(network) && v != u32::from(network) && v != bcast
        };
        if !inside(range.0) || !inside(range.1) || range.0 > range.1 {
            return Err(SettingsError::Range(range.0, range.1));
        }
        let lease_secs = parse_duration(&d.lease_time)
            .ok_or_else(|| SettingsError::LeaseTime(d.lease_time.clone()))?;
        Ok(Settings {
            server: lab.server_address,
            network,
            prefix,
            range,
            lease_secs,
        })
    }

    /// The subnet mask.
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - self.prefix))
    }

    /// Whether `ip` is a host address of the subnet.
    pub fn in_subnet(&self, ip: Ipv4Addr) -> bool {
        let m = u32::from(self.mask());
        let v = u32::from(ip);
        v & m == u32::from(self.network) && v != u32::from(self.network) && v | m != u32::MAX
    }

    /// Whether `ip` is in the dynamic range.
    pub fn in_range(&self, ip: Ipv4Addr) -> bool {
        ip >= self.range.0 && ip <= self.range.1
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
