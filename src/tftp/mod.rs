//! TFTP: read-only iPXE binaries from the configured root (Debian's `/usr/lib/ipxe`),
//! and a Raspberry Pi's firmware tree and boot files with `pi:` ([`pi`]).
//!
//! - Read requests only: a write request is answered with error 2 and reported refused.
//! - Rooted: absolute names, `..`, backslashes and symlinks leading out of the root are
//!   refused ([`path`]).
//! - Options: RFC 2347 (OACK), 2348 `blksize` (capped at 1468), 2349 `timeout` (capped at
//!   5 s) and `tsize`, 7440 `windowsize` (capped at 64).
//! - Every request is one `tftp-start` (when accepted) and one `tftp-end` event with the
//!   file, client, bytes, duration and outcome: complete, timeout (the client vanished:
//!   its socket and file are freed after at most 6 × the timeout), refused, or error
//!   (e.g. OVMF's size probe, which aborts with error 8 after the OACK).
//!
//! Why not async-tftp: its 0.4 handler sees only the client and the path, so it cannot
//! report the negotiated block and window sizes or how a transfer ended, and it ignores
//! a client's ERROR packet (an aborted size probe keeps resending for up to 100 × 3 s).
//! The protocol is small; this module implements the read side with those events.
//! Requests are received on the async runtime; each accepted transfer's send/ACK loop
//! then runs on a thread of its own with a blocking socket ([`transfer::send_file`]
//! says why), at most [`MAX_TRANSFERS`] at once.
//!
//! One host cannot take the server: it gets at most [`MAX_PER_CLIENT`] transfers at
//! once (more are refused), and when every slot is taken a new request waits up to
//! [`FULL_WAIT`] while transfers whose client never acknowledged anything are given
//! up ([`transfer::UNCONFIRMED_GRACE`]). 256 RRQs that are never followed by an ACK
//! used to answer every real client "server busy" for half a minute. Refusals for
//! these reasons are counted each time but reported once per client per
//! [`REFUSAL_EVENT_EVERY`], so a flood does not flood the event stream.
//!
//! The requesting MAC is looked up from the kernel's ARP table (`/proc/net/arp`), so a
//! completed transfer moves the node's state even in proxy mode, where pxelab never
//! learns the node's address from DHCP.

pub mod packet;

pub mod pi;

pub mod transfer;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::plan::TftpPlan;
use crate::engine::event::TransferOutcome;
use crate::engine::{Engine, EventKind, Source};
use crate::mac::Mac;
use crate::net::{bind, path};

use packet::{code, Packet};

