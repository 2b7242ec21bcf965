//! The one HTTP client (on hyper's HTTP/1.1 connection, no hand-written parser): the
//! CLI uses it for the loopback admin API (`pxelab adopt`, `pxelab nodes`), and the
//! simulator for what a node's firmware and `wget` fetch. One request per connection,
//! bounded in time (connect and whole exchange) and in what is kept of the body.
//!
//! Admin requests carry the instance's bearer token from `.pxelab/admin-token`, so only
//! a user who can read that folder can use the API; the token never appears in an error
//! or in `Debug` output.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, USER_AGENT,
};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// How long to wait for a running instance to accept the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a whole request may take (adoption writes lab.yaml).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest reply accepted.
pub const MAX_REPLY: usize = 16 << 20;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing accepted the connection (no instance running).
    #[error("no pxelab admin API on {addr}: {source}")]
    NotRunning {
        /// The address tried.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The connection or the reply took too long.
    #[error("HTTP server on {addr} did not answer in time")]
    Timeout {
        /// The address.
        addr: SocketAddr,
    },
    /// Setting up the socket failed.
    #[error("HTTP to {addr}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The request could not be made (a header value that is not valid HTTP).
    #[error("HTTP request to {addr} not sent: {message}")]
    BadRequest {
        /// The address.
        addr: SocketAddr,
        /// What was wrong (never a header's value: it may be the token).
        message: String,
    },
    /// The exchange failed or the reply is not acceptable HTTP.
    #[error("HTTP server on {addr} sent a malformed reply: {message}")]
    BadReply {
        /// The address.
        addr: SocketAddr,
        /// What was wrong.
        message: String,
    },
}

/// One request: where, what, and the limits it runs under.
#[derive(Clone)]
pub struct Call<'a> {
    /// The server.
    pub addr: SocketAddr,
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The request target (`/api/lab`, `/boot.ipxe?mac=…`).
    pub path: &'a str,
    /// A bearer token for `Authorization`.
    pub bearer: Option<&'a str>,
    /// A JSON body.
    pub json: Option<&'a str>,
    /// The local address to connect from (the simulator's node address), if any.
    pub from: Option<IpAddr>,
    /// `User-Agent`.
    pub user_agent: &'a str,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long the whole exchange may take.
    pub timeout: Duration,
    /// Body bytes kept; the rest is counted only.
    pub keep: usize,
    /// A reply whose body is longer than this is refused.
    pub max_body: Option<u64>,
}

impl std::fmt::Debug for Call<'_> {
    /// Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("addr", &self.addr)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("bearer", &self.bearer.map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl<'a> Call<'a> {
    /// A request with the admin API's limits and nothing else set.
    pub fn new(addr: SocketAddr, method: &'a str, path: &'a str) -> Call<'a> {
        Call {
            addr,
            method,
            path,
            bearer: None,
            json: None,
            from: None,
            user_agent: "pxelab",
            connect_timeout: CONNECT_TIMEOUT,
            timeout: REQUEST_TIMEOUT,
            keep: MAX_REPLY,
            max_body: Some(MAX_REPLY as u64),
        }
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// Body bytes received (all counted, kept or not).
    pub bytes: u64,
    /// The first [`Call::keep`] bytes of the body.
    pub body: Vec<u8>,
}

/// Aborts the connection task when the exchange ends (done, failed or timed out).
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn connect(call: &Call<'_>) -> Result<TcpStream, ClientError> {
    let addr = call.addr;
    let io = |source| ClientError::Io { addr, source };
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io)?;
    if let Some(from) = call.from {
        sock.bind(SocketAddr::new(from, 0)).map_err(io)?;
    }
    match tokio::time::timeout(call.connect_timeout, sock.connect(addr)).await {
        Err(_) => Err(ClientError::Timeout { addr }),
        Ok(Err(source)) => Err(ClientError::NotRunning { addr, source }),
        Ok(Ok(s)) => Ok(s),
    }
}

fn build(call: &Call<'_>) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
    let bad = |message: &str| ClientError::BadRequest {
        addr: call.addr,
        message: message.to_string(),
    };
    let mut b = hyper::Request::builder()
        .method(call.method)
        .uri(call.path)
        .header(HOST, call.addr.to_string())
        .header(USER_AGENT, call.user_agent)
        .header(CONNECTION, "close")
        .header(ACCEPT, "*/*");
    if let Some(t) = call.bearer {
        let v = HeaderValue::from_str(&format!("Bearer {t}"))
            .map_err(|_| bad("the bearer token is not a valid header value"))?;
        b = b.header(AUTHORIZATION, v);
    }
    let body = match call.json {
        Some(j) => {
            b = b.header(CONTENT_TYPE, "application/json");
            Bytes::copy_from_slice(j.as_bytes())
        }
        None => Bytes::new(),
    };
    b.body(Full::new(body))
        .map_err(|e| bad(&format!("{} {}: {e}", call.method, call.path)))
}

