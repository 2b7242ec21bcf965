//! One read transfer: option negotiation, windowed sending, retransmission, and how it
//! ended. Every loop is bounded: a silent client is given `retries` resends of
//! `timeout` each, then the transfer ends as `timeout` and its socket and file close.
//! When the server is full ([`Load::crowded`]), a transfer whose client has not
//! acknowledged anything yet (no ACK to the OACK or to block 1) is given up after
//! [`UNCONFIRMED_GRACE`]: a client that asked and went silent must not keep a real
//! one waiting for the full retransmission budget.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::packet::{self, code, Packet};
use crate::engine::event::TransferOutcome;

/// Largest block size granted (fits an Ethernet frame unfragmented: 1500 - 20 - 8 - 4).
pub const MAX_BLKSIZE: u16 = 1468;
/// Largest window granted (RFC 7440).
pub const MAX_WINDOW: u16 = 64;
/// Default retransmission timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest timeout a client may ask for (RFC 2349 allows 255 s; a vanished client
/// must not hold resources that long).
pub const MAX_TIMEOUT_SECS: u64 = 5;
/// Bytes read from the file at once (many blocks per read; fewer for a smaller file).
/// One buffer per transfer, up to [`super::MAX_TRANSFERS`] at once: at 128 KiB a boot
/// storm held 32 MB of them (bench/run.sh memory), at 64 KiB 16 MB; 16 KiB is 4 MB, and
/// still 11 blocks of 1468 per read (bench/run.sh tftp: no loss beyond its noise).
const READ_BUFFER: usize = 16 * 1024;
/// Resends of one window before giving up.
pub const RETRIES: u32 = 5;
/// How long a transfer whose client has not acknowledged anything yet may live while
/// the server is full. One default timeout: a real client answers its first packet
/// within milliseconds; a silent one (an RRQ and nothing else, by accident or by
/// design) would otherwise hold its slot for (1 + [`RETRIES`]) timeouts.
pub const UNCONFIRMED_GRACE: Duration = Duration::from_secs(1);

/// How busy the TFTP server is, as seen from a transfer's thread.
#[derive(Debug)]
pub struct Load {
    slots: Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
}

impl Load {
    /// The server's transfer slots.
    pub fn new(slots: Arc<tokio::sync::Semaphore>) -> Load {
        Load {
            slots,
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The slots themselves.
    pub fn slots(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.slots
    }

    /// Counts a request as waiting for a slot until the returned guard is dropped.
    pub fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }

    /// Every slot is taken, or a request waits for one.
    pub fn crowded(&self) -> bool {
        self.slots.available_permits() == 0 || self.waiting.load(Ordering::Relaxed) > 0
    }
}

/// A request waiting for a slot ([`Load::waiting`]).
pub struct Waiting<'a>(&'a Load);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Negotiated parameters of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Block size.
    pub blksize: u16,
    /// Window size.
    pub windowsize: u16,
    /// Retransmission timeout.
    pub timeout: Duration,
    /// Options to acknowledge in an OACK (empty: no OACK, data starts at once).
    pub oack: Vec<(&'static str, String)>,
}

/// Negotiates RFC 2347/2348/2349/7440 options against the file size. Unknown or
/// out-of-range options are left out of the OACK, as RFC 2347 asks.
pub fn negotiate(opts: &[(String, String)], size: u64) -> Params {
    let mut p = Params {
        blksize: 512,
        windowsize: 1,
        timeout: DEFAULT_TIMEOUT,
        oack: Vec::new(),
    };
    for (k, v) in opts {
        let Ok(n) = v.parse::<u64>() else { continue };
        match k.as_str() {
            "blksize" if (8..=65464).contains(&n) => {
                p.blksize = (n as u16).min(MAX_BLKSIZE);
                p.oack.push(("blksize", p.blksize.to_string()));
            }
            "windowsize" if (1..=65535).contains(&n) => {
                p.windowsize = (n as u16).min(MAX_WINDOW);
                p.oack.push(("windowsize", p.windowsize.to_string()));
            }
            "timeout" if (1..=255).contains(&n) => {
                let t = n.min(MAX_TIMEOUT_SECS);
                p.timeout = Duration::from_secs(t);
                p.oack.push(("timeout", t.to_string()));
            }
            "tsize" => p.oack.push(("tsize", size.to_string())),
            _ => {}
        }
    }
    p
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// Outcome.
    pub outcome: TransferOutcome,
    /// Payload bytes acknowledged by the client.
    pub bytes: u64,
    /// Why, when not complete.
    pub detail: Option<String>,
}

enum Wait {
    /// The client acknowledged this block.
    Ack(u16),
    /// The client sent an ERROR.
    Error(u16, String),
    /// Nothing usable within the timeout.
    Timeout,
    /// pxelab is stopping.
    Stopped,
    /// The server is full and this client has not acknowledged anything in its grace.
    GaveUp,
}

