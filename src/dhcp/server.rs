//! Full DHCP server mode: authoritative for `dhcp.subnet`, lab nodes' `ip` as
//! reservations, a dynamic `dhcp.range`, boot information for PXE and iPXE clients.
//!
//! [`decide`] is pure over the lease table and a clock; [`run`] wires it to a socket and
//! to the lease writer ([`super::writer`]), which puts every lease on disk before its ACK
//! goes out.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use dhcproto::v4::MessageType;
use tokio_util::sync::CancellationToken;

use super::boot;
use super::decide::{encode, Verdict};
use super::leases::{self, Lease, Leases};
use super::listen::{self, Decision, Listener, PortRole};
use super::net;
use super::reply::{self, Plan};
use super::request::{MsgType, Request};
use super::settings::{now, Settings};
use super::writer::{self, LeaseWriter};
use crate::config::Lab;
use crate::engine::{BootDecision, Engine, EventKind, Source};
use crate::mac::Mac;

/// The outcome of one request: the verdict and a lease event to report, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Reply, drop or pass.
    pub verdict: Verdict,
    /// (`release`/`decline`/`renew`, address).
    pub lease_event: Option<(&'static str, Ipv4Addr)>,
    /// The reply is an ACK that bound a lease: it may go out only once the lease is on
    /// disk (a pxelab killed right after would otherwise give the address again).
    pub bound: bool,
}

fn pass(v: Verdict) -> Outcome {
    Outcome {
        verdict: v,
        lease_event: None,
        bound: false,
    }
}

/// The address reserved for `mac` by a lab node, if any.
fn reservation(lab: &Lab, mac: &Mac) -> Option<Ipv4Addr> {
    lab.node_by_mac(mac).and_then(|n| n.ip)
}

/// Whether `ip` is reserved for a node other than `mac`.
fn reserved_for_other(lab: &Lab, ip: Ipv4Addr, mac: &Mac) -> bool {
    lab.file
        .nodes
        .iter()
        .any(|n| n.ip == Some(ip) && n.mac != *mac)
}

/// Whether `mac` may have `ip` now.
fn may_have(s: &Settings, lab: &Lab, t: &Leases, mac: &Mac, ip: Ipv4Addr, now: u64) -> bool {
    if !s.in_subnet(ip) || ip == s.server {
        return false;
    }
    if let Some(r) = reservation(lab, mac) {
        return r == ip;
    }
    s.in_range(ip)
        && !reserved_for_other(lab, ip, mac)
        && t.holder(ip, now).is_none_or(|h| h == *mac)
        && !t.declined(ip, now)
}

