//! `/nocloud/<mac>/<file>`: the NoCloud data tiny-cloud fetches in its boot phase.
//!
//! meta-data and user-data are rendered per node (user-data with the node's secrets);
//! vendor-data and network-config are the renderer's minimal valid documents.
//! user-data carries the k3s token and keys, so it goes only to a client that
//! [`super::userdata_gate`] accepts.

use axum::http::StatusCode;
use axum::response::Response;

use super::route::NoCloudFile;
use super::Ctx;
use crate::engine::FetchKind;
use crate::mac::Mac;

/// Answers one NoCloud request.
pub(crate) async fn serve(ctx: &Ctx, mac: Mac, file: NoCloudFile) -> Response {
    let lab = ctx.engine.lab();
    let Some(node) = lab.node_by_mac(&mac).cloned() else {
        return ctx.refuse(
            None,
            StatusCode::NOT_FOUND,
            &format!("{mac} is not in the lab"),
        );
    };
    let (what, rendered) = match file {
        NoCloudFile::MetaData => (
            FetchKind::MetaData,
            crate::render::meta_data(&lab, &node).map_err(|e| e.to_string()),
        ),
        NoCloudFile::UserData => {
            if let Err(why) = super::userdata_gate::check(&ctx.engine, mac, ctx.client) {
                return ctx.refuse(Some(mac), StatusCode::FORBIDDEN, &why.to_string());
            }
            let lab2 = lab.clone();
            let job = tokio::task::spawn_blocking(move || {
                let secrets =
                    crate::secrets::for_node(&lab2, node.mac).map_err(|e| e.to_string())?;
                crate::render::user_data(&lab2, &node, &secrets).map_err(|e| e.to_string())
            })
            .await;
            let rendered = job.unwrap_or_else(|e| Err(format!("render task failed: {e}")));
            (FetchKind::UserData, rendered)
        }
        NoCloudFile::VendorData => (
            FetchKind::VendorData,
            Ok(crate::render::vendor_data(&lab, &node)),
        ),
        NoCloudFile::NetworkConfig => (
            FetchKind::NetworkConfig,
            Ok(crate::render::network_config(&lab, &node)),
        ),
    };
    match rendered {
        Ok(body) => ctx.text(Some(mac), what, body),
        Err(e) => ctx.refuse(
            Some(mac),
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot render: {e}"),
        ),
    }
}