/// What a waiting transfer looks at besides its socket.
struct Watch<'a> {
    stop: &'a AtomicBool,
    load: &'a Load,
    started: Instant,
    /// The client acknowledged something (ACK of the OACK or of a data block).
    confirmed: bool,
}

impl Watch<'_> {
    fn give_up(&self) -> bool {
        !self.confirmed && self.started.elapsed() >= UNCONFIRMED_GRACE && self.load.crowded()
    }
}

/// How often a waiting transfer looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// Waits (blocking) for an ACK or ERROR from `peer` until `deadline`. Packets from
/// anyone else get "unknown transfer ID"; other packets from the peer are ignored.
/// Bounded: a flood of stray packets cannot keep us here past the deadline.
fn wait_ack(
    sock: &UdpSocket,
    peer: SocketAddr,
    deadline: Instant,
    w: &Watch<'_>,
) -> std::io::Result<Wait> {
    let mut buf = [0u8; 1024];
    loop {
        if w.stop.load(Ordering::Relaxed) {
            return Ok(Wait::Stopped);
        }
        if w.give_up() {
            return Ok(Wait::GaveUp);
        }
        if Instant::now() >= deadline {
            return Ok(Wait::Timeout);
        }
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            // An ICMP port unreachable from an earlier send: the client is gone, but
            // wait out the deadline like any silence (it may be a stale error).
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        if from != peer {
            let _ = sock.send_to(
                &packet::error(code::UNKNOWN_TID, "unknown transfer ID"),
                from,
            );
            continue;
        }
        match packet::parse(&buf[..n]) {
            Ok(Packet::Ack(b)) => return Ok(Wait::Ack(b)),
            Ok(Packet::Error { code, msg }) => return Ok(Wait::Error(code, msg)),
            _ => continue,
        }
    }
}