/// Chooses an address for `mac`: reservation, its previous lease, the one it asks for,
/// then the lowest free one in the range.
fn choose(s: &Settings, lab: &Lab, t: &Leases, req: &Request, now: u64) -> Option<Ipv4Addr> {
    let mac = &req.mac;
    if let Some(r) = reservation(lab, mac) {
        return s.in_subnet(r).then_some(r);
    }
    let candidates = [t.of_mac(mac).map(|l| l.ip), req.requested_ip()];
    if let Some(ip) = candidates
        .into_iter()
        .flatten()
        .find(|ip| may_have(s, lab, t, mac, *ip, now))
    {
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
    (start..=b)
        .chain(a..start)
        .map(Ipv4Addr::from)
        .find(|ip| may_have(s, lab, t, mac, *ip, now))
}

/// Boot information for a client that asks for it, per the engine's policy. `Err` means
/// the policy says to stay silent.
fn boot_info(
    lab: &Lab,
    req: &Request,
    policy: impl FnOnce(Mac) -> BootDecision,
) -> Result<Option<boot::BootTarget>, ()> {
    if !(req.is_pxe_client() || req.is_http_client() || req.is_ipxe()) {
        return Ok(None);
    }
    if policy(req.mac) == BootDecision::Ignore {
        return Err(());
    }
    Ok(boot::select(lab, req).ok())
}

fn plan(
    s: &Settings,
    lab: &Lab,
    req: &Request,
    msg: MessageType,
    ip: Ipv4Addr,
    boot: Option<boot::BootTarget>,
    inform: bool,
) -> Plan {
    let no_pxedhcp = boot.as_ref().is_some_and(|b| b.ipxe);
    Plan {
        msg,
        lease: Some(reply::Lease {
            yiaddr: ip,
            mask: s.mask(),
            lease_secs: s.lease_secs,
            router: s.router,
            dns: s.dns.clone(),
            domain: s.domain.clone(),
            hostname: lab.node_by_mac(&req.mac).map(|n| n.hostname.clone()),
        }),
        boot,
        no_pxedhcp,
        inform,
    }
}

fn nak(s: &Settings, req: &Request) -> Outcome {
    pass(encode(
        req,
        s.server,
        &Plan {
            msg: MessageType::Nak,
            boot: None,
            lease: None,
            no_pxedhcp: false,
            inform: false,
        },
    ))
}

/// The server's answer to one request.
pub fn decide(
    s: &Settings,
    lab: &Lab,
    t: &mut Leases,
    req: &Request,
    now: u64,
    policy: impl FnOnce(Mac) -> BootDecision,
) -> Outcome {
    if let Some(g) = req.relay() {
        if !s.in_subnet(g) {
            return pass(Verdict::Drop(format!("relay {g} is outside {}", s.subnet)));
        }
    }
    match req.msg {
        MsgType::Discover => {
            let Ok(boot) = boot_info(lab, req, policy) else {
                return pass(Verdict::Drop(format!(
                    "{}: unknown MAC, policy is ignore",
                    req.mac
                )));
            };
            let Some(ip) = choose(s, lab, t, req, now) else {
                return pass(Verdict::Drop(format!(
                    "{}: no free address in the range",
                    req.mac
                )));
            };
            // Keep a bound lease as it is; otherwise hold the address for the offer.
            let bound_here = t
                .of_mac(&req.mac)
                .is_some_and(|l| l.bound && l.ip == ip && l.expires > now);
            if !bound_here {
                t.insert(Lease {
                    mac: req.mac,
                    ip,
                    expires: now + leases::OFFER_SECS,
                    bound: false,
                    hostname: None,
                });
            }
            pass(encode(
                req,
                s.server,
                &plan(s, lab, req, MessageType::Offer, ip, boot, false),
            ))
        }
        MsgType::Request => {
            if let Some(sid) = req.server_id() {
                if sid != s.server {
                    // The client chose another server: forget our offer.
                    if t.of_mac(&req.mac).is_some_and(|l| !l.bound) {
                        t.remove(&req.mac);
                    }
                    return pass(Verdict::Pass);
                }
            }
            let renewing = req.requested_ip().is_none() && !req.ciaddr.is_unspecified();
            let Some(ip) = req
                .requested_ip()
                .or((!req.ciaddr.is_unspecified()).then_some(req.ciaddr))
            else {
                return pass(Verdict::Drop(format!(
                    "{}: REQUEST without an address",
                    req.mac
                )));
            };
            if !may_have(s, lab, t, &req.mac, ip, now) {
                return nak(s, req);
            }
            let Ok(boot) = boot_info(lab, req, policy) else {
                return pass(Verdict::Drop(format!(
                    "{}: unknown MAC, policy is ignore",
                    req.mac
                )));
            };
            let was_bound = t.of_mac(&req.mac).is_some_and(|l| l.bound && l.ip == ip);
            t.insert(Lease {
                mac: req.mac,
                ip,
                expires: now + u64::from(s.lease_secs),
                bound: true,
                hostname: lab.node_by_mac(&req.mac).map(|n| n.hostname.clone()),
            });
            Outcome {
                verdict: encode(
                    req,
                    s.server,
                    &plan(s, lab, req, MessageType::Ack, ip, boot, false),
                ),
                lease_event: (renewing || was_bound).then_some(("renew", ip)),
                bound: true,
            }
        }
        MsgType::Release => {
            let held = t.of_mac(&req.mac).is_some_and(|l| l.ip == req.ciaddr);
            if held {
                t.remove(&req.mac);
            }
            Outcome {
                verdict: Verdict::Pass,
                lease_event: held.then_some(("release", req.ciaddr)),
                bound: false,
            }
        }
        MsgType::Decline => {
            let Some(ip) = req.requested_ip() else {
                return pass(Verdict::Drop(format!(
                    "{}: DECLINE without an address",
                    req.mac
                )));
            };
            if req.server_id().is_some_and(|sid| sid != s.server) {
                return pass(Verdict::Pass);
            }
            // RFC 2131 §4.3.3 (and Kea): only the client the address was given to may
            // decline it. Honoured from anyone, one spoofed packet knocked another
            // client off its lease, and a flood of them filled the declined set.
            if t.of_mac(&req.mac).is_none_or(|l| l.ip != ip) {
                return pass(Verdict::Drop(format!(
                    "{}: DECLINE of {ip}, which is not its lease",
                    req.mac
                )));
            }
            t.remove(&req.mac);
            t.decline(ip, now);
            Outcome {
                verdict: Verdict::Pass,
                lease_event: Some(("decline", ip)),
                bound: false,
            }
        }
        MsgType::Inform => {
            if !s.in_subnet(req.ciaddr) {
                return pass(Verdict::Drop(format!(
                    "{}: INFORM from {} outside the subnet",
                    req.mac, req.ciaddr
                )));
            }
            let boot = boot_info(lab, req, policy).ok().flatten();
            pass(encode(
                req,
                s.server,
                &plan(s, lab, req, MessageType::Ack, req.ciaddr, boot, true),
            ))
        }
    }
}

/// Runs server mode until `cancel` fires.
pub async fn run(
    engine: Engine,
    settings: Settings,
    ip: Ipv4Addr,
    role: PortRole,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let lab = engine.lab();
    let settings = Arc::new(settings);
    let path = writer::leases_path(&lab);
    let table = Arc::new(Mutex::new(Leases::load(&path)?));
    let iface = settings.listen.interface.clone();
    let sock = net::bind_tokio(
        SocketAddrV4::new(ip, settings.listen.port),
        iface.as_deref(),
    )?;
    engine.emit(
        None,
        EventKind::ServerUp {
            source: Source::Dhcp,
            addr: format!(
                "DHCP server udp {} for {} (range {}-{}, leases {})",
                sock.local_addr()?,
                settings.subnet,
                settings.range.0,
                settings.range.1,
                path.display()
            ),
        },
    );
    // The writer outlives the listener by its last save: it stops on its own token.
    let writer_stop = CancellationToken::new();
    let (lease_writer, writer_task) = LeaseWriter::start(
        engine.clone(),
        table.clone(),
        path.clone(),
        writer_stop.clone(),
    );
    let observe: listen::Observe = Arc::new(|_: &Engine, req: &Request, _: &PortRole| {
        matches!(
            req.msg,
            MsgType::Discover | MsgType::Request | MsgType::Inform
        )
    });
    let (s2, t3) = (settings.clone(), table.clone());
    let decide_fn: listen::Decide =
        Arc::new(move |engine: &Engine, req: &Request, _: &PortRole| {
            let lab = engine.lab();
            let out = {
                let mut t = crate::engine::lock(&t3);
                decide(&s2, &lab, &mut t, req, now(), |m| engine.decide(m))
            };
            if let Some((action, ip)) = out.lease_event {
                engine.emit(
                    Some(req.mac),
                    EventKind::DhcpLease {
                        action: action.into(),
                        ip,
                    },
                );
            }
            // An ACK that binds a lease waits until the lease is on disk.
            let after = out.bound.then(|| lease_writer.commit());
            Decision {
                verdict: out.verdict,
                after,
            }
        });
    let r = listen::run(
        engine.clone(),
        Listener::Udp(sock),
        role,
        observe,
        decide_fn,
        Arc::new(super::drops::Drops::default()),
        cancel,
    )
    .await;
    // The last save of the lease table: a lease lost here would be handed out twice.
    writer_stop.cancel();
    if tokio::time::timeout(std::time::Duration::from_secs(10), writer_task)
        .await
        .is_err()
    {
        tracing::warn!(
            "the lease file {} was not saved at shutdown within 10 s",
            path.display()
        );
    }
    r
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
