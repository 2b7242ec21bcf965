//! A body stream that reports, once, how much of itself was sent.
//!
//! Hyper pulls the stream chunk by chunk; when it pulls the end, the transfer is
//! complete, and when it drops the stream early (client gone, connection reset) the
//! transfer was cut short. Either way [`Metered`] emits one `http-fetch` event with the
//! bytes handed to the connection and the time since the request began. A cut-short
//! transfer is reported with status 499 (nginx's "client closed request"), so a
//! half-fetched kernel never moves a node forward.

use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;

use crate::engine::{Engine, EventKind, FetchKind};
use crate::mac::Mac;

/// Status reported for a transfer the client abandoned.
pub const CLIENT_CLOSED: u16 = 499;

/// What the end-of-transfer event says.
pub struct Report {
    /// The engine to tell.
    pub engine: Engine,
    /// The machine, when known.
    pub mac: Option<Mac>,
    /// The path asked for.
    pub path: String,
    /// The client.
    pub client: IpAddr,
    /// What was fetched.
    pub what: FetchKind,
    /// Status sent (200/206).
    pub status: u16,
    /// Bytes the body should have.
    pub expected: u64,
    /// When the request began.
    pub started: Instant,
}

/// Wraps a byte stream; emits the report when the stream ends or is dropped.
pub struct Metered<S> {
    inner: S,
    sent: u64,
    report: Option<Report>,
}

impl<S> Metered<S> {
    /// Meters `inner`.
    pub fn new(inner: S, report: Report) -> Metered<S> {
        Metered {
            inner,
            sent: 0,
            report: Some(report),
        }
    }

    fn finish(&mut self) {
        if let Some(r) = self.report.take() {
            r.finish(self.sent);
        }
    }
}

impl Report {
    /// Emits the one `http-fetch` event of a body of which `sent` bytes went out: its
    /// status if all of it did, else [`CLIENT_CLOSED`]. Shared by [`Metered`] (hyper's
    /// path) and the sendfile path (`super::front`), so both report alike.
    pub fn finish(self, sent: u64) {
        let status = if sent == self.expected {
            self.status
        } else {
            CLIENT_CLOSED
        };
        self.engine.emit(
            self.mac,
            EventKind::HttpFetch {
                path: self.path,
                client: self.client,
                what: self.what,
                status,
                bytes: sent,
                ms: self.started.elapsed().as_millis() as u64,
            },
        );
    }
}

impl<S> Stream for Metered<S>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = Pin::new(&mut self.inner).poll_next(cx);
        match &item {
            Poll::Ready(Some(Ok(b))) => self.sent += b.len() as u64,
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => self.finish(),
            Poll::Pending => {}
        }
        item
    }
}

impl<S> Drop for Metered<S> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn lab() -> crate::config::Lab {
        crate::config::Lab::parse(
            std::path::Path::new("/nonexistent/lab.yaml"),
            "name: t\nboot:\n  kernel: k\n",
        )
        .unwrap()
    }

    fn report(engine: &Engine, expected: u64) -> Report {
        Report {
            engine: engine.clone(),
            mac: None,
            path: "/assets/k".into(),
            client: "127.0.0.1".parse().unwrap(),
            what: FetchKind::Kernel,
            status: 200,
            expected,
            started: Instant::now(),
        }
    }

    fn chunks() -> impl Stream<Item = std::io::Result<Bytes>> + Unpin {
        futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"abcd")),
            Ok(Bytes::from_static(b"ef")),
        ])
    }

    fn fetched(ev: &crate::engine::Event) -> (u16, u64) {
        match &ev.kind {
            EventKind::HttpFetch { status, bytes, .. } => (*status, *bytes),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn complete_stream_reports_once_with_its_status() {
        let engine = Engine::new(lab());
        let mut rx = engine.subscribe();
        let mut m = Metered::new(chunks(), report(&engine, 6));
        while m.next().await.is_some() {}
        drop(m);
        assert_eq!(fetched(&rx.recv().await.unwrap()), (200, 6));
        assert!(rx.try_recv().is_err(), "reported twice");
    }

    #[tokio::test]
    async fn dropped_stream_reports_what_was_sent() {
        let engine = Engine::new(lab());
        let mut rx = engine.subscribe();
        let mut m = Metered::new(chunks(), report(&engine, 6));
        assert!(m.next().await.is_some());
        drop(m);
        assert_eq!(fetched(&rx.recv().await.unwrap()), (CLIENT_CLOSED, 4));
    }
}
