//! The loopback admin API: what `pxelab adopt`, `pxelab nodes` and scripts talk to.
//!
//! ```text
//! GET  /api/lab             {name, path, version}: which lab this instance runs
//! GET  /api/nodes           the snapshot (servers, counters, one row per node)
//! GET  /api/nodes/<mac|hostname>   one node's full record (timeline, log tail)
//! GET  /api/events[?logs=1] Server-Sent Events: one `data:` JSON object per event
//! GET  /api/state           {seq, snapshot, records}: what `pxelab attach` mirrors
//! GET  /api/lab/file        {path, lab}: lab.yaml as parsed, secrets masked
//! POST /api/adopt           {mac, role, hostname?, ip?}   -> the node entry
//! POST /api/forget          {mac}
//! POST /api/change          {mac, role?, hostname?}       -> the node entry
//! POST /api/nodes/<mac|hostname>/reboot                     -> {rebooting, addr}
//! POST /api/nodes/<mac|hostname>/power  {action: on|off|cycle} -> {powered, action, detail}
//! POST /api/reload          lab.yaml read again now         -> {reloaded}
//! POST /api/roll  {server?, confirm_server?, node_timeout_s?}  POST /api/roll/stop
//! ```
//!
//! [`guard`] checks who asks, [`mirror`] serves what an attached console mirrors, and
//! [`scrub`] masks every secret value pxelab knows in whatever goes out; the power and roll routes are in [`power`].
//!
//! Every POST is one [`Command`] sent through the engine's [`crate::engine::Commands`],
//! the same surface the console uses: anything the console can do, the API can do.
//!
//! Bound to 127.0.0.1 only, whatever `http.bind` says. Requests must be addressed to
//! 127.0.0.1/localhost (`Host:`), which keeps web pages that rebind a DNS name to
//! 127.0.0.1 out, and must carry `Authorization: Bearer <token>` with the token made at
//! start into `.pxelab/admin-token` (0600 in a 0700 folder): loopback alone let any
//! local user adopt, forget and re-role nodes. Bodies must be JSON. Errors are
//! `{"error": "...", "status": N}`.

use std::net::Ipv4Addr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;
use crate::engine::{Command, CommandError, Engine, EngineError, Reply};
use crate::mac::Mac;

mod guard;
pub mod mirror;
mod power;
pub mod scrub;
mod serve;
use guard::{only_loopback_hosts, require_token};
pub use power::{PowerRequest, RollRequest};
pub use serve::serve;

#[derive(Clone)]
struct AdminState {
    engine: Engine,
    cancel: CancellationToken,
    /// The bearer token every request must carry (never logged, never answered).
    token: std::sync::Arc<str>,
}