/// Transfers served at once; further requests wait [`FULL_WAIT`], then are refused.
pub const MAX_TRANSFERS: usize = 256;
/// Transfers one client address may have at once. A booting machine fetches one file
/// at a time (OVMF's size probe ends before its download starts); 8 leaves room for
/// retries and a few machines behind one NAT, and keeps 32 addresses' worth of slots
/// for everyone else even if one host fills its share.
pub const MAX_PER_CLIENT: usize = 8;
/// How long a request waits for a slot when the server is full, while silent
/// transfers are given up; shorter than a client's own RRQ retransmission (tftp-hpa
/// and iPXE wait several seconds), so the client sees an answer, not a timeout.
pub const FULL_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// Refusals of one client for being too busy are reported at most this often.
pub const REFUSAL_EVENT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the TFTP server until `cancel` fires.
pub async fn serve(
    engine: Engine,
    plan: TftpPlan,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let root = std::fs::canonicalize(&plan.root)
        .map_err(|e| anyhow::anyhow!("TFTP root {}: {e}", plan.root.display()))?;
    let iface = plan.interface.clone();
    let ip = bind::listen_ip(plan.address, iface.as_deref());
    let sock = bind::bind_tokio(SocketAddrV4::new(ip, plan.port), iface.as_deref())?;
    let local = sock.local_addr()?;
    engine.emit(
        None,
        EventKind::ServerUp {
            source: Source::Tftp,
            addr: format!("udp {local} root {}", root.display()),
        },
    );
    let ctx = Arc::new(Ctx {
        engine: engine.clone(),
        root,
        iface,
        server: plan.address,
        load: Arc::new(transfer::Load::new(Arc::new(Semaphore::new(MAX_TRANSFERS)))),
        active: std::sync::Mutex::new(std::collections::HashSet::new()),
        per_client: std::sync::Mutex::new(std::collections::HashMap::new()),
        quiet: crate::ratelimit::EventLimiter::new(REFUSAL_EVENT_EVERY),
    });
    let tasks = tokio_util::task::TaskTracker::new();
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("TFTP receive: {e}");
                    continue;
                }
            },
        };
        let pkt = match packet::parse(&buf[..n]) {
            Ok(p) => p,
            Err(e) => {
                ctx.count_refused();
                tracing::debug!("TFTP: dropped packet from {peer}: {e}");
                continue;
            }
        };
        match pkt {
            Packet::Rrq { file, mode, opts } => {
                let ctx = ctx.clone();
                let cancel = cancel.clone();
                tasks.spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = ctx.read_request(peer, file, mode, opts) => {}
                    }
                });
            }
            Packet::Wrq { file } => {
                let _ = sock
                    .send_to(&packet::error(code::ACCESS, "read-only server"), peer)
                    .await;
                ctx.refused(peer, &file, "write requests are refused (read-only)");
            }
            // Stray ACK/DATA/ERROR on the listening port: not a transfer of ours.
            _ => {}
        }
    }
    tasks.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), tasks.wait()).await;
    Ok(())
}

struct Ctx {
    engine: Engine,
    root: PathBuf,
    iface: Option<String>,
    server: Ipv4Addr,
    load: Arc<transfer::Load>,
    /// Peers with a transfer in progress (a repeated RRQ is a retransmission).
    active: std::sync::Mutex<std::collections::HashSet<SocketAddr>>,
    /// Transfers in progress per client address (at most [`MAX_PER_CLIENT`]).
    per_client: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
    /// One "too busy" refusal event per client per [`REFUSAL_EVENT_EVERY`].
    quiet: crate::ratelimit::EventLimiter,
}

/// One transfer counted against its client address until dropped.
struct ClientShare<'a> {
    ctx: &'a Ctx,
    ip: IpAddr,
}