/// Sets the flag when dropped: the async side of a transfer was cancelled.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sends `file` to `peer` from `sock` (a socket of its own, the transfer ID).
///
/// The send/ACK loop runs on a thread of its own with the socket in blocking mode, as
/// tftpd-hpa's process per transfer does: at window size 1 a transfer is one `sendto`
/// and one `recvfrom` per block, and on the async runtime each of those blocks cost an
/// epoll round, a task wake-up across threads and a re-armed timer (twice tftpd-hpa's
/// CPU per block, measured; see BENCHMARKS.md). Threads are bounded by
/// [`super::MAX_TRANSFERS`]. Dropping the returned future (pxelab stopping) makes the
/// thread give up within [`STOP_CHECK`], as does a full server ([`Load`]) for a client
/// that has acknowledged nothing after [`UNCONFIRMED_GRACE`].
pub async fn send_file(
    sock: tokio::net::UdpSocket,
    peer: SocketAddr,
    path: PathBuf,
    p: &Params,
    load: Arc<Load>,
) -> Ended {
    let failed = |detail: String| Ended {
        outcome: TransferOutcome::Error,
        bytes: 0,
        detail: Some(detail),
    };
    let sock = match sock.into_std().and_then(|s| {
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(p.timeout.min(STOP_CHECK)))?;
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => return failed(format!("transfer socket: {e}")),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(stop.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let params = p.clone();
    let spawned = std::thread::Builder::new()
        .name("tftp-transfer".to_string())
        .stack_size(256 * 1024)
        .spawn(move || {
            let w = Watch {
                stop: &stop,
                load: &load,
                started: Instant::now(),
                confirmed: false,
            };
            let _ = tx.send(send_file_blocking(&sock, peer, &path, &params, w));
        });
    if let Err(e) = spawned {
        return failed(format!("no thread for the transfer: {e}"));
    }
    rx.await
        .unwrap_or_else(|_| failed("the transfer thread ended without a result".to_string()))
}

/// Reads up to `want` bytes (fewer only at end of file) into `out`.
fn read_block(file: &mut impl Read, out: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    let start = out.len();
    out.resize(start + want, 0);
    let mut got = 0;
    while got < want {
        match file.read(&mut out[start + got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
    out.truncate(start + got);
    Ok(got)
}

/// The blocking transfer loop behind [`send_file`].
fn send_file_blocking(
    sock: &UdpSocket,
    peer: SocketAddr,
    path: &Path,
    p: &Params,
    mut w: Watch<'_>,
) -> Ended {
    let mut acked: u64 = 0;
    let end = |outcome, bytes, detail: String| Ended {
        outcome,
        bytes,
        detail: Some(detail),
    };
    let stopped = |bytes| end(TransferOutcome::Error, bytes, "pxelab stopped".to_string());
    let gave_up = || {
        end(
            TransferOutcome::Timeout,
            0,
            "given up: the server is full and the client acknowledged nothing".to_string(),
        )
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => {
            let len = f.metadata().map_or(u64::MAX, |m| m.len());
            let cap = usize::try_from(len).map_or(READ_BUFFER, |l| l.clamp(512, READ_BUFFER));
            std::io::BufReader::with_capacity(cap, f)
        }
        Err(e) => {
            let _ = sock.send_to(&packet::error(code::NOT_FOUND, "cannot open file"), peer);
            return end(
                TransferOutcome::Error,
                0,
                format!("open {}: {e}", path.display()),
            );
        }
    };
    // Option acknowledgement: the client answers with ACK 0 (or ERROR 8 to abort, as
    // OVMF does after a size probe).
    if !p.oack.is_empty() {
        let oack = packet::oack(&p.oack);
        let mut ok = false;
        for _ in 0..=RETRIES {
            if let Err(e) = sock.send_to(&oack, peer) {
                return end(TransferOutcome::Error, 0, format!("send: {e}"));
            }
            match wait_ack(sock, peer, Instant::now() + p.timeout, &w) {
                Ok(Wait::Ack(0)) => {
                    ok = true;
                    w.confirmed = true;
                    break;
                }
                Ok(Wait::Ack(_)) | Ok(Wait::Timeout) => continue,
                Ok(Wait::Stopped) => return stopped(0),
                Ok(Wait::GaveUp) => return gave_up(),
                Ok(Wait::Error(c, m)) => {
                    return end(
                        TransferOutcome::Error,
                        0,
                        format!("client aborted (error {c}: {m})"),
                    );
                }
                Err(e) => return end(TransferOutcome::Error, 0, format!("receive: {e}")),
            }
        }
        if !ok {
            return end(
                TransferOutcome::Timeout,
                0,
                "no ACK to the OACK".to_string(),
            );
        }
    }
    let bs = usize::from(p.blksize);
    // The window holds whole DATA packets (header and payload), ready to resend;
    // acknowledged packets' buffers are reused for the next blocks.
    let mut window: VecDeque<(u16, Vec<u8>)> = VecDeque::new();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut next_block: u16 = 1;
    let mut eof = false;
    let mut retries = 0u32;
    loop {
        // Fill the window.
        while !eof && window.len() < usize::from(p.windowsize) {
            let mut pkt = spare.pop().unwrap_or_else(|| Vec::with_capacity(4 + bs));
            pkt.clear();
            pkt.extend_from_slice(&3u16.to_be_bytes());
            pkt.extend_from_slice(&next_block.to_be_bytes());
            match read_block(&mut file, &mut pkt, bs) {
                Ok(got) => eof = got < bs,
                Err(e) => {
                    let _ = sock.send_to(&packet::error(code::UNDEFINED, "read error"), peer);
                    return end(TransferOutcome::Error, acked, format!("read: {e}"));
                }
            }
            window.push_back((next_block, pkt));
            next_block = next_block.wrapping_add(1);
        }
        if window.is_empty() {
            return Ended {
                outcome: TransferOutcome::Complete,
                bytes: acked,
                detail: None,
            };
        }
        for (_, pkt) in &window {
            if let Err(e) = sock.send_to(pkt, peer) {
                return end(TransferOutcome::Error, acked, format!("send: {e}"));
            }
        }
        // Wait for an ACK inside the window; stale duplicates are ignored rather than
        // answered (no Sorcerer's Apprentice), until the deadline.
        let deadline = Instant::now() + p.timeout;
        loop {
            match wait_ack(sock, peer, deadline, &w) {
                Ok(Wait::Ack(n)) => {
                    // Slide past every block up to and including n.
                    if let Some(pos) = window.iter().position(|(b, _)| *b == n) {
                        w.confirmed = true;
                        for (_, pkt) in window.drain(..=pos) {
                            acked += (pkt.len() - 4) as u64;
                            spare.push(pkt);
                        }
                        retries = 0;
                        break;
                    }
                }
                Ok(Wait::Timeout) => {
                    retries += 1;
                    break;
                }
                Ok(Wait::Stopped) => return stopped(acked),
                Ok(Wait::GaveUp) => return gave_up(),
                Ok(Wait::Error(c, m)) => {
                    return end(
                        TransferOutcome::Error,
                        acked,
                        format!("client aborted (error {c}: {m})"),
                    );
                }
                Err(e) => return end(TransferOutcome::Error, acked, format!("receive: {e}")),
            }
        }
        if retries > RETRIES {
            return end(
                TransferOutcome::Timeout,
                acked,
                format!("client silent after {RETRIES} resends"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn negotiation_clamps_and_skips_bad_values() {
        let p = negotiate(
            &[
                o("blksize", "9000"),
                o("tsize", "0"),
                o("windowsize", "200"),
                o("timeout", "0"),
                o("x", "1"),
            ],
            1234,
        );
        assert_eq!(p.blksize, MAX_BLKSIZE);
        assert_eq!(p.windowsize, MAX_WINDOW);
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(
            p.oack,
            vec![
                ("blksize", "1468".to_string()),
                ("tsize", "1234".to_string()),
                ("windowsize", "64".to_string())
            ]
        );
        let q = negotiate(&[o("blksize", "4"), o("timeout", "200")], 1);
        assert_eq!(q.blksize, 512);
        assert_eq!(q.timeout, Duration::from_secs(MAX_TIMEOUT_SECS));
        assert!(negotiate(&[], 1).oack.is_empty());
    }
}
