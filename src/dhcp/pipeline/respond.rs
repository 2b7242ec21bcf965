//! The reply step, last in the pipeline: a typed [`Outcome`] becomes the bytes to send
//! and the lease event to report, with the same words events carried before the
//! pipeline (`offer`/`ack`/`nak` replies; `renew`/`release`/`decline` lease actions).

use std::net::Ipv4Addr;

use dhcproto::v4::MessageType;

use super::outcome::{Grant, Outcome};
use crate::config::Lab;
use crate::dhcp::decide::{encode, Verdict};
use crate::dhcp::reply::{self, Plan};
use crate::dhcp::request::Request;
use crate::dhcp::settings::Settings;

/// What the socket loop does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// Reply, drop or pass.
    pub verdict: Verdict,
    /// (`release`/`decline`/`renew`, address).
    pub lease_event: Option<(&'static str, Ipv4Addr)>,
    /// The reply is an ACK that bound a lease: it may go out only once the lease is on
    /// disk (a pxelab killed right after would otherwise give the address again).
    pub bound: bool,
}

fn plan(s: &Settings, lab: &Lab, req: &Request, msg: MessageType, g: Grant, inform: bool) -> Plan {
    let no_pxedhcp = g.boot.as_ref().is_some_and(|b| b.ipxe);
    Plan {
        msg,
        lease: Some(reply::Lease {
            yiaddr: g.ip,
            mask: s.mask(),
            lease_secs: s.lease_secs,
            router: s.router,
            dns: s.dns.clone(),
            domain: s.domain.clone(),
            hostname: lab.node_by_mac(&req.mac).map(|n| n.hostname.clone()),
        }),
        boot: g.boot,
        no_pxedhcp,
        inform,
    }
}

/// Encodes `outcome` for `req` and names its lease event.
pub fn respond(s: &Settings, lab: &Lab, req: &Request, outcome: Outcome) -> Handled {
    let answer = |msg, g, inform| encode(req, s.server, &plan(s, lab, req, msg, g, inform));
    let (verdict, lease_event, bound) = match outcome {
        Outcome::Offer(g) => (answer(MessageType::Offer, g, false), None, false),
        Outcome::Ack(g) => (answer(MessageType::Ack, g, false), None, true),
        Outcome::Renew(g) => {
            let ip = g.ip;
            (
                answer(MessageType::Ack, g, false),
                Some(("renew", ip)),
                true,
            )
        }
        Outcome::Inform(g) => (answer(MessageType::Ack, g, true), None, false),
        Outcome::Nak(why) => {
            tracing::debug!("DHCP NAK to {}: {why}", req.mac);
            let nak = Plan {
                msg: MessageType::Nak,
                boot: None,
                lease: None,
                no_pxedhcp: false,
                inform: false,
            };
            (encode(req, s.server, &nak), None, false)
        }
        Outcome::Released(ip) => (Verdict::Pass, Some(("release", ip)), false),
        Outcome::Declined(ip) => (Verdict::Pass, Some(("decline", ip)), false),
        Outcome::Pass(_) => (Verdict::Pass, None, false),
        Outcome::Ignore(why) => (Verdict::Drop(why.to_string()), None, false),
    };
    Handled {
        verdict,
        lease_event,
        bound,
    }
}
