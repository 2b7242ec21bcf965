//! `sendfile(2)` on a [`GuardedStream`], under the same limits as its writes.
//!
//! The sendfile path (`super::super::front`) hands a file to the kernel instead of
//! writing bytes through `AsyncWrite`; each call still goes through the stream's write
//! accounting ([`GuardedStream::on_write`]: the minimum rate once the client stops
//! keeping up) and its idle deadline, so a client that stops reading is cut exactly as
//! on hyper's path. Non-blocking: the socket's readiness is awaited, never the call.

use std::future::poll_fn;
use std::io;
use std::os::fd::BorrowedFd;
use std::task::{Context, Poll};

use tokio::io::Interest;

use super::GuardedStream;

impl GuardedStream {
    /// Sends up to `count` bytes of `file` from `*offset` (advanced by what was sent)
    /// once the socket can take some. `Ok(0)`: the file ended early.
    pub(crate) async fn sendfile(
        &mut self,
        file: BorrowedFd<'_>,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<usize> {
        poll_fn(|cx| self.poll_sendfile(cx, file, offset, count)).await
    }

    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        file: BorrowedFd<'_>,
        offset: &mut u64,
        count: usize,
    ) -> Poll<io::Result<usize>> {
        let r = loop {
            match self.inner.poll_write_ready(cx) {
                Poll::Pending => break Poll::Pending,
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            let inner = &self.inner;
            let mut short = None;
            let sent = inner.try_io(Interest::WRITABLE, || {
                match rustix::fs::sendfile(inner, file, Some(&mut *offset), count) {
                    // The socket's buffer is full: say so, so that its readiness is
                    // cleared now rather than by a next call that would fail. (A failed
                    // sendfile is not free: the kernel reads the file into its pipe
                    // before it finds the socket full, and drops what it read.)
                    Ok(n) if n > 0 && n < count => {
                        short = Some(n);
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    r => r.map_err(io::Error::from),
                }
            });
            match (sent, short) {
                (_, Some(n)) => break Poll::Ready(Ok(n)),
                // Readiness was stale (now cleared): wait for the next.
                (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
                (r, None) => break Poll::Ready(r),
            }
        };
        let r = self.on_write(cx, r);
        self.check_idle(cx, r)
    }

    /// Holds partial segments back (`TCP_CORK`) while a head and its body go out, and
    /// flushes them when turned off, as nginx's `tcp_nopush` does around sendfile.
    pub(crate) fn set_cork(&self, on: bool) -> io::Result<()> {
        socket2::SockRef::from(&self.inner).set_tcp_cork(on)
    }
}
