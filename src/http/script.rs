//! `/boot.ipxe?mac=…` and `/boot/<mac>.ipxe`: what iPXE runs next, as the engine decides.
//!
//! In a mixed lab (`boot.arch` has profiles) a node whose architecture lab.yaml leaves
//! open is first answered with a one-line script that asks again with iPXE's own
//! `${buildarch}` (`&arch=arm64`): the running iPXE knows what it was built for, and
//! its answer picks the profile (see [`crate::render::files`]).

use axum::http::StatusCode;
use axum::response::Response;

use super::Ctx;
use crate::config::Arch;
use crate::engine::{BootDecision, FetchKind};
use crate::mac::Mac;

/// The script that asks again with the architecture iPXE was built for.
pub fn arch_probe_script(base: &str, mac: Mac) -> String {
    format!("#!ipxe\nchain --autofree {base}/boot.ipxe?mac={mac}&arch=${{buildarch}}\n")
}

/// Answers a boot-script request: the node's script (Boot), the wait loop (Hold) or 404
/// (Ignore). A held machine asks again every few seconds, so it boots as soon as
/// adoption makes `decide` say Boot.
pub(crate) async fn serve(ctx: &Ctx, mac: Mac, query: Option<&str>) -> Response {
    let asked = match super::route::query_param(query, "arch") {
        None => None,
        Some(Ok(a)) => match Arch::from_name(&a) {
            Some(a) => Some(a),
            None => {
                return ctx.refuse(
                    Some(mac),
                    StatusCode::BAD_REQUEST,
                    &format!("no boot profile for iPXE architecture `{a}` (x86_64, i386, arm64)"),
                )
            }
        },
        Some(Err(e)) => return ctx.refuse(Some(mac), StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // `decide` touches no file (under `unknown: adopt` it only queues the adoption for
    // the engine service), so it runs here on the worker.
    let decision = ctx.engine.decide(mac);
    let lab = ctx.engine.lab();
    match decision {
        BootDecision::Boot(mut node) => {
            // Open when lab.yaml says nothing (`decide` may have filled in what DHCP
            // showed: iPXE's own word is the better one).
            let open = lab
                .node_by_mac(&mac)
                .is_none_or(|n| crate::render::files::configured_arch(&lab, n).is_none());
            if open && asked.is_none() && crate::render::files::has_profiles(&lab) {
                let probe = arch_probe_script(&lab.http_base(), mac);
                return ctx.text(Some(mac), FetchKind::ArchProbe, probe);
            }
            if open {
                if let Some(a) = asked {
                    node.arch = Some(a);
                    ctx.engine.emit(
                        Some(mac),
                        crate::engine::EventKind::ArchSeen {
                            arch: a,
                            from: "ipxe".to_string(),
                        },
                    );
                }
            }
            script(ctx, &lab, mac, &node)
        }
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

fn script(
    ctx: &Ctx,
    lab: &crate::config::Lab,
    mac: Mac,
    node: &crate::config::NodeEntry,
) -> Response {
    match crate::render::ipxe_script(lab, node) {
        Ok(script) => {
            ctx.clients.record(mac, ctx.client);
            ctx.text(Some(mac), FetchKind::Script, script)
        }
        Err(e) => ctx.refuse(
            Some(mac),
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot render the iPXE script: {e}"),
        ),
    }
}
