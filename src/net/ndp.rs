//! IPv6 Neighbor Discovery (RFC 4861) messages as bytes, the lab's ULA prefix, and the
//! interface facts the RA sender needs, read from /sys and /proc (no `unsafe`, no netlink).
//!
//! Messages are the ICMPv6 part only: a raw `IPPROTO_ICMPV6` socket on Linux neither
//! hands over nor expects the IPv6 header, and the kernel fills in the checksum (it is
//! always on for ICMPv6 raw sockets), so the checksum field is left 0 here.
//!
//! Why the Router Advertisement is what it is (iPXE's src/net/ndp.c,
//! `ipv6conf_rx_router_advertisement`, and RFC 4861):
//! - M = O = 0: with either flag iPXE goes on to DHCPv6 and keeps waiting; with neither
//!   it ends its IPv6 autoconfiguration at the first RA.
//! - router lifetime 0: iPXE and Linux hosts install no default router, so nothing ever
//!   routes through the machine running pxelab.
//! - cur hop limit 64, reachable time 0, retrans timer 0: ordinary values, 0 meaning
//!   "unspecified, keep yours".
//! - one Prefix Information option, L and A set, length 64: iPXE parses every option
//!   before it accepts the RA and rejects an autonomous prefix that is not a /64 (SLAAC
//!   via EUI-64), so the prefix must be exactly that. Valid/preferred lifetimes 1800/900 s
//!   are modest so addresses fade soon after pxelab stops.
//! - the prefix is a ULA (fd00::/8, RFC 4193) derived from the lab, so it is stable across
//!   restarts and never collides with a real (global) network.
//! - a Source Link-Layer Address option with the interface MAC spares the hosts a
//!   neighbour solicitation before they answer.

use std::net::Ipv6Addr;

use sha2::{Digest, Sha256};

/// All-nodes multicast (`ff02::1`): where unsolicited and solicited RAs go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// All-routers multicast (`ff02::2`): where Router Solicitations go.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// ICMPv6 type of a Router Solicitation.
pub const ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// Hop limit every ND message is sent with, and the only one hosts accept.
pub const ND_HOP_LIMIT: u32 = 255;
/// Valid lifetime of the advertised prefix, seconds.
pub const VALID_LIFETIME: u32 = 1800;
/// Preferred lifetime of the advertised prefix, seconds.
pub const PREFERRED_LIFETIME: u32 = 900;

const OPT_SOURCE_LL: u8 = 1;
const OPT_PREFIX: u8 = 3;
const PREFIX_ON_LINK: u8 = 0x80;
const PREFIX_AUTONOMOUS: u8 = 0x40;
const RA_MANAGED: u8 = 0x80;
const RA_OTHER: u8 = 0x40;

/// The lab's ULA /64: `fd` + 40 bits of SHA-256(lab name, interface), subnet id 0.
/// Returned as the network address (`fdxx:xxxx:xxxx::`).
pub fn ula_prefix(lab: &str, interface: &str) -> Ipv6Addr {
    let mut h = Sha256::new();
    h.update(lab.as_bytes());
    h.update([0u8]);
    h.update(interface.as_bytes());
    let d = h.finalize();
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[1..6].copy_from_slice(&d[..5]);
    Ipv6Addr::from(a)
}

/// A Router Advertisement announcing `prefix`/64 (see the module doc for every field).
pub fn router_advertisement(prefix: Ipv6Addr, mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut m = Vec::with_capacity(56);
    m.extend_from_slice(&[ROUTER_ADVERTISEMENT, 0, 0, 0]); // type, code, checksum
    m.push(64); // cur hop limit
    m.push(0); // M = O = 0
    m.extend_from_slice(&0u16.to_be_bytes()); // router lifetime: not a default router
    m.extend_from_slice(&0u32.to_be_bytes()); // reachable time: unspecified
    m.extend_from_slice(&0u32.to_be_bytes()); // retrans timer: unspecified
    m.extend_from_slice(&[OPT_PREFIX, 4, 64, PREFIX_ON_LINK | PREFIX_AUTONOMOUS]);
    m.extend_from_slice(&VALID_LIFETIME.to_be_bytes());
    m.extend_from_slice(&PREFERRED_LIFETIME.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes()); // reserved
    m.extend_from_slice(&prefix.octets());
    if let Some(mac) = mac {
        m.extend_from_slice(&[OPT_SOURCE_LL, 1]);
        m.extend_from_slice(&mac);
    }
    m
}

/// A Router Solicitation (used once at start to ask whether another router is there).
pub fn router_solicitation(mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut m = vec![ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    if let Some(mac) = mac {
        m.extend_from_slice(&[OPT_SOURCE_LL, 1]);
        m.extend_from_slice(&mac);
    }
    m
}

/// What a received Router Advertisement says (for the report on another router).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaInfo {
    /// M flag: addresses from DHCPv6.
    pub managed: bool,
    /// O flag: other configuration from DHCPv6.
    pub other: bool,
    /// Router lifetime, seconds (0: not a default router).
    pub router_lifetime: u16,
    /// Prefix Information options: (prefix, length).
    pub prefixes: Vec<(Ipv6Addr, u8)>,
}

