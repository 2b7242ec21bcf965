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
        t.bound()
    };
    let data = leases::encode(data);
    if let Some(d) = path.parent() {
        // `.pxelab/` holds secrets too: 0700 whoever creates it first.
        let _ = crate::config::atomic::create_private_dir(d);
    }
    if let Err(e) = crate::config::atomic::write_private(path, &data) {
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
            // fsync can take seconds on a busy disk: never on a runtime worker.
            let (t, p) = (t2.clone(), p2.clone());
            let _ = tokio::task::spawn_blocking(move || flush(&t, &p)).await;
        }
        let _ = tokio::task::spawn_blocking(move || flush(&t2, &p2)).await;
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
    // The last save of the lease table: a lease lost here would be handed out twice.
    if tokio::time::timeout(Duration::from_secs(10), housekeeping)
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
mod tests {
    use super::super::request::{parse, tests::build};
    use super::*;

    fn lab() -> Lab {
        Lab::parse(
            std::path::Path::new("/tmp/lab.yaml"),
            "name: t\nserver_address: 10.0.0.1\nboot: {kernel: k}\n\
             dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.102], lease_time: 1h, router: 10.0.0.1}\n\
             nodes:\n  - {mac: '02:00:00:00:00:0a', hostname: node-a, role: k3s-agent, ip: 10.0.0.10}\n",
        )
        .unwrap()
    }

    fn req(mac: u8, msg: u8, opts: &[(u8, &[u8])], ciaddr: [u8; 4]) -> Request {
        let mut o: Vec<(u8, &[u8])> = vec![(53, std::slice::from_ref(&msg))];
        o.extend_from_slice(opts);
        let mut b = build([2, 0, 0, 0, 0, mac], &o);
        b[12..16].copy_from_slice(&ciaddr);
        parse(&b).unwrap()
    }

    fn hold(_: Mac) -> BootDecision {
        BootDecision::Hold
    }

    fn reply(o: &Outcome) -> &super::super::decide::Reply {
        match &o.verdict {
            Verdict::Reply(r) => r,
            v => panic!("expected a reply, got {v:?}"),
        }
    }

    const Z: [u8; 4] = [0; 4];
    const SID: &[u8] = &[10, 0, 0, 1];

    #[test]
    fn settings_and_durations() {
        let s = Settings::from_lab(&lab()).unwrap();
        assert_eq!(s.mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(s.lease_secs, 3600);
        assert_eq!(parse_duration("12h"), Some(43_200));
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("h"), None);
    }

