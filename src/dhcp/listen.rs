//! The thin socket layer: receive, decode, report, ask the decision function, send.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::decide::{Reply, Verdict};
use super::drops::Drops;
use super::request::{self, MsgType, Request};
use super::writer::{Committed, Ticket};
use crate::engine::{Engine, EventKind};
use crate::mac::Mac;
use crate::net::raw::RawUdp;

/// Port DHCP clients listen on.
pub const CLIENT_PORT: u16 = 68;

/// Where packets come from and replies go.
pub enum Listener {
    /// A bound UDP socket (server mode, port 4011, loopback labs).
    Udp(tokio::net::UdpSocket),
    /// A raw socket beside another server's port 67 (proxy mode, see [`crate::net::raw`]).
    Raw(RawUdp),
}

impl Listener {
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        match self {
            Listener::Udp(s) => s.recv_from(buf).await,
            Listener::Raw(r) => r.recv(buf).await,
        }
    }

    async fn send(&self, bytes: &[u8], to: SocketAddrV4) -> std::io::Result<()> {
        match self {
            Listener::Udp(s) => s.send_to(bytes, SocketAddr::V4(to)).await.map(|_| ()),
            Listener::Raw(r) => r.send(bytes, to).await,
        }
    }
}

/// How a port answers.
#[derive(Debug, Clone, Copy)]
pub struct PortRole {
    /// This is the PXE boot-server port (4011).
    pub pxe_port: bool,
    /// Reply to the request's source ip:port (loopback labs: the demo's simulated nodes
    /// cannot receive broadcasts on unprivileged ports).
    pub reply_to_source: bool,
    /// The DHCP server port, for replies to relays.
    pub server_port: u16,
}

/// Where a reply goes (RFC 2131 §4.1, PXE: port 4011 answers the source).
pub fn destination(req: &Request, src: SocketAddr, nak: bool, role: PortRole) -> SocketAddrV4 {
    let src4 = match src {
        SocketAddr::V4(s) => s,
        SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
    };
    if role.reply_to_source || role.pxe_port {
        return src4;
    }
    if let Some(g) = req.relay() {
        return SocketAddrV4::new(g, role.server_port);
    }
    if !nak && !req.ciaddr.is_unspecified() {
        return SocketAddrV4::new(req.ciaddr, CLIENT_PORT);
    }
    SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)
}

/// A verdict, and for an ACK that bound a lease the write it must wait for.
pub struct Decision {
    /// Reply, drop or pass.
    pub verdict: Verdict,
    /// Send the reply only once this write succeeded (see [`super::writer`]).
    pub after: Option<Ticket>,
}

impl From<Verdict> for Decision {
    fn from(verdict: Verdict) -> Decision {
        Decision {
            verdict,
            after: None,
        }
    }
}

/// The decision for one decoded request (proxy or server).
pub type Decide = Arc<dyn Fn(&Engine, &Request, &PortRole) -> Decision + Send + Sync>;

/// A reply waiting for its lease to be written: the write's outcome, the reply, where
/// it goes and whose it is.
type Held = (Committed, Reply, SocketAddrV4, Mac);

/// Replies waiting for the lease writer at most; past this the listener stops reading
/// until some are released (the socket buffer then takes the overflow, as the kernel
/// would for a slow server).
const MAX_HELD: usize = 4096;

/// How long replies still waiting for the lease writer at shutdown are waited for.
const HELD_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// Whether a decoded request is reported as a `dhcp-discover` event.
pub type Observe = Arc<dyn Fn(&Engine, &Request, &PortRole) -> bool + Send + Sync>;

/// Serves one listener until `cancel` fires. Replies that wait for the lease writer are
/// held aside while the listener goes on reading, so one write releases a whole burst.
pub async fn run(
    engine: Engine,
    mut listener: Listener,
    role: PortRole,
    observe: Observe,
    decide: Decide,
    drops: Arc<Drops>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    if let Listener::Udp(s) = &listener {
        // A storm's burst waits in the kernel instead of being dropped there (the raw
        // listener deepens its own socket).
        crate::net::bind::deep_receive_queue(s);
    }
    let mut buf = vec![0u8; request::MAX_LEN + 1];
    let mut tick = tokio::time::interval(super::drops::REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drop_packet = |engine: &Engine, from, reason| drops.drop_packet(engine, from, reason);
    let mut held: FuturesUnordered<futures::future::BoxFuture<'static, Held>> =
        FuturesUnordered::new();
    loop {
        let (n, src) = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                drops.flush(&engine, false);
                continue;
            }
            Some(h) = held.next(), if !held.is_empty() => {
                // One lease write releases a whole burst of ACKs: send them all now,
                // before the next request. Released one per turn, interleaved with
                // receives, the last ACK of a burst of 50 waited ~100 turns (4 ms p50 at
                // 10,000 DORA/s on the server's wire).
                release(&engine, &listener, h, &drops).await;
                while let Some(Some(h)) = held.next().now_or_never() {
                    release(&engine, &listener, h, &drops).await;
                }
                continue;
            }
            r = listener.recv(&mut buf), if held.len() < MAX_HELD => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("DHCP receive: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        if n > request::MAX_LEN {
            drop_packet(&engine, src, request::Malformed::TooLong(n).to_string());
            continue;
        }
        let req = match request::parse(&buf[..n]) {
            Ok(r) => r,
            Err(e) => {
                drop_packet(&engine, src, e.to_string());
                continue;
            }
        };
        if observe(&engine, &req, &role) {
            report(&engine, &req, role.pxe_port);
        }
        let Decision { verdict, after } = decide(&engine, &req, &role);
        match verdict {
            Verdict::Pass => {}
            Verdict::Drop(reason) => drop_packet(&engine, src, reason),
            Verdict::Reply(r) => {
                let to = destination(&req, src, r.msg == "nak", role);
                match after {
                    None => send(&engine, &listener, r, to, req.mac).await,
                    Some(ticket) => {
                        let mac = req.mac;
                        held.push(Box::pin(async move { (ticket.wait().await, r, to, mac) }));
                    }
                }
            }
        }
    }
    // Replies whose lease the writer's last save puts on disk still go out.
    let deadline = tokio::time::Instant::now() + HELD_GRACE;
    while let Ok(Some(h)) = tokio::time::timeout_at(deadline, held.next()).await {
        release(&engine, &listener, h, &drops).await;
    }
    drops.flush(&engine, true);
    Ok(())
}