/// An error answer: status and message, sent as JSON.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.message, "status": self.status.as_u16()});
        (self.status, Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let status = match &e {
            EngineError::UnknownRole { .. }
            | EngineError::BadHostname { .. }
            | EngineError::GroupMac { .. } => StatusCode::BAD_REQUEST,
            EngineError::NotInLab { .. } => StatusCode::NOT_FOUND,
            EngineError::Config(c) => match c {
                ConfigError::AlreadyKnown { .. } | ConfigError::ChangedOnDisk { .. } => {
                    StatusCode::CONFLICT
                }
                ConfigError::Invalid(_)
                | ConfigError::Syntax { .. }
                | ConfigError::TooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                ConfigError::Io { .. } | ConfigError::Edit { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> ApiError {
        match e {
            CommandError::Lab(e) => ApiError::from(e),
            CommandError::Node { .. } | CommandError::Remote { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, e.to_string())
            }
            CommandError::Refused { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            CommandError::NotSupported { .. } => {
                ApiError::new(StatusCode::NOT_IMPLEMENTED, e.to_string())
            }
            CommandError::NoService { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

impl From<crate::statedir::StateError> for ApiError {
    fn from(e: crate::statedir::StateError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, r.body_text())
    }
}

fn parse_mac(s: &str) -> Result<Mac, ApiError> {
    super::route::parse_mac(s)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("`{s:.64}` is not a MAC")))
}

/// `POST /api/adopt` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptRequest {
    /// The machine.
    pub mac: String,
    /// Its role.
    pub role: String,
    /// Its hostname (default: suggested from the lab's pattern).
    #[serde(default)]
    pub hostname: Option<String>,
    /// A fixed address.
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
}

/// `POST /api/forget` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgetRequest {
    /// The machine.
    pub mac: String,
}

/// `POST /api/change` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// The machine.
    pub mac: String,
    /// New role.
    #[serde(default)]
    pub role: Option<String>,
    /// New hostname.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// Sends a command through the engine's command surface and answers its reply as JSON.
async fn send(st: &AdminState, command: Command) -> Result<Response, ApiError> {
    let body = match st.engine.commands().send(command).await? {
        Reply::Node(entry) => serde_json::to_value(entry).unwrap_or_default(),
        Reply::Forgotten(mac) => serde_json::json!({ "forgotten": mac }),
        Reply::Rebooting { mac, addr } => serde_json::json!({ "rebooting": mac, "addr": addr }),
        Reply::Powered {
            mac,
            action,
            detail,
        } => {
            serde_json::json!({ "powered": mac, "action": action, "detail": detail })
        }
        Reply::Reloaded { changed } => serde_json::json!({ "reloaded": changed }),
        Reply::RollStarted { order, left_out } => {
            serde_json::json!({ "rolling": order, "left_out": left_out })
        }
        Reply::RollStopped { was_running } => serde_json::json!({ "stopped": was_running }),
    };
    Ok(Json(body).into_response())
}

async fn lab_info(State(st): State<AdminState>) -> Json<serde_json::Value> {
    let lab = st.engine.lab();
    Json(serde_json::json!({
        "name": lab.file.name,
        "path": lab.path,
        "version": st.engine.version(),
    }))
}

async fn nodes(State(st): State<AdminState>) -> Response {
    Json(st.engine.snapshot()).into_response()
}

async fn node(State(st): State<AdminState>, Path(key): Path<String>) -> Response {
    let found = st
        .engine
        .resolve_node(&key)
        .or_else(|| super::route::parse_mac(&key).ok())
        .and_then(|m| st.engine.node(&m));
    match found {
        Some(rec) => Json(rec).into_response(),
        None => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no node `{key:.64}`")).into_response()
        }
    }
}

async fn adopt(
    State(st): State<AdminState>,
    body: Result<Json<AdoptRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let mac = parse_mac(&req.mac)?;
    // A group MAC is refused by the service itself (one rule for every face).
    let command = Command::Adopt {
        mac,
        role: req.role,
        hostname: req.hostname,
        ip: req.ip,
    };
    send(&st, command).await
}

async fn forget(
    State(st): State<AdminState>,
    body: Result<Json<ForgetRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let mac = parse_mac(&req.mac)?;
    send(&st, Command::Forget { mac }).await
}

async fn change(
    State(st): State<AdminState>,
    body: Result<Json<ChangeRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let mac = parse_mac(&req.mac)?;
    if req.role.is_none() && req.hostname.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "nothing to change: give role and/or hostname",
        ));
    }
    let command = Command::Change {
        mac,
        role: req.role,
        hostname: req.hostname,
    };
    send(&st, command).await
}

/// The node a path names (hostname or MAC), else 404.
fn node_mac(st: &AdminState, key: &str) -> Result<Mac, ApiError> {
    st.engine
        .resolve_node(key)
        .or_else(|| super::route::parse_mac(key).ok())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no node `{key:.64}`")))
}

async fn reboot(
    State(st): State<AdminState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let mac = node_mac(&st, &key)?;
    send(&st, Command::Reboot { mac }).await
}

async fn reload(State(st): State<AdminState>) -> Result<Response, ApiError> {
    send(&st, Command::Reload).await
}

/// The admin API's router; every route needs `token` as a bearer token.
pub fn router(engine: Engine, cancel: CancellationToken, token: String) -> Router {
    router_for(engine, cancel, token, true)
}

/// The admin API's routes; `loopback_only` refuses requests addressed to any other
/// host name (a browser tricked by DNS rebinding). Over TLS beyond loopback the token
/// and the pinned certificate guard instead, and clients name the bound address.
pub fn router_for(
    engine: Engine,
    cancel: CancellationToken,
    token: String,
    loopback_only: bool,
) -> Router {
    let state = AdminState {
        engine,
        cancel,
        token: token.into(),
    };
    Router::new()
        .route("/api/lab", get(lab_info))
        .route("/api/nodes", get(nodes))
        .route("/api/nodes/{key}", get(node))
        .route("/api/events", get(mirror::events))
        .route("/api/state", get(mirror::state))
        .route("/api/lab/file", get(mirror::lab_file))
        .route("/api/adopt", post(adopt))
        .route("/api/forget", post(forget))
        .route("/api/change", post(change))
        .route("/api/nodes/{key}/reboot", post(reboot))
        .route("/api/reload", post(reload))
        .route("/api/nodes/{key}/power", post(power::power))
        .route("/api/roll", post(power::roll))
        .route("/api/roll/stop", post(power::roll_stop))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            scrub::scrub_json,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| async move {
                if loopback_only {
                    only_loopback_hosts(req, next).await
                } else {
                    next.run(req).await
                }
            },
        ))
        .with_state(state)
}
