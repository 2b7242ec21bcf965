//! Ethernet hardware addresses: the key every part of pxelab files a machine under.
//!
//! Accepts the spellings operators and firmware actually use (`52:54:00:aa:bb:cc`,
//! `52-54-00-AA-BB-CC`, `525400aabbcc`) and always prints the canonical lower-case,
//! colon-separated form, so a MAC typed in lab.yaml, sent by iPXE as `${net0/mac}`
//! and seen in a DHCP packet compare equal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Raspberry Pi OUIs (field notes §2; smee's list).
pub const PI_OUIS: [[u8; 3]; 7] = [
    [0xb8, 0x27, 0xeb],
    [0xdc, 0xa6, 0x32],
    [0xe4, 0x5f, 0x01],
    [0x28, 0xcd, 0xc1],
    [0xd8, 0x3a, 0xdd],
    [0x2c, 0xcf, 0x67],
    [0x88, 0xa2, 0x9e],
];

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)")]
pub struct MacParseError {
    /// The text that was refused (truncated to 64 characters).
    pub input: String,
}

impl Mac {
    /// Builds a MAC from the first six bytes of a DHCP `chaddr` field.
    /// Returns `None` when fewer than six bytes are given.
    pub fn from_slice(bytes: &[u8]) -> Option<Mac> {
        let six: [u8; 6] = bytes.get(..6)?.try_into().ok()?;
        Some(Mac(six))
    }

    /// The six raw bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// `52-54-00-12-34-56`, the form iPXE prints for `${mac:hexhyp}`.
    pub fn hyphenated(&self) -> String {
        self.to_string().replace(':', "-")
    }

    /// Twelve lower-case hex digits without separators (`525400123456`).
    pub fn compact(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether this is a group address (the I/G bit, the lowest bit of the first byte:
    /// multicast, and ff:ff:ff:ff:ff:ff broadcast). No network card has one, so a machine
    /// named by one is a typo or a forgery: refused wherever a MAC comes from outside.
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The organisationally unique identifier: the first three bytes.
    pub fn oui(&self) -> [u8; 3] {
        [self.0[0], self.0[1], self.0[2]]
    }

    /// Whether the MAC belongs to a Raspberry Pi ([`PI_OUIS`]).
    pub fn is_raspberry_pi(&self) -> bool {
        PI_OUIS.contains(&self.oui())
    }

    /// A short stable hash of the address (6 hex digits), used for suggested hostnames
    /// (`{hash}`). 6, not 4: with 4 (65,536 values) two of a few hundred machines share a
    /// name more often than not (the birthday bound); with 6 a lab of 500 has a 0.7 %
    /// chance of one collision, and `{n}` or an edit settles that one.
    pub fn short_hash(&self) -> String {
        // FNV-1a: tiny, stable across releases and platforms.
        let mut h: u32 = 0x811c_9dc5;
        for b in self.0 {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        format!("{:06x}", (h ^ (h >> 24)) & 0x00ff_ffff)
    }
}

impl fmt::Display for Mac {
    /// `52:54:00:aa:bb:cc`, honouring width and alignment (`{:<20}`). Built in a stack
    /// buffer: every event line prints a MAC, and `write!` with six `{:02x}` cost several
    /// times more (seen in a profile of the headless face under a DHCP storm).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [b':'; 17];
        for (i, b) in self.0.iter().enumerate() {
            buf[i * 3] = HEX[usize::from(b >> 4)];
            buf[i * 3 + 1] = HEX[usize::from(b & 0xf)];
        }
        // Only ASCII hex digits and colons were written.
        f.pad(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl FromStr for Mac {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError {
            input: s.chars().take(64).collect(),
        };
        let t = s.trim();
        let hex: String = if t.len() == 12 {
            t.to_string()
        } else if t.len() == 17 {
            let seps: Vec<char> = t.chars().skip(2).step_by(3).collect();
            let sep = *seps.first().ok_or_else(err)?;
            if !(sep == ':' || sep == '-') || seps.iter().any(|c| *c != sep) {
                return Err(err());
            }
            t.chars()
                .enumerate()
                .filter(|(i, _)| i % 3 != 2)
                .map(|(_, c)| c)
                .collect()
        } else {
            return Err(err());
        };
        if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(err());
        }
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| err())?;
        }
        Ok(Mac(out))
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_common_spelling() {
        let want = Mac([0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]);
        for s in [
            "52:54:00:aa:bb:cc",
            "52-54-00-AA-BB-CC",
            "525400aabbcc",
            " 52:54:00:AA:bb:cc ",
        ] {
            assert_eq!(s.parse::<Mac>().unwrap(), want, "{s}");
        }
        assert_eq!(want.to_string(), "52:54:00:aa:bb:cc");
        assert_eq!(want.hyphenated(), "52-54-00-aa-bb-cc");
    }

    #[test]
    fn refuses_bad_input() {
        for s in [
            "",
            "52:54:00:aa:bb",
            "52:54:00:aa:bb:cg",
            "52:54-00:aa:bb:cc",
            "5254.00aa.bbcc",
            "../../etc/passwd",
        ] {
            assert!(s.parse::<Mac>().is_err(), "{s}");
        }
    }

    #[test]
    fn group_addresses_are_told_apart() {
        for (s, group) in [
            ("ff:ff:ff:ff:ff:ff", true),
            ("01:00:5e:00:00:01", true),
            ("33:33:00:00:00:01", true),
            ("03:00:00:00:00:00", true),
            ("52:54:00:aa:bb:cc", false),
            ("02:00:00:00:00:01", false),
            ("00:00:00:00:00:00", false),
        ] {
            assert_eq!(s.parse::<Mac>().unwrap().is_group(), group, "{s}");
        }
    }

    #[test]
    fn short_hash_is_stable() {
        let m: Mac = "52:54:00:aa:bb:cc".parse().unwrap();
        assert_eq!(m.short_hash(), m.short_hash());
        assert_eq!(m.short_hash().len(), 6);
        // Stable across releases: a hostname once suggested is suggested again.
        assert_eq!(m.short_hash(), FIXED_HASH);
    }

    /// The hash of 52:54:00:aa:bb:cc, pinned.
    const FIXED_HASH: &str = "df8300";

    #[test]
    fn short_hashes_of_a_rack_of_boards_do_not_collide() {
        // 2,000 boards of one vendor with consecutive MACs, as a rack delivery has.
        let mut seen = std::collections::HashSet::new();
        for i in 0u32..2000 {
            let b = i.to_be_bytes();
            let m = Mac([0xa0, 0x1a, 0x2c, b[1], b[2], b[3]]);
            assert!(seen.insert(m.short_hash()), "{m} collides");
        }
    }
}
