//! One step per message kind (DISCOVER, REQUEST, RELEASE, DECLINE, INFORM): each runs
//! the policy and address steps in the order its kind needs and updates the lease table.
//! The order matters where the policy has a side effect (it may mark a MAC held): a
//! REQUEST that gets a NAK never reaches the policy.

use std::net::Ipv4Addr;

use super::address;
use super::outcome::{Grant, Ignored, Outcome, Passed};
use super::policy::boot_info;
use crate::config::Lab;
use crate::dhcp::leases::{self, Lease, Leases};
use crate::dhcp::request::Request;
use crate::dhcp::settings::Settings;
use crate::engine::BootDecision;
use crate::mac::Mac;

/// What every step reads: the settings, the lab, the request and the clock.
pub struct Ctx<'a> {
    /// Server-mode settings.
    pub s: &'a Settings,
    /// The lab (nodes: reservations and hostnames).
    pub lab: &'a Lab,
    /// The request.
    pub req: &'a Request,
    /// Seconds since the epoch.
    pub now: u64,
}

/// DISCOVER: policy, then an address, held for the client until it REQUESTs it.
pub fn discover(c: &Ctx, t: &mut Leases, policy: impl FnOnce(Mac) -> BootDecision) -> Outcome {
    let mac = c.req.mac;
    let boot = match boot_info(c.lab, c.req, policy) {
        Ok(b) => b,
        Err(e) => return Outcome::Ignore(e),
    };
    let Some(ip) = address::choose(c.s, c.lab, t, c.req, c.now) else {
        return Outcome::Ignore(Ignored::PoolExhausted(mac));
    };
    // Keep a bound lease as it is; otherwise hold the address for the offer.
    let bound_here = t
        .of_mac(&mac)
        .is_some_and(|l| l.bound && l.ip == ip && l.expires > c.now);
    if !bound_here {
        t.insert(Lease {
            mac,
            ip,
            expires: c.now + leases::OFFER_SECS,
            bound: false,
            hostname: None,
        });
    }
    Outcome::Offer(Grant { ip, boot })
}

/// REQUEST: selecting (option 54 and 50), init-reboot (50 alone), renewing or rebinding
/// (ciaddr alone). The address must be one the client may have, else NAK.
pub fn request(c: &Ctx, t: &mut Leases, policy: impl FnOnce(Mac) -> BootDecision) -> Outcome {
    let (req, mac) = (c.req, c.req.mac);
    if let Some(sid) = req.server_id().filter(|sid| *sid != c.s.server) {
        // The client chose another server: forget our offer.
        if t.of_mac(&mac).is_some_and(|l| !l.bound) {
            t.remove(&mac);
        }
        return Outcome::Pass(Passed::OtherServer(sid));
    }
    let has_ciaddr = !req.ciaddr.is_unspecified();
    let renewing = req.requested_ip().is_none() && has_ciaddr;
    let Some(ip) = req.requested_ip().or(has_ciaddr.then_some(req.ciaddr)) else {
        return Outcome::Ignore(Ignored::RequestWithoutAddress(mac));
    };
    if let Some(why) = address::refusal(c.s, c.lab, t, &mac, ip, c.now) {
        return Outcome::Nak(why);
    }
    let boot = match boot_info(c.lab, req, policy) {
        Ok(b) => b,
        Err(e) => return Outcome::Ignore(e),
    };
    let was_bound = t.of_mac(&mac).is_some_and(|l| l.bound && l.ip == ip);
    t.insert(Lease {
        mac,
        ip,
        expires: leases::expiry(c.now, c.s.lease_secs),
        bound: true,
        hostname: c.lab.node_by_mac(&mac).map(|n| n.hostname.clone()),
    });
    let grant = Grant { ip, boot };
    if renewing || was_bound {
        Outcome::Renew(grant)
    } else {
        Outcome::Ack(grant)
    }
}

/// RELEASE: forget the client's lease if it is the one released.
pub fn release(c: &Ctx, t: &mut Leases) -> Outcome {
    let (mac, ip) = (c.req.mac, c.req.ciaddr);
    if t.of_mac(&mac).is_some_and(|l| l.ip == ip) {
        t.remove(&mac);
        Outcome::Released(ip)
    } else {
        Outcome::Pass(Passed::NotHeld)
    }
}

/// DECLINE: the client found its address in use; set it aside for a while.
pub fn decline(c: &Ctx, t: &mut Leases) -> Outcome {
    let mac = c.req.mac;
    let Some(ip) = c.req.requested_ip() else {
        return Outcome::Ignore(Ignored::DeclineWithoutAddress(mac));
    };
    if let Some(sid) = c.req.server_id().filter(|sid| *sid != c.s.server) {
        return Outcome::Pass(Passed::OtherServer(sid));
    }
    // RFC 2131 §4.3.3 (and Kea): only the client the address was given to may decline
    // it. Honoured from anyone, one spoofed packet knocked another client off its lease,
    // and a flood of them filled the declined set.
    if t.of_mac(&mac).is_none_or(|l| l.ip != ip) {
        return Outcome::Ignore(Ignored::DeclineNotHeld { mac, ip });
    }
    t.remove(&mac);
    t.decline(ip, c.now);
    Outcome::Declined(ip)
}

/// INFORM: a client configured elsewhere asks for options (and boot information); it is
/// answered even when the policy ignores it, without boot information then.
pub fn inform(c: &Ctx, policy: impl FnOnce(Mac) -> BootDecision) -> Outcome {
    let ciaddr: Ipv4Addr = c.req.ciaddr;
    if !c.s.in_subnet(ciaddr) {
        return Outcome::Ignore(Ignored::InformOutside {
            mac: c.req.mac,
            ciaddr,
        });
    }
    let boot = boot_info(c.lab, c.req, policy).ok().flatten();
    Outcome::Inform(Grant { ip: ciaddr, boot })
}