    #[test]
    fn dora_reservation_and_pool() {
        let (s, l) = (Settings::from_lab(&lab()).unwrap(), lab());
        let mut t = Leases::default();
        // Reserved node.
        let o = decide(&s, &l, &mut t, &req(0x0a, 1, &[], Z), 1000, hold);
        assert_eq!(reply(&o).yiaddr, Some(Ipv4Addr::new(10, 0, 0, 10)));
        // Dynamic: lowest free, then the next.
        let a = decide(&s, &l, &mut t, &req(1, 1, &[], Z), 1000, hold);
        assert_eq!(reply(&a).yiaddr, Some(Ipv4Addr::new(10, 0, 0, 100)));
        let b = decide(&s, &l, &mut t, &req(2, 1, &[], Z), 1000, hold);
        assert_eq!(reply(&b).yiaddr, Some(Ipv4Addr::new(10, 0, 0, 101)));
        // REQUEST (selecting) → ACK and a bound lease.
        let ack = decide(
            &s,
            &l,
            &mut t,
            &req(1, 3, &[(54, SID), (50, &[10, 0, 0, 100])], Z),
            1001,
            hold,
        );
        assert_eq!(reply(&ack).msg, "ack");
        assert!(t.of_mac(&Mac([2, 0, 0, 0, 0, 1])).unwrap().bound);
        // Someone else asking for a held address: NAK.
        let nak = decide(
            &s,
            &l,
            &mut t,
            &req(3, 3, &[(50, &[10, 0, 0, 100])], Z),
            1002,
            hold,
        );
        assert_eq!(reply(&nak).msg, "nak");
        // Wrong subnet: NAK. Reservation holder asking for another address: NAK.
        let nak = decide(
            &s,
            &l,
            &mut t,
            &req(3, 3, &[(50, &[192, 168, 1, 5])], Z),
            1002,
            hold,
        );
        assert_eq!(reply(&nak).msg, "nak");
        let nak = decide(
            &s,
            &l,
            &mut t,
            &req(0x0a, 3, &[(50, &[10, 0, 0, 102])], Z),
            1002,
            hold,
        );
        assert_eq!(reply(&nak).msg, "nak");
        // Renew (ciaddr) → ACK + renew event.
        let renew = decide(&s, &l, &mut t, &req(1, 3, &[], [10, 0, 0, 100]), 2000, hold);
        assert_eq!(reply(&renew).msg, "ack");
        assert_eq!(
            renew.lease_event,
            Some(("renew", Ipv4Addr::new(10, 0, 0, 100)))
        );
        // REQUEST for another server: silence, offer forgotten.
        let other = decide(
            &s,
            &l,
            &mut t,
            &req(2, 3, &[(54, &[10, 0, 0, 9]), (50, &[10, 0, 0, 101])], Z),
            2000,
            hold,
        );
        assert_eq!(other.verdict, Verdict::Pass);
        assert!(t.of_mac(&Mac([2, 0, 0, 0, 0, 2])).is_none());
        // Pool exhaustion: 100 bound to 1, 101 and 102 offered, the fourth gets nothing.
        decide(&s, &l, &mut t, &req(4, 1, &[], Z), 2000, hold);
        decide(&s, &l, &mut t, &req(5, 1, &[], Z), 2000, hold);
        let none = decide(&s, &l, &mut t, &req(6, 1, &[], Z), 2000, hold);
        assert!(matches!(none.verdict, Verdict::Drop(_)));
        // Offers expire: after OFFER_SECS the address is free again.
        let later = decide(
            &s,
            &l,
            &mut t,
            &req(6, 1, &[], Z),
            2000 + leases::OFFER_SECS + 1,
            hold,
        );
        assert!(matches!(later.verdict, Verdict::Reply(_)));
    }

    #[test]
    fn release_decline_inform_and_policy() {
        let (s, l) = (Settings::from_lab(&lab()).unwrap(), lab());
        let mut t = Leases::default();
        decide(
            &s,
            &l,
            &mut t,
            &req(1, 3, &[(50, &[10, 0, 0, 100])], Z),
            10,
            hold,
        );
        let rel = decide(&s, &l, &mut t, &req(1, 7, &[], [10, 0, 0, 100]), 11, hold);
        assert_eq!(rel.verdict, Verdict::Pass);
        assert_eq!(
            rel.lease_event,
            Some(("release", Ipv4Addr::new(10, 0, 0, 100)))
        );
        assert!(t.of_mac(&Mac([2, 0, 0, 0, 0, 1])).is_none());
        let dec = decide(
            &s,
            &l,
            &mut t,
            &req(2, 4, &[(50, &[10, 0, 0, 100])], Z),
            12,
            hold,
        );
        assert_eq!(
            dec.lease_event,
            Some(("decline", Ipv4Addr::new(10, 0, 0, 100)))
        );
        let o = decide(&s, &l, &mut t, &req(3, 1, &[], Z), 13, hold);
        assert_eq!(
            reply(&o).yiaddr,
            Some(Ipv4Addr::new(10, 0, 0, 101)),
            "declined address reused"
        );
        let inf = decide(&s, &l, &mut t, &req(3, 8, &[], [10, 0, 0, 77]), 14, hold);
        assert_eq!(reply(&inf).msg, "ack");
        assert_eq!(reply(&inf).yiaddr, None);
        // iPXE client: script URL; ignore policy: silence for boot clients only.
        let ipxe = decide(&s, &l, &mut t, &req(7, 1, &[(77, b"iPXE")], Z), 15, hold);
        assert!(reply(&ipxe)
            .boot_file
            .as_deref()
            .unwrap()
            .contains("boot.ipxe?mac=02:00:00:00:00:07"));
        let pxe = req(8, 1, &[(60, b"PXEClient:Arch:00000:UNDI:002001")], Z);
        assert!(matches!(
            decide(&s, &l, &mut t, &pxe, 16, |_| BootDecision::Ignore).verdict,
            Verdict::Drop(_)
        ));
        let plain = req(9, 1, &[], Z);
        assert!(matches!(
            decide(&s, &l, &mut t, &plain, 100, |_| BootDecision::Ignore).verdict,
            Verdict::Reply(_)
        ));
    }
}