/// Sends a held reply whose lease is on disk; one whose write failed is not sent (the
/// client asks again; the writer reported the failure) and counts as dropped.
async fn release(engine: &Engine, listener: &Listener, (written, r, to, mac): Held, drops: &Drops) {
    match written {
        Ok(()) => send(engine, listener, r, to, mac).await,
        Err(e) => drops.drop_packet(
            engine,
            SocketAddr::V4(to),
            format!("{mac}: {} not sent, the lease was not saved: {e}", r.msg),
        ),
    }
}

async fn send(engine: &Engine, listener: &Listener, r: Reply, to: SocketAddrV4, mac: Mac) {
    if let Err(e) = listener.send(&r.bytes, to).await {
        tracing::warn!("DHCP send to {to} for {mac}: {e}");
        return;
    }
    engine.emit(
        Some(mac),
        EventKind::DhcpReply {
            msg: r.msg.to_string(),
            yiaddr: r.yiaddr,
            boot_file: r.boot_file,
            proxy: is_proxy(engine),
        },
    );
}

fn is_proxy(engine: &Engine) -> bool {
    engine.lab().file.dhcp.mode == crate::config::DhcpMode::Proxy
}

/// Reports a request as a `dhcp-discover` event.
pub fn report(engine: &Engine, req: &Request, pxe_port: bool) {
    engine.emit(
        Some(req.mac),
        EventKind::DhcpDiscover {
            msg: req.msg.name().to_string(),
            arch: req.arch(),
            vendor_class: req.vendor_class(),
            uuid: req.uuid(),
            relay: req.relay(),
            ipxe: req.is_ipxe(),
            pxe_port,
        },
    );
}

/// Requests worth a `dhcp-discover` event in proxy mode: DISCOVERs (and port-4011
/// REQUESTs) from boot firmware or iPXE, or from a machine the lab lists.
pub fn proxy_observe(engine: &Engine, req: &Request, role: &PortRole) -> bool {
    let asks = match req.msg {
        MsgType::Discover => !role.pxe_port,
        MsgType::Request | MsgType::Inform => role.pxe_port,
        _ => false,
    };
    asks && (req.is_pxe_client()
        || req.is_http_client()
        || req.is_ipxe()
        || engine.lab().node_by_mac(&req.mac).is_some())
}

#[cfg(test)]
mod tests {
    use super::super::request::{parse, tests::build};
    use super::*;

    #[test]
    fn replies_go_where_rfc_2131_says() {
        let role = PortRole {
            pxe_port: false,
            reply_to_source: false,
            server_port: 67,
        };
        let src: SocketAddr = "0.0.0.0:68".parse().unwrap();
        let mut b = build([2, 0, 0, 0, 0, 1], &[(53, &[1])]);
        let r = parse(&b).unwrap();
        assert_eq!(
            destination(&r, src, false, role).to_string(),
            "255.255.255.255:68"
        );
        b[24..28].copy_from_slice(&[10, 1, 0, 1]);
        let relayed = parse(&b).unwrap();
        assert_eq!(
            destination(&relayed, src, false, role).to_string(),
            "10.1.0.1:67"
        );
        let mut c = build([2, 0, 0, 0, 0, 1], &[(53, &[3])]);
        c[12..16].copy_from_slice(&[10, 0, 0, 9]);
        let renew = parse(&c).unwrap();
        assert_eq!(
            destination(&renew, src, false, role).to_string(),
            "10.0.0.9:68"
        );
        assert_eq!(
            destination(&renew, src, true, role).to_string(),
            "255.255.255.255:68"
        );
        let pxe = PortRole {
            pxe_port: true,
            ..role
        };
        let from: SocketAddr = "10.0.0.9:4011".parse().unwrap();
        assert_eq!(
            destination(&r, from, false, pxe).to_string(),
            "10.0.0.9:4011"
        );
        let lo = PortRole {
            reply_to_source: true,
            ..role
        };
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(
            destination(&relayed, from, false, lo).to_string(),
            "127.0.0.1:40000"
        );
    }
}
