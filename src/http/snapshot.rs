//! `/snapshot/<mac>`: the newest datastore snapshot of the k3s server, fetched by the
//! server's own user-data before k3s starts ([`crate::watch::snapshot`] takes them).
//!
//! A snapshot holds the cluster's CA keys and token, so it goes only where the server's
//! user-data goes: to the k3s-server node, asked from an address it really holds (the
//! same [`super::userdata_gate`]). Any other node, or the right node from elsewhere, is
//! refused (404 for a node that is not the server, 403 for the wrong address). No
//! snapshot yet (the first boot) is a plain 404, no problem.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Ctx;
use crate::engine::FetchKind;
use crate::mac::Mac;

/// Answers one snapshot request.
pub(crate) async fn serve(ctx: &Ctx, mac: Mac) -> Response {
    let lab = ctx.engine.lab();
    if !lab.is_k3s_server(&mac) {
        return ctx.refuse(
            Some(mac),
            StatusCode::NOT_FOUND,
            &format!("{mac} is not the lab's k3s server: it has no snapshots"),
        );
    }
    if let Err(why) = super::userdata_gate::check(&ctx.engine, mac, ctx.client) {
        return ctx.refuse(
            Some(mac),
            StatusCode::FORBIDDEN,
            &why.to_string().replace("user-data", "snapshot"),
        );
    }
    let state = lab.state_dir();
    let found = tokio::task::spawn_blocking(move || {
        let path = crate::secrets::snapshots::newest(&state, mac)?;
        std::fs::read(&path).ok()
    })
    .await
    .ok()
    .flatten();
    let Some(body) = found else {
        ctx.fetched(Some(mac), FetchKind::Other, 404, 0);
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no snapshot yet\n",
        )
            .into_response();
    };
    let len = body.len() as u64;
    ctx.fetched(
        Some(mac),
        FetchKind::Other,
        200,
        if ctx.head { 0 } else { len },
    );
    let body = if ctx.head {
        Body::empty()
    } else {
        Body::from(body)
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/gzip")
        .header(header::CONTENT_LENGTH, len)
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_else(|_| super::fallback_500())
}
