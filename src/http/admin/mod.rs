//! The loopback admin API: what `pxelab adopt`, `pxelab nodes` and scripts talk to.
//!
//! ```text
//! GET  /api/lab             {name, path, version}: which lab this instance runs
//! GET  /api/nodes           the snapshot (servers, counters, one row per node)
//! GET  /api/nodes/<mac|hostname>   one node's full record (timeline, log tail)
//! GET  /api/events          Server-Sent Events: one `data:` JSON object per event
//! POST /api/adopt           {mac, role, hostname?, ip?}   -> the node entry
//! POST /api/forget          {mac}
//! POST /api/change          {mac, role?, hostname?}       -> the node entry
//! POST /api/nodes/<mac|hostname>/reboot                     -> {rebooting, addr}
//! POST /api/reload          lab.yaml read again now         -> {reloaded}
//! ```
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

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;
use crate::engine::{Command, CommandError, Engine, EngineError, EventKind, Reply, Source};
use crate::mac::Mac;

mod serve;
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
                ConfigError::Invalid(_) | ConfigError::Syntax { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
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
            CommandError::Node { .. } => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
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

async fn reboot(
    State(st): State<AdminState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let mac = st
        .engine
        .resolve_node(&key)
        .or_else(|| super::route::parse_mac(&key).ok())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no node `{key:.64}`")))?;
    send(&st, Command::Reboot { mac }).await
}

async fn reload(State(st): State<AdminState>) -> Result<Response, ApiError> {
    send(&st, Command::Reload).await
}

/// The event bus as SSE frames: `event:` the kind name, `id:` the sequence number,
/// `data:` the event as JSON. Log lines stay out (as on the headless stream); a client
/// that falls behind gets one `lagged` frame saying how many it missed.
fn event_stream(
    engine: &Engine,
    cancel: CancellationToken,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    BroadcastStream::new(engine.subscribe())
        .filter_map(|r| async move {
            match r {
                Ok(ev) if ev.kind.is_node_local() => None,
                Ok(ev) => {
                    let data = serde_json::to_string(&ev).ok()?;
                    Some(Ok(SseEvent::default()
                        .event(ev.kind.name())
                        .id(ev.seq.to_string())
                        .data(data)))
                }
                Err(BroadcastStreamRecvError::Lagged(n)) => Some(Ok(SseEvent::default()
                    .event("lagged")
                    .data(format!("{{\"event\":\"lagged\",\"skipped\":{n}}}")))),
            }
        })
        .take_until(cancel.cancelled_owned())
}

async fn events(State(st): State<AdminState>) -> Response {
    Sse::new(event_stream(&st.engine, st.cancel.clone()))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Whether a `Host:` header names this machine's loopback.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "::1"
    )
}

async fn only_loopback_hosts(req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(loopback_host);
    if !ok {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "the admin API answers only requests addressed to 127.0.0.1 or localhost",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether `presented` equals `token`, in time independent of where they differ.
fn same_token(presented: &[u8], token: &[u8]) -> bool {
    presented.len() == token.len()
        && presented
            .iter()
            .zip(token)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Refuses (401, and a `refused` event) a request without the right bearer token.
async fn require_token(State(st): State<AdminState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let why = match presented {
        Some(t) if same_token(t.as_bytes(), st.token.as_bytes()) => return next.run(req).await,
        Some(_) => "wrong admin token",
        None => "no admin token",
    };
    st.engine
        .counters()
        .http_refused
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    st.engine.emit(
        None,
        EventKind::Refused {
            source: Source::Admin,
            client: req
                .extensions()
                .get::<crate::http::tls::serve::Peer>()
                .map_or_else(|| "127.0.0.1".to_string(), |p| p.0.ip().to_string()),
            what: format!("{} {:.80}", req.method(), req.uri().path()),
            reason: why.to_string(),
        },
    );
    let dir = st.engine.lab().state_dir();
    let mut r = ApiError::new(
        StatusCode::UNAUTHORIZED,
        format!(
            "{why}: send `Authorization: Bearer <token>` with the token in {} \
             (readable by the user running pxelab up)",
            dir.join(crate::statedir::ADMIN_TOKEN_FILE).display()
        ),
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    r
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
        .route("/api/events", get(events))
        .route("/api/adopt", post(adopt))
        .route("/api/forget", post(forget))
        .route("/api/change", post(change))
        .route("/api/nodes/{key}/reboot", post(reboot))
        .route("/api/reload", post(reload))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API route") })
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

#[cfg(test)]
mod tests {
    use super::{loopback_host, same_token};

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abc", b"abc"));
        for bad in [&b"abd"[..], b"ab", b"abcd", b""] {
            assert!(!same_token(bad, b"abc"), "{bad:?}");
        }
    }

    #[test]
    fn host_header_must_name_loopback() {
        for h in [
            "127.0.0.1:7480",
            "localhost:7480",
            "LOCALHOST",
            "[::1]:7480",
        ] {
            assert!(loopback_host(h), "{h}");
        }
        for h in ["evil.example:7480", "127.0.0.1.evil.example", "", "[::2]:1"] {
            assert!(!loopback_host(h), "{h}");
        }
    }
}
