//! The admin API's power and rolling-reboot routes: the same [`Command`]s the console's
//! keys and `pxelab power` / `pxelab roll` send.
//!
//! ```text
//! POST /api/nodes/<mac|hostname>/power  {action: on|off|cycle}  -> {powered, action, detail}
//! POST /api/roll   {server?: first|last|skip, confirm_server?: bool, node_timeout_s?: N}
//!                                                   -> {rolling: [hostnames], left_out}
//! POST /api/roll/stop                               -> {stopped: bool}
//! ```
//!
//! A roll's progress is the `roll` events on `GET /api/events`; rebooting the k3s
//! server needs `confirm_server: true` (409 otherwise, saying why).

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;

use super::{node_mac, send, AdminState, ApiError};
use crate::engine::roll::{RollOptions, ServerTurn};
use crate::engine::service::PowerAction;
use crate::engine::Command;

/// `POST /api/nodes/<key>/power` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerRequest {
    /// `on`, `off` or `cycle`.
    pub action: PowerAction,
}

/// `POST /api/roll` body (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollRequest {
    /// Where the k3s server goes (default `last`).
    #[serde(default)]
    pub server: ServerTurn,
    /// The operator confirmed rebooting the server.
    #[serde(default)]
    pub confirm_server: bool,
    /// Seconds each node may take to be Ready again.
    #[serde(default)]
    pub node_timeout_s: Option<u64>,
}

pub(super) async fn power(
    State(st): State<AdminState>,
    Path(key): Path<String>,
    body: Result<Json<PowerRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let mac = node_mac(&st, &key)?;
    send(
        &st,
        Command::Power {
            mac,
            action: req.action,
        },
    )
    .await
}

pub(super) async fn roll(
    State(st): State<AdminState>,
    body: Result<Json<RollRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let mut opts = RollOptions {
        server: req.server,
        confirm_server: req.confirm_server,
        ..Default::default()
    };
    if let Some(s) = req.node_timeout_s {
        opts.node_timeout = Duration::from_secs(s.max(1));
    }
    send(&st, Command::Roll(opts)).await
}

pub(super) async fn roll_stop(State(st): State<AdminState>) -> Result<Response, ApiError> {
    send(&st, Command::RollStop).await
}
