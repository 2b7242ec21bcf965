//! One read transfer: option negotiation, windowed sending, retransmission, and how it
//! ended. Every loop is bounded: a silent client is given `retries` resends of
//! `timeout` each, then the transfer ends as `timeout` and its socket and file close.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;

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
/// Bytes read from the file at once (many blocks per blocking-pool round trip).
const READ_BUFFER: usize = 128 * 1024;
/// Resends of one window before giving up.
pub const RETRIES: u32 = 5;

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
}

async fn wait_ack(
    sock: &UdpSocket,
    peer: SocketAddr,
    deadline: tokio::time::Instant,
) -> std::io::Result<Wait> {
    let mut buf = [0u8; 1024];
    // Bounded: a flood of stray packets cannot keep us here past the deadline.
    loop {
        let r = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        let (n, from) = match r {
            Err(_) => return Ok(Wait::Timeout),
            Ok(r) => r?,
        };
        if from != peer {
            let _ = sock
                .send_to(
                    &packet::error(code::UNKNOWN_TID, "unknown transfer ID"),
                    from,
                )
                .await;
            continue;
        }
        match packet::parse(&buf[..n]) {
            Ok(Packet::Ack(b)) => return Ok(Wait::Ack(b)),
            Ok(Packet::Error { code, msg }) => return Ok(Wait::Error(code, msg)),
            _ => continue,
        }
    }
}

/// Sends `file` to `peer` from `sock` (a socket of its own, the transfer ID).
pub async fn send_file(sock: &UdpSocket, peer: SocketAddr, path: PathBuf, p: &Params) -> Ended {
    let mut acked: u64 = 0;
    let end = |outcome, bytes, detail: String| Ended {
        outcome,
        bytes,
        detail: Some(detail),
    };
    // Buffered: a bare tokio File costs one blocking-pool round trip per block read
    // (per 512 bytes at the default block size); this reads 128 KiB per round trip.
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => tokio::io::BufReader::with_capacity(READ_BUFFER, f),
        Err(e) => {
            let _ = sock
                .send_to(&packet::error(code::NOT_FOUND, "cannot open file"), peer)
                .await;
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
            if let Err(e) = sock.send_to(&oack, peer).await {
                return end(TransferOutcome::Error, 0, format!("send: {e}"));
            }
            let deadline = tokio::time::Instant::now() + p.timeout;
            match wait_ack(sock, peer, deadline).await {
                Ok(Wait::Ack(0)) => {
                    ok = true;
                    break;
                }
                Ok(Wait::Ack(_)) | Ok(Wait::Timeout) => continue,
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
    let mut window: VecDeque<(u16, Vec<u8>)> = VecDeque::new();
    let mut next_block: u16 = 1;
    let mut eof = false;
    let mut retries = 0u32;
    loop {
        // Fill the window.
        while !eof && window.len() < usize::from(p.windowsize) {
            let mut chunk = vec![0u8; bs];
            let mut got = 0;
            while got < bs {
                match file.read(&mut chunk[got..]).await {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) => {
                        let _ = sock
                            .send_to(&packet::error(code::UNDEFINED, "read error"), peer)
                            .await;
                        return end(TransferOutcome::Error, acked, format!("read: {e}"));
                    }
                }
            }
            chunk.truncate(got);
            eof = got < bs;
            window.push_back((next_block, chunk));
            next_block = next_block.wrapping_add(1);
        }
        if window.is_empty() {
            return Ended {
                outcome: TransferOutcome::Complete,
                bytes: acked,
                detail: None,
            };
        }
        for (b, d) in &window {
            if let Err(e) = sock.send_to(&packet::data(*b, d), peer).await {
                return end(TransferOutcome::Error, acked, format!("send: {e}"));
            }
        }
        // Wait for an ACK inside the window; stale duplicates are ignored rather than
        // answered (no Sorcerer's Apprentice), until the deadline.
        let deadline = tokio::time::Instant::now() + p.timeout;
        loop {
            match wait_ack(sock, peer, deadline).await {
                Ok(Wait::Ack(n)) => {
                    // Slide past every block up to and including n.
                    if let Some(pos) = window.iter().position(|(b, _)| *b == n) {
                        for (_, d) in window.drain(..=pos) {
                            acked += d.len() as u64;
                        }
                        retries = 0;
                        break;
                    }
                }
                Ok(Wait::Timeout) => {
                    retries += 1;
                    break;
                }
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
