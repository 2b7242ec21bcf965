//! A syslog receiver: the nodes' busybox `syslogd -R SERVER:PORT` sends each line as
//! one UDP datagram (RFC 3164: `<PRI>Mmm dd hh:mm:ss tag: message`). Lines are
//! attributed to a node by their source address (its configured, booted-from or leased
//! address) and join its log pane as `log-line` events with file `syslog`, so what a
//! node says is seen from early boot on, before SSH answers, or when it never does.
//!
//! Bound to the lab side only (`server_address`), never to every interface. Each
//! source gets a token bucket, so one chatty host cannot flood the event bus or the
//! memory; lines from addresses no node has are counted and reported now and then.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EventKind, Source};

/// Lines a source may send in a burst.
const BURST: f64 = 200.0;
/// Lines per second a source may sustain.
const RATE: f64 = 50.0;
/// Sources remembered at once (buckets and unknown counts); more start afresh.
const MAX_SOURCES: usize = 1024;
/// Longest line kept (a datagram is at most this read).
const MAX_LINE: usize = 2048;

/// One source's budget.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: Instant,
    dropped: u64,
}

/// Per-source rate limit: `true` when a line may pass.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: HashMap<IpAddr, Bucket>,
}

impl Limiter {
    /// Takes one token for `ip` at `now`; on success, also the number of lines dropped
    /// since the last one that passed (to say so once).
    pub fn take(&mut self, ip: IpAddr, now: Instant) -> Option<u64> {
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&ip) {
            self.buckets.clear();
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: BURST,
            at: now,
            dropped: 0,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * RATE).min(BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Some(std::mem::take(&mut b.dropped))
        } else {
            b.dropped += 1;
            None
        }
    }
}

/// The text of an RFC 3164 datagram: `<PRI>` and the timestamp dropped (the event has
/// its own time), trailing newlines trimmed, invalid UTF-8 replaced.
pub fn line_text(datagram: &[u8]) -> String {
    let s = String::from_utf8_lossy(datagram);
    let mut t: &str = s.trim_end_matches(['\n', '\r', '\0']);
    if let Some(rest) = t.strip_prefix('<') {
        if let Some(end) = rest.find('>').filter(|&i| i <= 3) {
            if rest[..end].chars().all(|c| c.is_ascii_digit()) {
                t = &rest[end + 1..];
            }
        }
    }
    // `Mmm dd hh:mm:ss ` (15 characters and a space).
    let b = t.as_bytes();
    if b.len() > 16 && b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[12] == b':' {
        t = &t[16..];
    }
    t.to_string()
}

/// Receives until `cancel`; `Err` when the socket cannot be bound.
pub async fn serve(
    engine: Engine,
    plan: crate::config::plan::SyslogPlan,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let addr = plan.bind;
    let sock = UdpSocket::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on udp {addr}: {e}"))?;
    engine.emit(
        None,
        EventKind::ServerUp {
            source: Source::Syslog,
            addr: addr.to_string(),
        },
    );
    let mut limiter = Limiter::default();
    let mut unknown: HashMap<IpAddr, u64> = HashMap::new();
    let mut buf = vec![0u8; MAX_LINE];
    loop {
        let (n, from) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("syslog receive failed: {e}");
                    continue;
                }
            },
        };
        let ip = from.ip();
        let Some(mac) = engine.mac_by_ip(ip) else {
            if unknown.len() >= MAX_SOURCES && !unknown.contains_key(&ip) {
                unknown.clear();
            }
            let c = unknown.entry(ip).or_insert(0);
            *c += 1;
            // Said at the 1st, 10th, 100th… line: counted, not echoed.
            if matches!(*c, 1 | 10 | 100 | 1000) || c.is_multiple_of(10_000) {
                engine.emit(
                    None,
                    EventKind::LogLine {
                        file: "syslog".into(),
                        line: format!("{c} line(s) from {ip}, which is no node's address"),
                    },
                );
            }
            continue;
        };
        let Some(dropped) = limiter.take(ip, Instant::now()) else {
            continue;
        };
        if dropped > 0 {
            engine.emit(
                Some(mac),
                EventKind::LogLine {
                    file: "syslog".into(),
                    line: format!("({dropped} line(s) dropped: more than {RATE} a second)"),
                },
            );
        }
        let line = line_text(&buf[..n]);
        if !line.is_empty() {
            engine.emit(
                Some(mac),
                EventKind::LogLine {
                    file: "syslog".into(),
                    line,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3164_text() {
        assert_eq!(
            line_text(b"<30>Dec  4 17:20:00 k3s: starting\n"),
            "k3s: starting"
        );
        assert_eq!(line_text(b"<13>root: hello"), "root: hello");
        assert_eq!(line_text(b"plain kernel line"), "plain kernel line");
    }

    #[test]
    fn a_chatty_source_is_limited() {
        let mut l = Limiter::default();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let now = Instant::now();
        let passed = (0..1000).filter(|_| l.take(ip, now).is_some()).count();
        assert_eq!(passed, BURST as usize);
        // A second later, RATE more pass and the drop count is reported once.
        let later = now + std::time::Duration::from_secs(1);
        assert_eq!(l.take(ip, later), Some(1000 - BURST as u64));
    }
}