impl Drop for ClientShare<'_> {
    fn drop(&mut self) {
        let mut m = crate::engine::lock(&self.ctx.per_client);
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl Ctx {
    /// The machine at `ip`: the kernel's ARP table, else the engine (a configured,
    /// booted-from or leased address; this is what names loopback clients).
    fn mac_of(&self, ip: IpAddr) -> Option<Mac> {
        crate::net::arp::mac_of(ip).or_else(|| self.engine.mac_by_ip(ip))
    }

    fn count_refused(&self) {
        self.engine
            .counters()
            .tftp_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Takes one of the client's [`MAX_PER_CLIENT`] shares, if it has one left.
    fn client_share(&self, ip: IpAddr) -> Option<ClientShare<'_>> {
        let mut m = crate::engine::lock(&self.per_client);
        let n = m.entry(ip).or_insert(0);
        if *n >= MAX_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(ClientShare { ctx: self, ip })
    }

    /// A refusal one host can cause by the thousand: counted every time, reported once
    /// per client per [`REFUSAL_EVENT_EVERY`] (with how many went unreported).
    fn refused_quietly(&self, peer: SocketAddr, file: &str, why: &str) {
        match self.quiet.allow(peer.ip()) {
            Some(0) => self.refused(peer, file, why),
            Some(n) => self.refused(
                peer,
                file,
                &format!("{why} ({n} more from this address not reported)"),
            ),
            None => self.count_refused(),
        }
    }

    fn refused(&self, peer: SocketAddr, file: &str, why: &str) {
        self.count_refused();
        self.engine.emit(
            self.mac_of(peer.ip()),
            EventKind::TftpEnd {
                file: file.chars().take(200).collect(),
                client: peer,
                bytes: 0,
                ms: 0,
                outcome: TransferOutcome::Refused,
                detail: Some(why.to_string()),
            },
        );
    }

    async fn read_request(
        self: Arc<Self>,
        peer: SocketAddr,
        file: String,
        mode: String,
        opts: Vec<(String, String)>,
    ) {
        {
            let mut a = crate::engine::lock(&self.active);
            if !a.insert(peer) {
                return;
            }
        }
        self.transfer(peer, &file, &mode, &opts).await;
        crate::engine::lock(&self.active).remove(&peer);
    }

    async fn transfer(&self, peer: SocketAddr, file: &str, mode: &str, opts: &[(String, String)]) {
        // A socket of its own: the transfer ID.
        let sock = match self.transfer_socket() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("TFTP: {e}");
                return self.refused(peer, file, "no socket for the transfer");
            }
        };
        let sock_ref = &sock;
        let refuse = |code: u16, why: String| async move {
            let _ = sock_ref.send_to(&packet::error(code, &why), peer).await;
            self.refused(peer, file, &why);
        };
        if mode != "octet" && mode != "netascii" {
            return refuse(code::ILLEGAL, format!("mode {mode} not supported")).await;
        }
        let Some(_share) = self.client_share(peer.ip()) else {
            let why = format!("too many transfers from this address (at most {MAX_PER_CLIENT})");
            let _ = sock
                .send_to(&packet::error(code::UNDEFINED, &why), peer)
                .await;
            return self.refused_quietly(peer, file, &why);
        };
        let slots = self.load.slots().clone();
        let _slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                // Full: wait while silent transfers are given up.
                let _waiting = self.load.waiting();
                match tokio::time::timeout(FULL_WAIT, slots.acquire_owned()).await {
                    Ok(Ok(s)) => s,
                    _ => {
                        let why = "server busy";
                        let _ = sock
                            .send_to(&packet::error(code::UNDEFINED, why), peer)
                            .await;
                        return self.refused_quietly(peer, file, why);
                    }
                }
            }
        };
        let path = match self.locate(peer, file) {
            Ok(p) => p,
            Err(e @ pi::PiRefused::Path(path::PathRefused::NotFound(_))) => {
                return refuse(code::NOT_FOUND, e.to_string()).await
            }
            Err(e) => return refuse(code::ACCESS, e.to_string()).await,
        };
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let params = transfer::negotiate(opts, size);
        let mac = self.mac_of(peer.ip());
        self.engine.emit(
            mac,
            EventKind::TftpStart {
                file: file.to_string(),
                client: peer,
                blksize: params.blksize,
                windowsize: params.windowsize,
            },
        );
        let started = Instant::now();
        let ended = transfer::send_file(sock, peer, path, &params, self.load.clone()).await;
        self.engine.emit(
            mac,
            EventKind::TftpEnd {
                file: file.to_string(),
                client: peer,
                bytes: ended.bytes,
                ms: started.elapsed().as_millis() as u64,
                outcome: ended.outcome,
                detail: ended.detail,
            },
        );
    }

    /// The file a request names: a Raspberry Pi's from its firmware tree, assets or
    /// rendered files ([`pi`]), anything else from the iPXE root.
    fn locate(&self, peer: SocketAddr, file: &str) -> Result<PathBuf, pi::PiRefused> {
        let lab = self.engine.lab();
        if lab.file.pi.is_some() {
            if let Some(p) = pi::locate(&lab, self.mac_of(peer.ip()), file)? {
                return Ok(p);
            }
        }
        Ok(path::resolve(&self.root, file)?)
    }

    fn transfer_socket(&self) -> Result<tokio::net::UdpSocket, bind::BindError> {
        // Answer from the server's own address when it is ours, so the client sees the
        // address it asked; fall back to any address on the interface.
        bind::bind_udp_ephemeral(self.server, self.iface.as_deref())
            .or_else(|_| bind::bind_udp_ephemeral(Ipv4Addr::UNSPECIFIED, self.iface.as_deref()))
    }
}
