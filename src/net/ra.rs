//! The IPv6 Router Advertisement sender: ends iPXE's ~16 s wait for IPv6 on a segment
//! where pxelab is the only server.
//!
//! The problem: Debian's iPXE (and QEMU's iPXE ROM) keeps "Configuring (net0 …)" until
//! IPv6 autoconfiguration times out when no router answers its Router Solicitations, so
//! every boot loses ~16 s after the DHCP ACK. iPXE ends that wait at the first Router
//! Advertisement it receives while its solicitation timer runs, provided M = O = 0 (see
//! [`super::ndp`] for every field of the message and why).
//!
//! How:
//! - one raw `AF_INET6/SOCK_RAW/IPPROTO_ICMPV6` socket bound to the interface
//!   (SO_BINDTODEVICE) and joined to `ff02::2` there, so the Router Solicitations of hosts
//!   reach it (a host that does not forward is not in all-routers otherwise); it also
//!   hears other routers' advertisements to `ff02::1`. The kernel computes the ICMPv6
//!   checksum. tokio drives it through its UDP type (`recv_from`/`send_to` are the same
//!   system calls on a raw socket), which avoids `unsafe`.
//! - advertisements leave through a second raw socket bound to the interface's
//!   link-local address (RFC 4861: an RA comes from a link-local address, hop limit 255;
//!   a host drops anything else). Its filter drops everything it would receive. While the
//!   interface has no usable link-local address (duplicate address detection running, no
//!   carrier yet) opening or sending fails: retried at the next send, reported once.
//! - multicast loop is off: the workstation's own kernel never sees pxelab's RAs (it
//!   takes no address from them). It is switched on only for the one Router Solicitation
//!   sent at start, so that a router on this same host (dnsmasq on the bridge) hears it.
//! - three advertisements at start one second apart, then one every 10 s; each
//!   solicitation is answered at once (to `ff02::1`, which serves every host soliciting
//!   at that moment), at most one answer per 300 ms in total.
//! - another router: under [`RaPolicy::Auto`] pxelab first solicits and listens 1.5 s; an
//!   advertisement that is not pxelab's own (told apart by content, since a router on
//!   the same host sends from the same address) means the segment has a router: pxelab
//!   sends nothing and keeps listening; if one appears later, pxelab stops (for good:
//!   a router that comes and goes should own RAs; restart pxelab to take over). Under
//!   [`RaPolicy::Always`] pxelab sends from the start, solicits all the same, and reports
//!   another router but keeps sending. The solicitation waits (up to 5 s more) for a
//!   usable link-local address: a bridge just created is still checking it for ~1 s.

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ndp::{self, Nd, RaInfo, ALL_NODES, ALL_ROUTERS, ND_HOP_LIMIT};

/// Whether another router on the segment silences pxelab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaPolicy {
    /// Send only while no other router advertises (probed for at start).
    Auto,
    /// Send whatever other routers do.
    Always,
}

/// The pace of the sender (tests shorten it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long to listen for another router before the first advertisement (Auto).
    pub probe: Duration,
    /// Advertisements sent at start, `initial_gap` apart.
    pub initial: u32,
    /// Gap between the initial advertisements.
    pub initial_gap: Duration,
    /// Gap between unsolicited advertisements after the initial ones.
    pub interval: Duration,
    /// Least time between two answers to solicitations.
    pub solicited_gap: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            probe: Duration::from_millis(1500),
            initial: 3,
            initial_gap: Duration::from_secs(1),
            interval: Duration::from_secs(10),
            solicited_gap: Duration::from_millis(300),
        }
    }
}

/// What to advertise where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaConfig {
    /// The interface (e.g. `br0`).
    pub interface: String,
    /// The /64 advertised (network address), e.g. from [`ndp::ula_prefix`].
    pub prefix: Ipv6Addr,
    /// Another router silences pxelab or not.
    pub policy: RaPolicy,
    /// The pace.
    pub timing: Timing,
}

/// What the sender tells its caller, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaReport {
    /// The socket is open: solicitations and other routers' advertisements are heard.
    Listening,
    /// Advertisements go out from now on.
    Sending {
        /// The /64 advertised.
        prefix: Ipv6Addr,
    },
    /// A router not seen before advertises on the segment; `sending` says whether
    /// pxelab sends anyway (Always) or not (Auto, not started yet).
    OtherRouter {
        /// Its (link-local) address.
        from: Ipv6Addr,
        /// What it advertises.
        info: RaInfo,
        /// Whether pxelab keeps sending.
        sending: bool,
    },
    /// pxelab was sending and stopped because this router advertises (Auto).
    Yielded {
        /// Its address.
        from: Ipv6Addr,
        /// What it advertises.
        info: RaInfo,
    },
    /// Sending failed (said once until it works again); retried at the next send.
    CannotSend {
        /// Why.
        error: String,
    },
    /// Sending works again after [`RaReport::CannotSend`].
    SendsAgain,
}

