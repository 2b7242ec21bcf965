//! `/boot.ipxe?mac=…` and `/boot/<mac>.ipxe`: what iPXE runs next, as the engine decides.

use axum::http::StatusCode;
use axum::response::Response;

use super::Ctx;
use crate::engine::{BootDecision, FetchKind};
use crate::mac::Mac;

/// Answers a boot-script request: the node's script (Boot), the wait loop (Hold) or 404
/// (Ignore). A held machine asks again every few seconds, so it boots as soon as
/// adoption makes `decide` say Boot.
pub(crate) async fn serve(ctx: &Ctx, mac: Mac) -> Response {
    // `decide` touches no file (under `unknown: adopt` it only queues the adoption for
    // the engine service), so it runs here on the worker.
    let decision = ctx.engine.decide(mac);
    let lab = ctx.engine.lab();
    match decision {
        BootDecision::Boot(node) => match crate::render::ipxe_script(&lab, &node) {
            Ok(script) => {
                ctx.clients.record(mac, ctx.client);
                ctx.text(Some(mac), FetchKind::Script, script)
            }
            Err(e) => ctx.refuse(
                Some(mac),
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot render the iPXE script: {e}"),
            ),
        },
        BootDecision::Hold => ctx.text(
            Some(mac),
            FetchKind::HoldScript,
            crate::render::hold_script(&lab, mac),
        ),
        BootDecision::Ignore => ctx.refuse(
            None,
            StatusCode::NOT_FOUND,
            &format!("{mac} is not in the lab (unknown: ignore)"),
        ),
    }
}
