//! The boot server's front door: a plain `GET /assets/NAME` is answered with
//! `sendfile(2)`; every other request goes to hyper (axum) unchanged.
//!
//! Why our own code in front of hyper: hyper's bodies are bytes in memory, so every
//! byte of a boot asset was copied twice by the kernel (page cache → our buffer →
//! socket; ~36 % of pxelab's samples at 50 downloads, BENCHMARKS.md "HTTP"), where
//! nginx's sendfile copies it in neither direction. Hyper has no way to hand a file
//! to the socket, so the connection is read here first:
//!
//! - each connection from [`conn::Guarded`] (limits per address, slots, timeouts) gets
//!   a task that reads a request head through the same [`conn::GuardedStream`];
//! - a request that is certainly a whole-file 200 of a public boot asset
//!   ([`request::Fast`], then [`assets::whole`]) is answered here: head, then the file by
//!   sendfile, with the same headers and the same events as hyper's path; the
//!   connection stays open for the next request;
//! - the first request that is anything else (a Range, a HEAD, a script, a node's
//!   files, an error, a malformed head) is handed to hyper together with the bytes
//!   already read ([`Rewound`]), through [`Front`], the listener axum serves; hyper
//!   keeps the connection from then on.

mod request;
mod serve;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn::{self, GuardedStream, Peer};
use super::{assets, HttpState};

/// A connection for hyper: the bytes the front already read, then the stream.
pub struct Rewound {
    prefix: Bytes,
    inner: GuardedStream,
}

impl AsyncRead for Rewound {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection handed to hyper.
type Handoff = (Rewound, SocketAddr);

/// The listener axum serves: the connections the front handed over.
pub struct Front {
    handed: mpsc::UnboundedReceiver<Handoff>,
    local: SocketAddr,
    acceptor: AbortHandle,
}

impl Front {
    /// Takes `listener`'s connections, answers what it can and hands the rest to
    /// whoever serves this [`Front`]. The connection tasks are spawned on `tasks`; on
    /// `cancel` they close at the next request boundary (a body being sent is finished,
    /// as hyper's graceful shutdown finishes its own).
    pub fn new(
        mut listener: conn::Guarded,
        state: HttpState,
        tasks: TaskTracker,
        cancel: CancellationToken,
    ) -> io::Result<Front> {
        let local = listener.local_addr()?;
        let (tx, handed) = mpsc::unbounded_channel();
        let acceptor = tokio::spawn(async move {
            loop {
                let (io, peer) = listener.accept().await;
                let (st, tx, cancel) = (state.clone(), tx.clone(), cancel.clone());
                tasks.spawn(serve::connection(io, peer, st, tx, cancel));
            }
        });
        Ok(Front {
            handed,
            local,
            acceptor: acceptor.abort_handle(),
        })
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl Listener for Front {
    type Io = Rewound;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> Handoff {
        match self.handed.recv().await {
            Some(h) => h,
            // The acceptor only stops when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl Connected<IncomingStream<'_, Front>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Front>) -> Peer {
        Peer(*stream.remote_addr())
    }
}