/// A Neighbor Discovery message this module cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nd {
    /// A host asks for routers.
    Solicitation,
    /// A router advertises itself.
    Advertisement(RaInfo),
}

/// Parses an ICMPv6 message; `None` for other types and for malformed ND messages (bad
/// code, short, an option of length 0 or running past the end: RFC 4861 §6.1 says drop).
pub fn parse(m: &[u8]) -> Option<Nd> {
    let (&ty, &code) = (m.first()?, m.get(1)?);
    if code != 0 {
        return None;
    }
    let (fixed, nd) = match ty {
        ROUTER_SOLICITATION => (8, Nd::Solicitation),
        ROUTER_ADVERTISEMENT => {
            let f = *m.get(5)?;
            let info = RaInfo {
                managed: f & RA_MANAGED != 0,
                other: f & RA_OTHER != 0,
                router_lifetime: u16::from_be_bytes([*m.get(6)?, *m.get(7)?]),
                prefixes: Vec::new(),
            };
            (16, Nd::Advertisement(info))
        }
        _ => return None,
    };
    let mut opts = m.get(fixed..)?;
    let mut nd = nd;
    while !opts.is_empty() {
        let len = usize::from(*opts.get(1)?) * 8;
        if len == 0 || len > opts.len() {
            return None;
        }
        if let (Nd::Advertisement(info), OPT_PREFIX, 32) = (&mut nd, opts[0], len) {
            let mut p = [0u8; 16];
            p.copy_from_slice(&opts[16..32]);
            info.prefixes.push((Ipv6Addr::from(p), opts[2]));
        }
        opts = &opts[len..];
    }
    Some(nd)
}

/// Whether `received` is the advertisement `ours` (the checksum, filled by the kernel,
/// aside): how pxelab tells its own RA from another router's, since a router on the same
/// host (dnsmasq on the bridge) sends from the very same link-local address.
pub fn same_message(received: &[u8], ours: &[u8]) -> bool {
    received.len() == ours.len()
        && received.len() >= 4
        && received[..2] == ours[..2]
        && received[4..] == ours[4..]
}

/// One line of /proc/net/if_inet6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: Ipv6Addr,
    /// Interface index.
    pub ifindex: u32,
    /// Prefix length.
    pub prefix_len: u8,
    /// IFA_F_* flags.
    pub flags: u8,
    /// Interface name.
    pub interface: String,
}

const IFA_F_DADFAILED: u8 = 0x08;
const IFA_F_TENTATIVE: u8 = 0x40;

impl IfAddr {
    /// A link-local address the kernel will send from: fe80::/10, neither tentative
    /// (duplicate address detection still running) nor failed.
    pub fn usable_link_local(&self) -> bool {
        self.addr.segments()[0] & 0xffc0 == 0xfe80
            && self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0
    }
}

/// Parses /proc/net/if_inet6 (`address ifindex plen scope flags name`, hex fields).
pub fn parse_if_inet6(text: &str) -> Vec<IfAddr> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [a, idx, plen, _scope, flags, name] = f.as_slice() else {
                return None;
            };
            let raw = u128::from_str_radix(a, 16).ok().filter(|_| a.len() == 32)?;
            Some(IfAddr {
                addr: Ipv6Addr::from(raw),
                ifindex: u32::from_str_radix(idx, 16).ok()?,
                prefix_len: u8::from_str_radix(plen, 16).ok()?,
                flags: u8::from_str_radix(flags, 16).ok()?,
                interface: (*name).to_string(),
            })
        })
        .collect()
}

/// The IPv6 addresses of `interface` now (empty when IPv6 is off or unreadable).
pub fn interface_addrs(interface: &str) -> Vec<IfAddr> {
    let text = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    parse_if_inet6(&text)
        .into_iter()
        .filter(|a| a.interface == interface)
        .collect()
}

/// Parses a MAC as /sys/class/net/IF/address spells it (`52:54:00:12:34:56`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The interface's MAC from /sys/class/net (None for interfaces without one).
pub fn interface_mac(interface: &str) -> Option<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{interface}/address")).ok()?;
    parse_mac(&s).filter(|m| m.iter().any(|&b| b != 0))
}