/// Why the sender could not run.
#[derive(Debug, thiserror::Error)]
pub enum RaError {
    /// Opening or setting up the raw socket failed.
    #[error("cannot {what} on {interface}: {source}")]
    Socket {
        /// What was being done.
        what: &'static str,
        /// The interface.
        interface: String,
        /// The system error.
        source: io::Error,
    },
}

/// How long the probe waits, beyond `Timing::probe`, for a link-local address to send its
/// solicitation from (a bridge just created runs duplicate address detection for ~1 s).
const LINK_LOCAL_PATIENCE: Duration = Duration::from_secs(5);
/// How often the probe's solicitation is retried meanwhile.
const LINK_LOCAL_RETRY: Duration = Duration::from_millis(200);

/// Other routers remembered (each reported once); more are not remembered.
const MAX_ROUTERS: usize = 16;

/// Runs the sender on `cfg.interface` until `cancel` fires, telling `report` what it
/// does. Fails only when the listening socket cannot be opened or read.
pub async fn run(
    cfg: RaConfig,
    cancel: CancellationToken,
    mut report: impl FnMut(RaReport) + Send,
) -> Result<(), RaError> {
    let iface = cfg.interface.as_str();
    let err = |what| {
        move |source| RaError::Socket {
            what,
            interface: iface.to_string(),
            source,
        }
    };
    let ifindex = ndp::interface_index(iface).map_err(err("find the index of"))?;
    let mac = ndp::interface_mac(iface);
    let rx = open_rx(iface, ifindex).map_err(err("open a raw ICMPv6 socket"))?;
    report(RaReport::Listening);

    let ours = ndp::router_advertisement(cfg.prefix, mac);
    let t = cfg.timing;
    let mut tx = Sender {
        interface: iface.to_string(),
        ifindex,
        socket: None,
        failing: false,
    };
    let mut others: Vec<Ipv6Addr> = Vec::new();
    let mut buf = vec![0u8; 2048];
    // The probe (both policies): one solicitation as soon as it can go out, then
    // `t.probe` of listening; `probe_end` is the next step of it.
    let solicitation = ndp::router_solicitation(mac);
    let mut solicited = false;
    let mut probe_end = Some(Instant::now());
    let give_up = Instant::now() + t.probe + LINK_LOCAL_PATIENCE;
    // Under Always, sending starts at once; under Auto, when the probe heard no router.
    let mut sending = cfg.policy == RaPolicy::Always;
    let mut next_unsolicited = sending.then(Instant::now);
    let mut initial_left = t.initial;
    let mut solicited_at: Option<Instant> = None;
    let mut last_solicited: Option<Instant> = None;
    if sending {
        report(RaReport::Sending { prefix: cfg.prefix });
    }
    loop {
        let now = Instant::now();
        let wake = [probe_end, next_unsolicited, solicited_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_secs(3600));
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                // The probe: one solicitation (retried quietly while the interface has
                // no usable link-local address yet), then `t.probe` of listening.
                if !solicited && probe_end.is_some_and(|e| e <= now) {
                    if tx.try_send(&solicitation, ALL_ROUTERS, true).await.is_ok() {
                        solicited = true;
                        probe_end = Some(now + t.probe);
                    } else if now < give_up {
                        probe_end = Some(now + LINK_LOCAL_RETRY);
                    } else {
                        solicited = true;
                    }
                }
                if solicited && probe_end.is_some_and(|e| e <= now) {
                    probe_end = None;
                    if !sending && others.is_empty() {
                        sending = true;
                        next_unsolicited = Some(now);
                        report(RaReport::Sending { prefix: cfg.prefix });
                    }
                }
                if sending && next_unsolicited.is_some_and(|n| n <= now) {
                    tx.send(&ours, ALL_NODES, false, &mut report).await;
                    initial_left = initial_left.saturating_sub(1);
                    let gap = if initial_left > 0 { t.initial_gap } else { t.interval };
                    next_unsolicited = Some(now + gap);
                }
                if sending && solicited_at.is_some_and(|s| s <= now) {
                    tx.send(&ours, ALL_NODES, false, &mut report).await;
                    solicited_at = None;
                    last_solicited = Some(now);
                }
            }
            r = rx.recv_from(&mut buf) => {
                let (n, from) = r.map_err(err("receive ICMPv6"))?;
                let SocketAddr::V6(from) = from else { continue };
                let msg = &buf[..n];
                match ndp::parse(msg) {
                    Some(Nd::Solicitation) if sending && solicited_at.is_none() => {
                        let now = Instant::now();
                        let earliest = last_solicited.map_or(now, |l| l + t.solicited_gap);
                        solicited_at = Some(earliest.max(now));
                    }
                    Some(Nd::Advertisement(info)) if !ndp::same_message(msg, &ours) => {
                        let from = *from.ip();
                        if others.contains(&from) || others.len() >= MAX_ROUTERS {
                            continue;
                        }
                        others.push(from);
                        match (cfg.policy, sending) {
                            (RaPolicy::Auto, true) => {
                                sending = false;
                                next_unsolicited = None;
                                solicited_at = None;
                                report(RaReport::Yielded { from, info });
                            }
                            _ => report(RaReport::OtherRouter { from, info, sending }),
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The sending side: a socket bound to the link-local address, opened when first needed
/// and again after a failure (the address may have changed or not exist yet).
struct Sender {
    interface: String,
    ifindex: u32,
    socket: Option<UdpSocket>,
    failing: bool,
}

impl Sender {
    /// Sends `msg` to `to` on the interface; a failure is reported once until a send
    /// works again. `loop_back` lets this host's own processes hear it.
    async fn send(
        &mut self,
        msg: &[u8],
        to: Ipv6Addr,
        loop_back: bool,
        report: &mut impl FnMut(RaReport),
    ) {
        match self.try_send(msg, to, loop_back).await {
            Ok(()) if self.failing => {
                self.failing = false;
                report(RaReport::SendsAgain);
            }
            Ok(()) => {}
            Err(e) => {
                self.socket = None;
                if !self.failing {
                    self.failing = true;
                    report(RaReport::CannotSend {
                        error: e.to_string(),
                    });
                }
            }
        }
    }

    async fn try_send(&mut self, msg: &[u8], to: Ipv6Addr, loop_back: bool) -> io::Result<()> {
        let s = match self.socket.take() {
            Some(s) => s,
            None => open_tx(&self.interface, self.ifindex)?,
        };
        let dest = SocketAddr::V6(SocketAddrV6::new(to, 0, 0, self.ifindex));
        if loop_back {
            s.set_multicast_loop_v6(true)?;
        }
        let sent = s.send_to(msg, dest).await;
        if loop_back {
            s.set_multicast_loop_v6(false)?;
        }
        sent?;
        self.socket = Some(s);
        Ok(())
    }
}

/// A raw ICMPv6 socket on `interface` set up for Neighbor Discovery.
fn raw_icmpv6(interface: &str) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    s.bind_device(Some(interface.as_bytes()))?;
    s.set_multicast_hops_v6(ND_HOP_LIMIT)?;
    s.set_unicast_hops_v6(ND_HOP_LIMIT)?;
    s.set_multicast_loop_v6(false)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn into_tokio(s: Socket) -> io::Result<UdpSocket> {
    let std_sock: std::net::UdpSocket = s.into();
    UdpSocket::from_std(std_sock)
}

/// The listening socket: everything ICMPv6 on the interface, plus `ff02::2`.
fn open_rx(interface: &str, ifindex: u32) -> io::Result<UdpSocket> {
    let s = raw_icmpv6(interface)?;
    s.join_multicast_v6(&ALL_ROUTERS, ifindex)?;
    into_tokio(s)
}

/// The sending socket, bound to the interface's usable link-local address.
fn open_tx(interface: &str, ifindex: u32) -> io::Result<UdpSocket> {
    let ll = ndp::interface_addrs(interface)
        .into_iter()
        .find(ndp::IfAddr::usable_link_local)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!(
                    "{interface} has no usable link-local address (no carrier yet, or duplicate address detection still running)"
                ),
            )
        })?;
    let s = raw_icmpv6(interface)?;
    s.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])?;
    s.bind(&SocketAddr::V6(SocketAddrV6::new(ll.addr, 0, 0, ifindex)).into())?;
    into_tokio(s)
}
