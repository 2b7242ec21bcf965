//! The kernel's neighbour (ARP) table: which MAC is at an address on a directly attached
//! segment. TFTP and HTTP name the machine behind a request with it when DHCP did not
//! tell (proxy mode, where pxelab never learns a node's address): the kernel has just
//! exchanged packets with the client, so its entry is fresh. The user-data gate
//! ([`crate::http::userdata_gate`]) reads it to tie an asking address to a MAC.
//!
//! This is the one reader, with one rule for which entries count:
//! - only complete entries: flag `0x2` (`ATF_COM`) set, whatever else is set
//!   (`ATF_PERM` 0x4, a static `arp -s` entry, counts when it is also complete);
//! - and a MAC that is not all zeroes (an incomplete entry is the kernel still asking,
//!   which says nothing about who is there);
//! - on any interface: an IPv4 address is on at most one attached segment, and the lab's
//!   interface is not the only one a routed-in request may be answered on;
//! - never loopback, which has no neighbour entry (callers treat it on its own).

use std::net::{IpAddr, Ipv4Addr};

use crate::mac::Mac;

/// The MAC the kernel's ARP table has for `ip`, if any (never for loopback).
pub fn mac_of(ip: IpAddr) -> Option<Mac> {
    let IpAddr::V4(ip) = ip else { return None };
    if ip.is_loopback() {
        return None;
    }
    let table = std::fs::read_to_string("/proc/net/arp").ok()?;
    lookup(&table, ip)
}

/// Looks `ip` up in the text of `/proc/net/arp`. Only complete entries are answers
/// (flag 0x2, `ATF_COM`, and a MAC that is not all zeroes): an incomplete one is the
/// kernel still asking, which says nothing about who is there.
fn lookup(table: &str, ip: Ipv4Addr) -> Option<Mac> {
    table.lines().skip(1).find_map(|l| {
        // IP address, HW type, Flags, HW address, Mask, Device
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 4 || f[0].parse::<Ipv4Addr>().ok() != Some(ip) {
            return None;
        }
        let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?;
        if flags & 0x2 == 0 {
            return None;
        }
        f[3].parse::<Mac>().ok().filter(|m| m.0 != [0; 6])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_entries_count_only_when_complete() {
        let t = "IP address       HW type     Flags       HW address            Mask     Device\n\
                 10.77.0.60       0x1         0x6         52:54:00:00:00:60     *        br0\n\
                 10.77.0.61       0x1         0x4         52:54:00:00:00:61     *        br0\n\
                 10.77.0.62       0x1         0x2         52:54:00:00:00:62     *        eth9\n";
        let at = |ip: &str| lookup(t, ip.parse().unwrap()).map(|m| m.to_string());
        assert_eq!(at("10.77.0.60").as_deref(), Some("52:54:00:00:00:60"));
        assert_eq!(at("10.77.0.61"), None, "permanent but not complete");
        assert_eq!(at("10.77.0.62").as_deref(), Some("52:54:00:00:00:62"));
    }

    #[test]
    fn arp_table_lookup() {
        let t = "IP address       HW type     Flags       HW address            Mask     Device\n\
                 10.77.0.50       0x1         0x2         52:54:00:12:34:56     *        br0\n\
                 10.77.0.51       0x1         0x0         00:00:00:00:00:00     *        br0\n\
                 10.77.0.53       0x1         0x0         52:54:00:12:34:57     *        br0\n";
        assert_eq!(
            lookup(t, "10.77.0.50".parse().unwrap())
                .unwrap()
                .to_string(),
            "52:54:00:12:34:56"
        );
        assert!(lookup(t, "10.77.0.51".parse().unwrap()).is_none());
        assert!(lookup(t, "10.77.0.52".parse().unwrap()).is_none());
        assert!(
            lookup(t, "10.77.0.53".parse().unwrap()).is_none(),
            "not complete"
        );
        assert!(lookup("garbage\n1 2\n", "10.77.0.50".parse().unwrap()).is_none());
        assert!(mac_of("127.0.0.1".parse().unwrap()).is_none());
    }
}