/// The interface's index from /sys/class/net.
pub fn interface_index(interface: &str) -> std::io::Result<u32> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{interface}/ifindex"))?;
    s.trim()
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    #[test]
    fn the_advertisement_is_what_ipxe_accepts() {
        let p: Ipv6Addr = "fd12:3456:789a::".parse().unwrap();
        let m = router_advertisement(p, Some(MAC));
        assert_eq!(m.len(), 16 + 32 + 8);
        assert_eq!(
            &m[..4],
            &[134, 0, 0, 0],
            "type 134, code 0, checksum by kernel"
        );
        assert_eq!(m[4], 64, "cur hop limit");
        assert_eq!(m[5], 0, "M = O = 0");
        assert_eq!(&m[6..8], &[0, 0], "router lifetime 0");
        assert_eq!(&m[8..16], &[0; 8], "reachable and retrans unspecified");
        let pio = &m[16..48];
        assert_eq!(pio[0], 3, "prefix information");
        assert_eq!(pio[1], 4, "length in 8-byte units");
        assert_eq!(
            pio[2], 64,
            "iPXE rejects autonomous prefixes other than /64"
        );
        assert_eq!(pio[3], 0xc0, "L and A");
        assert_eq!(&pio[4..8], &1800u32.to_be_bytes());
        assert_eq!(&pio[8..12], &900u32.to_be_bytes());
        assert_eq!(&pio[12..16], &[0; 4]);
        assert_eq!(&pio[16..], &p.octets());
        assert_eq!(&m[48..], &[1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        // It parses back, as iPXE would see it.
        let Some(Nd::Advertisement(info)) = parse(&m) else {
            panic!("not an RA")
        };
        assert_eq!(
            info,
            RaInfo {
                managed: false,
                other: false,
                router_lifetime: 0,
                prefixes: vec![(p, 64)]
            }
        );
        // Without a MAC, no link-layer option, and the length is still whole units.
        assert_eq!(router_advertisement(p, None).len(), 48);
    }

    #[test]
    fn solicitations_parse_and_malformed_messages_do_not() {
        let rs = router_solicitation(Some(MAC));
        assert_eq!(rs.len(), 16);
        assert_eq!(parse(&rs), Some(Nd::Solicitation));
        assert_eq!(parse(&router_solicitation(None)), Some(Nd::Solicitation));
        let ra = router_advertisement(Ipv6Addr::UNSPECIFIED, Some(MAC));
        let mut zero_len = ra.clone();
        zero_len[17] = 0;
        assert_eq!(parse(&zero_len), None, "option of length 0");
        let mut long = ra.clone();
        long[49] = 2;
        assert_eq!(parse(&long), None, "option past the end");
        let mut code = ra.clone();
        code[1] = 1;
        assert_eq!(parse(&code), None, "code not 0");
        assert_eq!(parse(&ra[..10]), None, "short");
        assert_eq!(parse(&[128, 0, 0, 0, 0, 1, 0, 1]), None, "echo request");
        let mut flags = ra.clone();
        flags[5] = 0xc0;
        let Some(Nd::Advertisement(i)) = parse(&flags) else {
            panic!()
        };
        assert!(i.managed && i.other);
    }

    #[test]
    fn own_message_is_recognised_whatever_the_checksum() {
        let ours = router_advertisement("fd00:1::".parse().unwrap(), Some(MAC));
        let mut got = ours.clone();
        got[2] = 0xab;
        got[3] = 0xcd;
        assert!(same_message(&got, &ours));
        let other = router_advertisement("fd00:2::".parse().unwrap(), Some(MAC));
        assert!(!same_message(&other, &ours));
        assert!(!same_message(&ours[..48], &ours));
    }

    #[test]
    fn the_prefix_is_a_stable_ula_per_lab_and_interface() {
        let a = ula_prefix("lab", "br0");
        assert_eq!(a, ula_prefix("lab", "br0"));
        assert_ne!(a, ula_prefix("lab", "br1"));
        assert_ne!(a, ula_prefix("lab2", "br0"));
        // "la" + "bbr0" must not equal "lab" + "br0".
        assert_ne!(ula_prefix("la", "bbr0"), a);
        let o = a.octets();
        assert_eq!(o[0], 0xfd, "ULA with the L bit");
        assert_eq!(&o[6..], &[0; 10], "subnet id 0, interface id 0");
        // Pinned, so a change of derivation (which renumbers every lab) is deliberate.
        let first = Sha256::digest(b"lab\0br0");
        assert_eq!(&o[1..6], &first[..5]);
    }

    #[test]
    fn if_inet6_lines_and_usable_link_locals() {
        let text = "\
fe80000000000000505400fffe123456 03 40 20 80     br0
fe80000000000000505400fffe123457 04 40 20 c0     br1
fd001234567800000000000000000001 03 40 00 80     br0
00000000000000000000000000000001 01 80 10 80       lo
garbage
";
        let v = parse_if_inet6(text);
        assert_eq!(v.len(), 4);
        assert_eq!(
            v[0].addr,
            "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!((v[0].ifindex, v[0].prefix_len), (3, 64));
        assert!(v[0].usable_link_local());
        assert!(!v[1].usable_link_local(), "tentative");
        assert!(!v[2].usable_link_local(), "not link-local");
        assert_eq!(v[3].interface, "lo");
    }

    #[test]
    fn macs_as_sysfs_spells_them() {
        assert_eq!(parse_mac("52:54:00:12:34:56\n"), Some(MAC));
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:56:78"), None);
        assert_eq!(parse_mac("52:54:00:12:34:5g"), None);
    }
}
