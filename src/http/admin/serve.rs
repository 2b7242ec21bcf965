//! Starting the admin API: plain HTTP on loopback, or TLS beyond it (see
//! [`crate::http::tls`]).

use tokio_util::sync::CancellationToken;

use super::{router, router_for};
use crate::config::plan::AdminPlan;
use crate::engine::{Engine, EventKind, Source};
use crate::http::HttpError;

/// Runs the admin API on 127.0.0.1:`http.admin_port` until `cancel` fires.
pub async fn serve(
    engine: Engine,
    plan: AdminPlan,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let addr = plan.bind;
    if plan.tls() {
        return serve_tls(engine, plan, cancel).await;
    }
    // A fresh token per start: one read from an earlier run opens nothing now.
    let token = crate::statedir::create_admin_token(&engine.lab())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    engine.emit(
        None,
        EventKind::ServerUp {
            source: Source::Admin,
            addr: addr.to_string(),
        },
    );
    let app = router(engine.clone(), cancel.clone(), token);
    let res = axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
    // `server-down` is reported by app::start_servers for every server alike.
    res.map_err(|source| HttpError::Serve { addr, source })?;
    Ok(())
}

/// The admin API beyond loopback: TLS with pxelab's own certificate, and a token that
/// stays the same across restarts (remote operators copy it once; delete
/// `.pxelab/admin-token` to change it).
async fn serve_tls(
    engine: Engine,
    plan: AdminPlan,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let addr = plan.bind;
    let lab = engine.lab();
    let token = match crate::statedir::read_admin_token(&lab)? {
        Some(t) => t,
        None => crate::statedir::create_admin_token(&lab)?,
    };
    let cert = crate::http::tls::AdminCert::load_or_create(&lab.state_dir(), &[addr.ip()])?;
    let acceptor = cert.acceptor()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    engine.emit(
        None,
        EventKind::ServerUp {
            source: Source::Admin,
            addr: format!("https://{addr} (certificate {})", cert.fingerprint()),
        },
    );
    let app = router_for(engine.clone(), cancel.clone(), token, false);
    crate::http::tls::serve::serve_tls(listener, acceptor, app, cancel).await;
    Ok(())
}
