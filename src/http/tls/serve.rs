//! Serving the admin API over TLS: axum's router behind a rustls acceptor.
//!
//! `axum::serve` takes only plain TCP listeners, so this is the small accept loop it
//! would run, with what a listener beyond loopback needs: a handshake that must finish
//! within [`HANDSHAKE_TIMEOUT`] (a host that opens connections and never speaks holds
//! one slot for that long, not forever) and at most [`MAX_CONNECTIONS`] at once (a host
//! that opens thousands is refused at accept, and the lab's boot servers never notice).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The address a request came from, set per connection as a request extension (on
/// loopback, where plain axum serves, every client is this machine).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Accepts on `listener` until `cancel` fires, serving `app` over TLS on each
/// connection. Connections end with `cancel` too (the event stream would otherwise hold
/// the process open).
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: wait a little instead of spinning.
                tracing::warn!("admin API accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("admin API: {MAX_CONNECTIONS} connections open, {peer} refused");
            continue;
        };
        let (acceptor, app, cancel) = (acceptor.clone(), app.clone(), cancel.clone());
        tokio::spawn(async move {
            let _slot = slot;
            serve_one(tcp, peer, acceptor, app, cancel).await;
        });
    }
}

async fn serve_one(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    cancel: CancellationToken,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!("admin API: TLS handshake with {peer}: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("admin API: {peer} did not finish the TLS handshake in time");
            return;
        }
    };
    let app = app.layer(axum::Extension(Peer(peer)));
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app));
    tokio::select! {
        r = conn => if let Err(e) = r {
            tracing::debug!("admin API connection from {peer}: {e}");
        },
        _ = cancel.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tls::{pin, AdminCert, KnownServers};
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;

    #[tokio::test]
    async fn a_silent_host_does_not_stop_a_real_client() {
        let dir = tempfile::tempdir().unwrap();
        let cert = AdminCert::load_or_create(&dir.path().join("state"), &[]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = Router::new().route("/hi", axum::routing::get(|| async { "hi" }));
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve_tls(
            listener,
            cert.acceptor().unwrap(),
            app,
            cancel.clone(),
        ));

        // Connections that never speak, opened first.
        let mut silent = Vec::new();
        for _ in 0..8 {
            silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
        }
        let known = KnownServers::at(dir.path().join("known_servers"));
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            let tls = pin::connect(&addr, &known).await.unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls.stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let req = hyper::Request::get("/hi")
                .header("host", "localhost")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let reply = send.send_request(req).await.unwrap();
            reply.into_body().collect().await.unwrap().to_bytes()
        })
        .await
        .expect("the real client waited behind silent ones");
        assert_eq!(&got[..], b"hi");
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        drop(silent);
    }
}
