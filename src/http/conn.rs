//! Connection hygiene for the boot server, which faces a shared LAN: no client, and no
//! single host, can hold the server's sockets so that others are not served.
//!
//! What nginx does, and what we do:
//! - `client_header_timeout` (nginx: 60 s): the whole request header must arrive in
//!   time. Here [`HEADER_TIMEOUT`] (10 s) from the connection's start, or from the
//!   first byte of each later request on it; a slow-header client ("slowloris": a
//!   header line every few seconds) is closed however steadily it trickles.
//! - `send_timeout` (nginx: 60 s between two successive writes): here a minimum rate,
//!   [`MIN_SEND_RATE`] over [`RATE_WINDOW`], measured from the moment the client stops
//!   keeping up (a write that would block): a stalled or trickling download is cut even
//!   if a byte goes out now and then.
//! - `limit_conn` per address (nginx: off unless configured): at most
//!   [`MAX_PER_CLIENT`] connections from one address; more are closed at once, so one
//!   host can never take the global pool ([`Limits::max_connections`]).
//! - `keepalive_timeout` (nginx: 75 s): a connection with no progress for
//!   [`Limits::idle`] (60 s) is closed.
//!
//! [`Guarded`] is an axum [`Listener`]: `accept` waits for a free slot before taking
//! the next connection and closes a connection over its address's share; each
//! [`GuardedStream`] fails with `TimedOut` when a limit is hit. A download cut this way
//! ends as a cut-short transfer (status 499 in its `http-fetch` event). Every cut is
//! counted (`http_refused`) and reported as a `refused` event with `what: connection`,
//! at most once per address per [`CUT_EVENT_EVERY`] (a flood must not flood the
//! event stream).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::engine::{Engine, EventKind, Source};
use crate::ratelimit::EventLimiter;

mod sendfile;

/// Time for a whole request header. iPXE, curl and busybox wget send theirs in one
/// packet; 10 s leaves room for a lossy link and none for a slowloris.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Slowest download tolerated once the client stops keeping up (bytes per second). A
/// kernel over the slowest real link goes far faster; 1 KiB/s is a client that
/// stopped reading.
pub const MIN_SEND_RATE: u64 = 1024;
/// Over how long the rate is judged: long enough for a client's own hiccup (a GC, a
/// disk flush), short enough that a stalled download frees its slot quickly.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Connections one address may hold at once. A node fetches one file at a time (iPXE
/// and tiny-cloud open one or two connections); 32 leaves room for a few machines
/// behind one NAT and keeps the global pool out of any one host's reach.
pub const MAX_PER_CLIENT: usize = 32;
/// A cut-off client is reported at most this often (each cut is still counted).
pub const CUT_EVENT_EVERY: Duration = Duration::from_secs(10);

/// Limits for the boot server's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection with no read or write progress for this long is closed.
    pub idle: Duration,
    /// At most this many connections are open at once; more wait to be accepted.
    pub max_connections: usize,
    /// A request header must be complete this long after it began.
    pub header: Duration,
    /// Bytes per second a stalled download must still move over `rate_window`.
    pub min_rate: u64,
    /// The window over which `min_rate` is judged.
    pub rate_window: Duration,
    /// Connections one client address may hold at once.
    pub per_client: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            idle: Duration::from_secs(60),
            max_connections: 1024,
            header: HEADER_TIMEOUT,
            min_rate: MIN_SEND_RATE,
            rate_window: RATE_WINDOW,
            per_client: MAX_PER_CLIENT,
        }
    }
}

/// What the listener and its connections share: per-address counts and the reporter.
struct Shared {
    limits: Limits,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    engine: Option<Engine>,
    quiet: EventLimiter,
}

impl Shared {
    /// Takes one of `ip`'s connection shares, if it has one left.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Share> {
        let mut m = crate::engine::lock(&self.per_ip);
        let n = m.entry(ip).or_insert(0);
        if *n >= self.limits.per_client {
            return None;
        }
        *n += 1;
        Some(Share {
            shared: self.clone(),
            ip,
        })
    }

    /// Counts a cut-off and reports it (rate-limited per address).
    fn cut(&self, ip: IpAddr, reason: &str) {
        let Some(engine) = &self.engine else { return };
        engine
            .counters()
            .http_refused
            .fetch_add(1, Ordering::Relaxed);
        let reason = match self.quiet.allow(ip) {
            None => return,
            Some(0) => reason.to_string(),
            Some(n) => format!("{reason} ({n} more from this address not reported)"),
        };
        engine.emit(
            None,
            EventKind::Refused {
                source: Source::Http,
                client: ip.to_string(),
                what: "connection".to_string(),
                reason,
            },
        );
    }
}

