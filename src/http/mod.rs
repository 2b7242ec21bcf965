//! HTTP: per-node iPXE scripts, boot assets, NoCloud data; and the loopback admin API.
//!
//! ```text
//! GET|HEAD /boot.ipxe?mac=M, /boot/M.ipxe   iPXE script (Boot), wait loop (Hold), 404 (Ignore)
//! GET|HEAD /assets/NAME[?mac=M]             a file named in lab.yaml's boot section, streamed
//! GET|HEAD /nocloud/M/{meta,user,vendor}-data, /nocloud/M/network-config   (also `//`)
//! GET|HEAD /apk/HOST/PATH…                  the package cache (http.apk_cache), see [`apk`]
//! GET|HEAD /snapshot/M                      the k3s server's newest datastore snapshot (to it only)
//! ```
//!
//! Every request ends in exactly one event: `http-fetch` (with `http-start` before a big
//! asset) or `refused` (counted in `counters().http_refused`); the package cache's
//! answers, dozens per node, are counted and summarised in `apk-cache` events instead. The server asks the engine
//! what a MAC gets and never decides policy itself. Request targets are classified by
//! [`route`] before anything touches the disk.

pub mod admin;
pub mod apk;
mod assets;
mod chunks;
pub mod client;
pub mod conn;
pub mod front;
mod meter;
mod nocloud;
pub mod range;
pub mod route;
mod script;
mod snapshot;
pub mod tls;
pub mod userdata_gate;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, Extensions, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EventKind, FetchKind, Source};
use crate::mac::Mac;

pub use assets::START_EVENT_BYTES;
pub use meter::CLIENT_CLOSED;
use route::{printable, Route};

/// Why an HTTP server could not run.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("server on {addr} failed: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Which address each node fetched its boot script from, and the reverse. Used to
/// attribute asset fetches to a MAC when the URL carries none.
/// Only MACs that got a real boot script are recorded, so the size is bounded by the lab.
#[derive(Debug, Default)]
pub struct BootClients {
    maps: Mutex<(HashMap<Mac, IpAddr>, HashMap<IpAddr, Mac>)>,
}

impl BootClients {
    /// Records that `mac` fetched its boot script from `ip`.
    pub fn record(&self, mac: Mac, ip: IpAddr) {
        let mut g = crate::engine::lock(&self.maps);
        if let Some(old) = g.0.insert(mac, ip) {
            if g.1.get(&old) == Some(&mac) {
                g.1.remove(&old);
            }
        }
        g.1.insert(ip, mac);
    }

    /// The address `mac` last fetched its boot script from.
    pub fn ip_of(&self, mac: &Mac) -> Option<IpAddr> {
        crate::engine::lock(&self.maps).0.get(mac).copied()
    }

    /// The MAC that last fetched a boot script from `ip`.
    pub fn mac_of(&self, ip: &IpAddr) -> Option<Mac> {
        crate::engine::lock(&self.maps).1.get(ip).copied()
    }
}

/// Shared state of the boot server.
#[derive(Clone)]
pub struct HttpState {
    /// The engine.
    pub engine: Engine,
    /// Boot-script addresses.
    pub clients: Arc<BootClients>,
    /// The package cache's state.
    pub apk: Arc<apk::ApkCache>,
}

/// One request, as the handlers see it.
pub(crate) struct Ctx {
    pub engine: Engine,
    pub clients: Arc<BootClients>,
    pub client: IpAddr,
    pub head: bool,
    /// Path only, printable (for events).
    pub path: String,
    /// Path and query, printable (for refusals).
    pub target: String,
    pub headers: HeaderMap,
    pub started: Instant,
}

impl Ctx {
    /// A text answer (200) and its `http-fetch` event. A HEAD fetches nothing: it is
    /// reported as `other`, so the node does not advance.
    pub fn text(&self, mac: Option<Mac>, what: FetchKind, body: String) -> Response {
        let len = body.len() as u64;
        if self.head {
            self.fetched(mac, FetchKind::Other, 200, 0);
        } else {
            self.fetched(mac, what, 200, len);
        }
        let builder = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(header::CONTENT_LENGTH, len)
            .header(header::CACHE_CONTROL, "no-store");
        let body = if self.head {
            Body::empty()
        } else {
            Body::from(body)
        };
        builder.body(body).unwrap_or_else(|_| fallback_500())
    }

    /// Emits `http-fetch` for a response sent whole.
    pub fn fetched(&self, mac: Option<Mac>, what: FetchKind, status: u16, bytes: u64) {
        self.engine.emit(
            mac,
            EventKind::HttpFetch {
                path: self.path.clone(),
                client: self.client,
                what,
                status,
                bytes,
                ms: self.started.elapsed().as_millis() as u64,
            },
        );
    }

