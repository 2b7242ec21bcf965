//! Starting the admin API: plain HTTP on loopback, or TLS beyond it (see
//! [`crate::http::tls`]).

use tokio_util::sync::CancellationToken;

use super::{router, router_for};
use crate::config::plan::AdminPlan;
use crate::engine::{Engine, EventKind, Source};
use crate::http::HttpError;

/// Runs the admin API on `http.admin_bind` (loopback by default):`http.admin_port` until
/// `cancel` fires.
pub async fn serve(
    engine: Engine,
    plan: AdminPlan,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let addr = plan.bind;
    let lab = engine.lab();
    // Beyond loopback: TLS with pxelab's own certificate, and a token that stays the
    // same across restarts (remote operators copy it once; delete
    // `.pxelab/admin-token` to change it). On loopback a fresh token per start: one
    // read from an earlier run opens nothing now.
    let (cert, token) = if plan.tls() {
        let cert = crate::http::tls::AdminCert::load_or_create(&lab.state_dir(), &[addr.ip()])?;
        let token = match crate::statedir::read_admin_token(&lab)? {
            Some(t) => t,
            None => crate::statedir::create_admin_token(&lab)?,
        };
        (Some(cert), token)
    } else {
        (None, crate::statedir::create_admin_token(&lab)?)
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    engine.emit(
        None,
        EventKind::ServerUp {
            source: Source::Admin,
            addr: match &cert {
                Some(c) => format!("https://{addr} (certificate {})", c.fingerprint()),
                None => addr.to_string(),
            },
        },
    );
    // `server-down` is reported by app::start_servers for every server alike.
    match cert {
        Some(cert) => {
            let app = router_for(engine.clone(), cancel.clone(), token, false);
            crate::http::tls::serve::serve_tls(listener, cert.acceptor()?, app, cancel).await;
        }
        None => {
            let app = router(engine.clone(), cancel.clone(), token);
            axum::serve(listener, app)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await
                .map_err(|source| HttpError::Serve { addr, source })?;
        }
    }
    Ok(())
}