/// One connection counted against its address until dropped.
struct Share {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut m = crate::engine::lock(&self.shared.per_ip);
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A TCP listener that enforces [`Limits`].
pub struct Guarded {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    shared: Arc<Shared>,
}

impl Guarded {
    /// Wraps a bound listener; cut-offs are counted and reported to `engine` if given.
    pub fn new(inner: TcpListener, limits: Limits, engine: Option<Engine>) -> Guarded {
        Guarded {
            inner,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            shared: Arc::new(Shared {
                limits,
                per_ip: Mutex::new(HashMap::new()),
                engine,
                quiet: EventLimiter::new(CUT_EVENT_EVERY),
            }),
        }
    }
}

impl Listener for Guarded {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        loop {
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                // The semaphore is never closed; be safe anyway.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            match self.inner.accept().await {
                Ok((s, addr)) => {
                    let ip = addr.ip().to_canonical();
                    let Some(share) = self.shared.take(ip) else {
                        // Over its share: closed at once (dropping `s`), slot freed.
                        let n = self.shared.limits.per_client;
                        self.shared
                            .cut(ip, &format!("more than {n} connections from this address"));
                        continue;
                    };
                    let _ = s.set_nodelay(true);
                    return (GuardedStream::new(s, permit, share), addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, never spin.
                    tracing::warn!("http accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// The client address of a [`Guarded`] connection, for `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, Guarded>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Guarded>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// Finds the end of a request header (an empty line, CRLF or bare LF) in the bytes
/// read, across reads.
#[derive(Debug, Default, Clone, Copy)]
struct HeaderEnd {
    /// The current line has no characters yet (only a `\r` if any).
    line_empty: bool,
    /// At least one byte of this header was read.
    started: bool,
}

impl HeaderEnd {
    /// Feeds bytes; returns the index just past the header's end, if it is in `b`.
    fn feed(&mut self, b: &[u8]) -> Option<usize> {
        for (i, c) in b.iter().enumerate() {
            match c {
                b'\n' if self.line_empty && self.started => {
                    *self = HeaderEnd::default();
                    return Some(i + 1);
                }
                b'\n' => {
                    self.line_empty = true;
                    self.started = true;
                }
                b'\r' => self.started = true,
                _ => {
                    self.line_empty = false;
                    self.started = true;
                }
            }
        }
        None
    }
}

/// Where a connection is.
enum Phase {
    /// Reading a request header that must be complete by the deadline.
    Header,
    /// Between requests, or serving one.
    Open,
}

/// A connection that holds one slot and one of its address's shares, and is closed
/// when a [`Limits`] is hit.
pub struct GuardedStream {
    inner: TcpStream,
    _slot: OwnedSemaphorePermit,
    share: Share,
    idle_deadline: Pin<Box<Sleep>>,
    phase: Phase,
    header: HeaderEnd,
    header_deadline: Pin<Box<Sleep>>,
    /// Bytes written since the client stopped keeping up, and the window's deadline.
    slow: Option<u64>,
    rate_deadline: Pin<Box<Sleep>>,
}

fn timed_out<T>(why: &str) -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::Error::new(
        io::ErrorKind::TimedOut,
        why.to_string(),
    )))
}

impl GuardedStream {
    fn new(inner: TcpStream, slot: OwnedSemaphorePermit, share: Share) -> GuardedStream {
        let l = share.shared.limits;
        GuardedStream {
            inner,
            _slot: slot,
            share,
            idle_deadline: Box::pin(tokio::time::sleep(l.idle)),
            phase: Phase::Header,
            header: HeaderEnd::default(),
            header_deadline: Box::pin(tokio::time::sleep(l.header)),
            slow: None,
            rate_deadline: Box::pin(tokio::time::sleep(l.rate_window)),
        }
    }

