//! Full DHCP server mode: authoritative for `dhcp.subnet`, lab nodes' `ip` as
//! reservations, a dynamic `dhcp.range`, boot information for PXE and iPXE clients.
//!
//! [`decide`] is pure over the lease table and a clock; [`run`] wires it to a socket,
//! flushes the lease file and reports expiries.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhcproto::v4::MessageType;
use tokio_util::sync::CancellationToken;

use super::boot;
use super::decide::{encode, Verdict};
use super::leases::{self, Lease, Leases};
use super::listen::{self, Listener, PortRole};
use super::net;
use super::reply::{self, Plan};
use super::request::{MsgType, Request};
use crate::config::Lab;
use crate::engine::{BootDecision, Engine, EventKind, Source};
use crate::mac::Mac;

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

    fn in_range(&self, ip: Ipv4Addr) -> bool {
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

/// The outcome of one request: the verdict and a lease event to report, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Reply, drop or pass.
    pub verdict: Verdict,
    /// (`release`/`decline`/`renew`, address).
    pub lease_event: Option<(&'static str, Ipv4Addr)>,
}

fn pass(v: Verdict) -> Outcome {
    Outcome {
        verdict: v,
        lease_event: None,
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
    let (a, b) = (u32::from(s.range.0), u32::from(s.range.1));
    (a..=b)
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
    let d = &lab.file.dhcp;
    let no_pxedhcp = boot.as_ref().is_some_and(|b| b.ipxe);
    Plan {
        msg,
        lease: Some(reply::Lease {
            yiaddr: ip,
            mask: s.mask(),
            lease_secs: s.lease_secs,
            router: d.router,
            dns: d.dns.clone(),
            domain: d.domain.clone(),
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
            return pass(Verdict::Drop(format!(
                "relay {g} is outside {}/{}",
                s.network, s.prefix
            )));
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
            }
        }
        MsgType::Decline => {
            let Some(ip) = req.requested_ip() else {
                return pass(Verdict::Drop(format!(
                    "{}: DECLINE without an address",
                    req.mac
                )));
            };
            if t.of_mac(&req.mac).is_some_and(|l| l.ip == ip) {
                t.remove(&req.mac);
            }
            t.decline(ip, now);
            Outcome {
                verdict: Verdict::Pass,
                lease_event: Some(("decline", ip)),
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

/// Where the lease file lives.
pub fn leases_path(lab: &Lab) -> std::path::PathBuf {
    match &lab.file.dhcp.leases_file {
        Some(p) => lab.resolve(p),
        None => lab.state_dir().join("leases.json"),
    }
}

fn flush(table: &Mutex<Leases>, path: &std::path::Path) {
    let data = {
        let mut t = crate::engine::lock(table);
        if !t.take_dirty() {
            return;
        }
        t.to_json()
    };
    if let Some(d) = path.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    if let Err(e) = crate::config::atomic::write_atomic(path, &data) {
        tracing::warn!("cannot write leases to {}: {e}", path.display());
        // Try again next round.
        crate::engine::lock(table).mark_dirty();
    }
}

/// Runs server mode until `cancel` fires.
pub async fn run(
    engine: Engine,
    ip: Ipv4Addr,
    role: PortRole,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let lab = engine.lab();
    let settings = Arc::new(Settings::from_lab(&lab)?);
    let path = leases_path(&lab);
    let table = Arc::new(Mutex::new(Leases::load(&path)?));
    let iface = lab.file.interface.clone();
    let sock = net::bind_tokio(SocketAddrV4::new(ip, lab.file.dhcp.port), iface.as_deref())?;
    engine.emit(
        None,
        EventKind::ServerUp {
            source: Source::Dhcp,
            addr: format!(
                "DHCP server udp {} for {}/{} (range {}-{}, leases {})",
                sock.local_addr()?,
                settings.network,
                settings.prefix,
                settings.range.0,
                settings.range.1,
                path.display()
            ),
        },
    );
    // Flusher and expiry sweep.
    let (e2, t2, p2, c2) = (engine.clone(), table.clone(), path.clone(), cancel.clone());
    let housekeeping = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut n = 0u32;
        loop {
            tokio::select! {
                _ = c2.cancelled() => break,
                _ = tick.tick() => {}
            }
            n += 1;
            if n.is_multiple_of(10) {
                let expired = crate::engine::lock(&t2).expire(now());
                for l in expired {
                    e2.emit(
                        Some(l.mac),
                        EventKind::DhcpLease {
                            action: "expire".into(),
                            ip: l.ip,
                        },
                    );
                }
            }
            flush(&t2, &p2);
        }
        flush(&t2, &p2);
    });
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
            out.verdict
        });
    let r = listen::run(
        engine.clone(),
        Listener::Udp(sock),
        role,
        observe,
        decide_fn,
        cancel,
    )
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), housekeeping).await;
    r
}
