//! One connection at the front: read request heads, answer the plain asset GETs with
//! sendfile, hand the connection to hyper at the first request that is anything else.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Instant, SystemTime};

use axum::http::{header, HeaderValue, StatusCode};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::request::{self, Fast, Parsed};
use super::{assets, GuardedStream, Handoff, HttpState, Rewound};
use crate::http::route::printable;
use crate::http::Ctx;

/// A head not complete in this many bytes is hyper's to judge (it allows more).
const MAX_HEAD: usize = 16 * 1024;

/// Bytes per sendfile call. The kernel sends what the socket buffer takes and returns;
/// a large count only saves calls when it has room (nginx's `sendfile_max_chunk` is
/// 2 MiB; the same here).
const CHUNK: u64 = 2 << 20;

/// Serves `io` until it closes, fails, is handed to hyper, or `cancel` fires between
/// two requests.
pub(super) async fn connection(
    mut io: GuardedStream,
    peer: SocketAddr,
    state: HttpState,
    hyper: mpsc::UnboundedSender<Handoff>,
    cancel: CancellationToken,
) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let req = loop {
            if !buf.is_empty() {
                match request::parse(&buf) {
                    Parsed::Partial if buf.len() < MAX_HEAD => {}
                    Parsed::Fast(f) => break Some(f),
                    Parsed::Partial | Parsed::Hyper => break None,
                }
            }
            let read = tokio::select! {
                r = io.read_buf(&mut buf) => r,
                () = cancel.cancelled(), if buf.is_empty() => return,
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let Some(req) = req else {
            let _ = hyper.send((rewound(io, buf), peer));
            return;
        };
        let ctx = context(&state, peer, &req);
        let Some(whole) = assets::whole(&ctx, &req.name, req.mac).await else {
            let _ = hyper.send((rewound(io, buf), peer));
            return;
        };
        buf.advance(req.head_len);
        if !send(&mut io, &ctx, whole).await {
            return;
        }
    }
}

fn rewound(inner: GuardedStream, buf: BytesMut) -> Rewound {
    Rewound {
        prefix: buf.freeze(),
        inner,
    }
}

/// The request as hyper's handlers would see it (see `super::super::dispatch`).
fn context(state: &HttpState, peer: SocketAddr, req: &Fast) -> Ctx {
    Ctx {
        engine: state.engine.clone(),
        clients: state.clients.clone(),
        client: peer.ip().to_canonical(),
        head: false,
        path: printable(&req.path),
        target: printable(&req.target),
        headers: req.headers.clone(),
        started: Instant::now(),
    }
}

/// The 200 head hyper would send for the whole file.
fn response_head(opened: &assets::Opened) -> Vec<u8> {
    let mut h = opened.headers();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(opened.len));
    if let Ok(d) = HeaderValue::from_str(&assets::http_date(SystemTime::now())) {
        h.insert(header::DATE, d);
    }
    let mut out = b"HTTP/1.1 200 OK\r\n".to_vec();
    for (k, v) in &h {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Sends the head and the whole file; reports it as hyper's path does. Whether the
/// connection can take another request.
async fn send(io: &mut GuardedStream, ctx: &Ctx, whole: assets::Whole) -> bool {
    let len = whole.opened.len;
    let report = assets::start_body(ctx, whole.mac, whole.kind, StatusCode::OK, len);
    let corked = io.set_cork(true).is_ok();
    let mut offset = 0u64;
    if io.write_all(&response_head(&whole.opened)).await.is_ok() {
        let fd = whole.opened.file.as_fd();
        while offset < len {
            let n = (len - offset).min(CHUNK) as usize;
            match io.sendfile(fd, &mut offset, n).await {
                // Ok(0): the file shrank; the connection cannot be trusted further.
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    report.finish(offset);
    ctx.engine
        .counters()
        .http_sendfile
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let flushed = !corked || io.set_cork(false).is_ok();
    offset == len && flushed
}