async fn exchange(call: &Call<'_>, stream: TcpStream) -> Result<Fetched, ClientError> {
    let addr = call.addr;
    let bad = |message: String| ClientError::BadReply { addr, message };
    let req = build(call)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| bad(e.to_string()))?;
    let _driver = Driver(tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("HTTP connection to {addr}: {e}");
        }
    }));
    let reply = sender
        .send_request(req)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let status = reply.status().as_u16();
    let mut body = reply.into_body();
    let mut got = Fetched {
        status,
        bytes: 0,
        body: Vec::new(),
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad(e.to_string()))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        got.bytes += data.len() as u64;
        if call.max_body.is_some_and(|m| got.bytes > m) {
            return Err(bad("reply too large".into()));
        }
        let room = call.keep.saturating_sub(got.body.len());
        got.body.extend_from_slice(&data[..data.len().min(room)]);
    }
    Ok(got)
}

/// Sends one request and reads the whole reply, within the call's limits.
pub async fn fetch(call: &Call<'_>) -> Result<Fetched, ClientError> {
    let addr = call.addr;
    let run = async {
        let stream = connect(call).await?;
        exchange(call, stream).await
    };
    match tokio::time::timeout(call.timeout, run).await {
        Err(_) => Err(ClientError::Timeout { addr }),
        Ok(r) => r,
    }
}

/// Opens `GET /api/events` on `127.0.0.1:port` and forwards the body's chunks as they
/// come, until the server ends the stream or the receiver is dropped. Returns once the
/// server has answered (and so subscribed): nothing emitted after this returns is
/// missed. No overall time limit: the reader bounds how long it listens.
pub async fn event_stream(
    port: u16,
    token: &str,
) -> Result<tokio::sync::mpsc::Receiver<Bytes>, ClientError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let call = Call {
        bearer: Some(token),
        ..Call::new(addr, "GET", "/api/events")
    };
    let bad = |message: String| ClientError::BadReply { addr, message };
    let stream = connect(&call).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| bad(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let reply = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(build(&call)?))
        .await
        .map_err(|_| ClientError::Timeout { addr })?
        .map_err(|e| bad(e.to_string()))?;
    if !reply.status().is_success() {
        driver.abort();
        return Err(bad(format!(
            "the event stream was refused: HTTP {}",
            reply.status()
        )));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let _driver = Driver(driver);
        let mut body = reply.into_body();
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(d) = frame.data_ref() {
                if tx.send(d.clone()).await.is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}

/// A reply: status code and body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body (JSON for every admin route).
    pub body: String,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `error` message of a JSON error body, else the body itself.
    pub fn error_message(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| self.body.trim().to_string())
    }
}

/// A running instance's admin API: its port and bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct Admin {
    /// `127.0.0.1:port`.
    pub port: u16,
    /// The token from `.pxelab/admin-token`.
    token: String,
}

impl std::fmt::Debug for Admin {
    /// Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("port", &self.port)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Admin {
    /// Sends one request with the token.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        json_body: Option<&str>,
    ) -> Result<Reply, ClientError> {
        request(self.port, method, path, json_body, Some(&self.token)).await
    }

    /// The running instance's events as they come ([`event_stream`]).
    pub async fn events(&self) -> Result<tokio::sync::mpsc::Receiver<Bytes>, ClientError> {
        event_stream(self.port, &self.token).await
    }
}

/// Sends one request to `127.0.0.1:port` (with `token` as its bearer token when given)
/// and reads the whole reply as text.
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    json_body: Option<&str>,
    token: Option<&str>,
) -> Result<Reply, ClientError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let call = Call {
        bearer: token,
        json: json_body,
        ..Call::new(addr, method, path)
    };
    let got = fetch(&call).await?;
    let body = String::from_utf8(got.body).map_err(|_| ClientError::BadReply {
        addr,
        message: "body is not UTF-8".into(),
    })?;
    Ok(Reply {
        status: got.status,
        body,
    })
}

/// Whether an instance of a lab is running, as seen from its admin port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// This lab's instance answers on this admin port, and took our token.
    Running(Admin),
    /// Nothing listens there.
    Absent,
    /// Something else answers there (another lab, another program): why it is not used.
    Other(String),
}

/// Asks `127.0.0.1:http.admin_port` which lab it runs, and whether it is `lab`, with the
/// token from the lab's `.pxelab/admin-token`.
pub async fn probe(lab: &crate::config::Lab) -> Probe {
    let port = lab.file.http.admin_port;
    let token = match crate::statedir::read_admin_token(lab) {
        Ok(t) => t,
        Err(e) => {
            return Probe::Other(format!(
                "cannot read the admin token ({e}); run as the user who runs pxelab up"
            ))
        }
    };
    let reply = match request(port, "GET", "/api/lab", None, token.as_deref()).await {
        Ok(r) => r,
        Err(ClientError::NotRunning { .. }) | Err(ClientError::Timeout { .. }) => {
            return Probe::Absent
        }
        Err(e) => return Probe::Other(e.to_string()),
    };
    let path = serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .filter(|_| reply.ok())
        .and_then(|v| v.get("path").and_then(|p| p.as_str()).map(str::to_string));
    if reply.status == 401 {
        return Probe::Other(format!(
            "the pxelab on 127.0.0.1:{port} refused our admin token ({})",
            reply.error_message()
        ));
    }
    match (path, token) {
        (Some(p), Some(token)) if std::path::Path::new(&p) == lab.path => {
            Probe::Running(Admin { port, token })
        }
        (Some(p), _) => Probe::Other(format!(
            "the pxelab on 127.0.0.1:{port} runs another lab ({p})"
        )),
        (None, _) => Probe::Other(format!(
            "127.0.0.1:{port} answers, but not as a pxelab admin API"
        )),
    }
}