    /// Refuses the request: counts it, emits `refused`, answers `status` with a short reason.
    pub fn refuse(&self, mac: Option<Mac>, status: StatusCode, reason: &str) -> Response {
        self.engine
            .counters()
            .http_refused
            .fetch_add(1, Ordering::Relaxed);
        self.engine.emit(
            mac,
            EventKind::Refused {
                source: Source::Http,
                client: self.client.to_string(),
                what: self.target.clone(),
                reason: reason.to_string(),
            },
        );
        let body = format!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("refused")
        );
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

fn fallback_500() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// The boot server's router (every path goes through [`route::route`]).
pub fn router(engine: Engine) -> Router {
    router_with(engine, Arc::new(apk::ApkCache::default()))
}

fn router_with(engine: Engine, apk: Arc<apk::ApkCache>) -> Router {
    router_for(HttpState {
        engine,
        clients: Arc::new(BootClients::default()),
        apk,
    })
}

fn router_for(state: HttpState) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// The client's address: from [`conn::Peer`] (our listener) or a plain `SocketAddr`
/// connect info (a router served by someone else); unspecified if neither is there.
fn client_addr(ext: &Extensions) -> IpAddr {
    ext.get::<ConnectInfo<conn::Peer>>()
        .map(|c| c.0 .0)
        .or_else(|| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0))
        .map(|a| a.ip().to_canonical())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

async fn dispatch(
    State(st): State<HttpState>,
    ext: Extensions,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let target = match uri.query() {
        Some(q) => format!("{}?{q}", uri.path()),
        None => uri.path().to_string(),
    };
    let apk = st.apk;
    let ctx = Ctx {
        engine: st.engine,
        clients: st.clients,
        client: client_addr(&ext),
        head: method == Method::HEAD,
        path: printable(uri.path()),
        target: printable(&target),
        headers,
        started: Instant::now(),
    };
    if method != Method::GET && method != Method::HEAD {
        return ctx.refuse(None, StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    match route::route(uri.path(), uri.query()) {
        Route::Bad(e) => ctx.refuse(None, StatusCode::BAD_REQUEST, &e.to_string()),
        Route::NotFound => ctx.refuse(None, StatusCode::NOT_FOUND, "nothing is served here"),
        Route::BootScript(Err(e)) => ctx.refuse(None, StatusCode::BAD_REQUEST, &e.to_string()),
        Route::BootScript(Ok(mac)) => script::serve(&ctx, mac, uri.query()).await,
        Route::Asset { name, mac } => assets::serve(&ctx, &name, mac).await,
        Route::Ipxe { name } => assets::serve_ipxe(&ctx, &name).await,
        Route::Apk { segs } => apk::serve(&ctx, &apk, &segs).await,
        Route::Snapshot(Err(e)) => ctx.refuse(None, StatusCode::BAD_REQUEST, &e.to_string()),
        Route::Snapshot(Ok(mac)) => snapshot::serve(&ctx, mac).await,
        Route::NoCloud { mac: Err(e), .. } => {
            ctx.refuse(None, StatusCode::BAD_REQUEST, &e.to_string())
        }
        Route::NoCloud {
            mac: Ok(_),
            file: None,
        } => ctx.refuse(None, StatusCode::NOT_FOUND, "not a NoCloud file"),
        Route::NoCloud {
            mac: Ok(mac),
            file: Some(f),
        } => nocloud::serve(&ctx, mac, f).await,
    }
}

/// Serves the boot HTTP routes on an already bound listener until `cancel` fires, with
/// the default connection [`conn::Limits`].
pub async fn serve_listener(
    engine: Engine,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    serve_listener_with(engine, listener, cancel, conn::Limits::default()).await
}

/// Serves the boot HTTP routes on a bound listener with explicit connection limits.
/// Emits `server-up` with the listener's address and `server-down` when it stops.
pub async fn serve_listener_with(
    engine: Engine,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
    limits: conn::Limits,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    engine.emit(
        None,
        EventKind::ServerUp {
            source: Source::Http,
            addr: addr.to_string(),
        },
    );
    let apk = Arc::new(apk::ApkCache::default());
    let state = HttpState {
        engine: engine.clone(),
        clients: Arc::new(BootClients::default()),
        apk: Arc::clone(&apk),
    };
    let app = router_for(state.clone()).into_make_service_with_connect_info::<conn::Peer>();
    // The package cache's summaries: what a burst left pending is reported in time.
    let ticker = {
        let (engine, apk) = (engine.clone(), Arc::clone(&apk));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(apk::report::REPORT_EVERY);
            loop {
                tick.tick().await;
                apk.flush(&engine, false);
            }
        })
    };
    // Plain asset GETs are sent by the front with sendfile; hyper gets the rest.
    let front_tasks = tokio_util::task::TaskTracker::new();
    let front = front::Front::new(
        conn::Guarded::new(listener, limits, Some(engine.clone())),
        state,
        front_tasks.clone(),
        cancel.clone(),
    )?;
    let res = axum::serve(front, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
    // As hyper's graceful shutdown does, the front's bodies in flight are finished.
    front_tasks.close();
    front_tasks.wait().await;
    ticker.abort();
    apk.flush(&engine, true);
    // `server-down` is reported by app::start_servers for every server alike.
    res.map_err(|source| HttpError::Serve { addr, source })?;
    Ok(())
}

/// Runs the boot HTTP server on its plan's address (lab.yaml's `http.bind`:`http.port`)
/// until `cancel` fires.
pub async fn serve(
    engine: Engine,
    plan: crate::config::plan::HttpPlan,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let addr = plan.bind;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    serve_listener(engine, listener, cancel).await
}
