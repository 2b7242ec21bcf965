//! Small network value types lab.yaml uses: IPv4 subnets and lease durations.

use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 subnet such as `192.168.64.128/27`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub network: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

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

impl Subnet {
    /// The netmask (`/27` → 255.255.255.224).
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask_bits(self.prefix))
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask_bits(self.prefix))
    }

    /// Whether `ip` lies inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask_bits(self.prefix) == u32::from(self.network)
    }
}

fn mask_bits(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SubnetError::Malformed(s.chars().take(64).collect());
        let (a, p) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.len() > 2 {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let network = Ipv4Addr::from(u32::from(addr) & mask_bits(prefix));
        if network != addr {
            return Err(SubnetError::HostBits {
                text: s.to_string(),
                network,
                prefix,
            });
        }
        Ok(Subnet { network, prefix })
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Parses a lease time: plain seconds (`3600`) or a number with one unit `s`, `m`, `h`,
/// `d` (`30m`, `12h`, `1d`). Zero and anything above `u32::MAX` seconds are refused.
pub fn lease_seconds(text: &str) -> Option<u32> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last()? {
        (i, 's') => (&t[..i], 1u64),
        (i, 'm') => (&t[..i], 60),
        (i, 'h') => (&t[..i], 3600),
        (i, 'd') => (&t[..i], 86_400),
        _ => (t, 1),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) || num.len() > 10 {
        return None;
    }
    let secs = num.parse::<u64>().ok()?.checked_mul(mult)?;
    if secs == 0 {
        return None;
    }
    u32::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s: Subnet = "192.168.64.128/27".parse().unwrap();
        assert_eq!(s.mask(), Ipv4Addr::new(255, 255, 255, 224));
        assert_eq!(s.broadcast(), Ipv4Addr::new(192, 168, 64, 159));
        assert!(s.contains(Ipv4Addr::new(192, 168, 64, 140)));
        assert!(!s.contains(Ipv4Addr::new(192, 168, 64, 160)));
        assert!("0.0.0.0/0"
            .parse::<Subnet>()
            .unwrap()
            .contains(Ipv4Addr::new(1, 2, 3, 4)));
        for bad in [
            "192.168.64.128",
            "192.168.64.128/33",
            "x/24",
            "1.2.3.4/",
            "1.2.3.0/+8",
        ] {
            assert!(
                matches!(bad.parse::<Subnet>(), Err(SubnetError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            "192.168.64.130/27"
                .parse::<Subnet>()
                .unwrap_err()
                .to_string(),
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
            "1.5h",
            "99999999999",
            "200000d",
        ] {
            assert_eq!(lease_seconds(t), None, "{t}");
        }
    }
}