    fn limits(&self) -> Limits {
        self.share.shared.limits
    }

    fn cut<T>(&self, why: &str) -> Poll<io::Result<T>> {
        self.share.shared.cut(self.share.ip, why);
        timed_out(why)
    }

    /// Turns a pending operation into `TimedOut` once the idle period has passed.
    fn check_idle<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(v) => {
                let next = Instant::now() + self.limits().idle;
                self.idle_deadline.as_mut().reset(next);
                Poll::Ready(v)
            }
            Poll::Pending => match self.idle_deadline.as_mut().poll(cx) {
                Poll::Ready(()) => timed_out("connection idle too long"),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    /// Follows request headers in the bytes read and enforces their deadline.
    fn on_read(&mut self, cx: &mut Context<'_>, mut fresh: &[u8]) -> Option<Poll<io::Result<()>>> {
        let header_late = |s: &Self| {
            let t = s.limits().header.as_secs_f32();
            format!("request header not complete within {t} s")
        };
        if !fresh.is_empty() {
            // A request is coming: the download rate is judged afresh for its answer.
            self.slow = None;
        }
        while !fresh.is_empty() {
            if let Phase::Open = self.phase {
                self.phase = Phase::Header;
                let next = Instant::now() + self.limits().header;
                self.header_deadline.as_mut().reset(next);
            }
            match self.header.feed(fresh) {
                Some(end) => {
                    self.phase = Phase::Open;
                    fresh = &fresh[end..];
                }
                None => break,
            }
        }
        if let Phase::Header = self.phase {
            if self.header_deadline.as_mut().poll(cx).is_ready() {
                return Some(self.cut(&header_late(self)));
            }
        }
        None
    }

    /// Judges the download rate once the client stops keeping up.
    fn on_write(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let l = self.limits();
        let needed = l.min_rate.saturating_mul(l.rate_window.as_secs().max(1));
        if let Poll::Ready(Ok(n)) = &r {
            if let Some(b) = self.slow.as_mut() {
                *b += *n as u64;
            }
        }
        if r.is_pending() && self.slow.is_none() {
            self.slow = Some(0);
            let next = Instant::now() + l.rate_window;
            self.rate_deadline.as_mut().reset(next);
        }
        if let Some(sent) = self.slow {
            if self.rate_deadline.as_mut().poll(cx).is_ready() {
                if sent < needed {
                    let why = format!(
                        "download slower than {} B/s over {} s",
                        l.min_rate,
                        l.rate_window.as_secs()
                    );
                    return self.cut(&why);
                }
                // Kept up: judged again from the next time it falls behind.
                self.slow = None;
            }
        }
        r
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let fresh_end = buf.filled().len();
        let fresh = if r.is_ready() {
            &buf.filled()[before..fresh_end]
        } else {
            &[][..]
        };
        if let Some(cut) = self.on_read(cx, fresh) {
            return cut;
        }
        self.check_idle(cx, r)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        let r = self.on_write(cx, r);
        self.check_idle(cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.check_idle(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        let r = self.on_write(cx, r);
        self.check_idle(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_end_is_found_across_reads_with_crlf_or_lf() {
        let mut h = HeaderEnd::default();
        assert_eq!(h.feed(b"GET / HTTP/1.1\r\nHost: x\r"), None);
        assert_eq!(h.feed(b"\n\r"), None);
        assert_eq!(h.feed(b"\nGET /next"), Some(1));
        let mut h = HeaderEnd::default();
        assert_eq!(h.feed(b"GET / HTTP/1.0\n\nrest"), Some(16));
        // A lone line break before anything is not the end of a header.
        let mut h = HeaderEnd::default();
        assert_eq!(h.feed(b"\n"), None);
        assert_eq!(h.feed(b"X\n\n"), Some(3));
    }

    #[test]
    fn defaults_are_the_documented_figures() {
        let l = Limits::default();
        assert_eq!(l.header, Duration::from_secs(10));
        assert_eq!((l.min_rate, l.rate_window), (1024, Duration::from_secs(10)));
        assert_eq!((l.per_client, l.max_connections), (32, 1024));
        assert!(l.per_client * 32 <= l.max_connections);
    }
}
