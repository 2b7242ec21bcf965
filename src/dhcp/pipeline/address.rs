//! The address-choice step: who may have which address, and which one a client gets.
//! Reservations (a lab node's `ip:`) win over everything; the dynamic range is shared
//! first-come, with offers held briefly and declined addresses set aside.

use std::net::Ipv4Addr;

use super::outcome::Refused;
use crate::config::Lab;
use crate::dhcp::leases::Leases;
use crate::dhcp::request::Request;
use crate::dhcp::settings::Settings;
use crate::mac::Mac;

/// The address reserved for `mac` by a lab node, if any.
pub fn reservation(lab: &Lab, mac: &Mac) -> Option<Ipv4Addr> {
    lab.node_by_mac(mac).and_then(|n| n.ip)
}

/// Whether `ip` is reserved for a node other than `mac`.
fn reserved_for_other(lab: &Lab, ip: Ipv4Addr, mac: &Mac) -> bool {
    lab.file
        .nodes
        .iter()
        .any(|n| n.ip == Some(ip) && n.mac != *mac)
}

/// Why `mac` may not have `ip` now, or `None` when it may.
pub fn refusal(
    s: &Settings,
    lab: &Lab,
    t: &Leases,
    mac: &Mac,
    ip: Ipv4Addr,
    now: u64,
) -> Option<Refused> {
    if !s.in_subnet(ip) {
        return Some(Refused::OutsideSubnet(ip));
    }
    if ip == s.server {
        return Some(Refused::ServerAddress(ip));
    }
    if let Some(reserved) = reservation(lab, mac) {
        return (reserved != ip).then_some(Refused::NotItsReservation { ip, reserved });
    }
    if !s.in_range(ip) {
        return Some(Refused::OutsideRange(ip));
    }
    if reserved_for_other(lab, ip, mac) {
        return Some(Refused::ReservedForOther(ip));
    }
    if let Some(holder) = t.holder(ip, now).filter(|h| h != mac) {
        return Some(Refused::HeldByOther { ip, holder });
    }
    t.declined(ip, now).then_some(Refused::Declined(ip))
}

/// Chooses an address for the client of `req`: its reservation, its previous lease, the
/// one it asks for, then the next free one in the range. `None`: the range is full.
pub fn choose(s: &Settings, lab: &Lab, t: &Leases, req: &Request, now: u64) -> Option<Ipv4Addr> {
    let mac = &req.mac;
    let free = |ip: &Ipv4Addr| refusal(s, lab, t, mac, *ip, now).is_none();
    if let Some(r) = reservation(lab, mac) {
        return s.in_subnet(r).then_some(r);
    }
    let candidates = [t.of_mac(mac).map(|l| l.ip), req.requested_ip()];
    if let Some(ip) = candidates.into_iter().flatten().find(free) {
        return Some(ip);
    }
    // Scan the range from just past the last address handed out, wrapping once, so a
    // busy range does not rescan its taken head on every DISCOVER.
    let (a, b) = (u32::from(s.range.0), u32::from(s.range.1));
    let start = t
        .hint()
        .map(u32::from)
        .filter(|h| (a..=b).contains(h))
        .unwrap_or(a);
    (start..=b).chain(a..start).map(Ipv4Addr::from).find(free)
}
