//! A tiny HTTP/1.1 client for the loopback admin API, used by `pxelab adopt` and
//! `pxelab nodes` to talk to a running instance. One request per connection
//! (`Connection: close`), bounded in time and size; no other dependency than tokio.
//! Every request carries the instance's bearer token from `.pxelab/admin-token`, so
//! only a user who can read that folder can use the API.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long to wait for a running instance to accept the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a whole request may take (adoption writes lab.yaml).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest reply accepted.
pub const MAX_REPLY: usize = 16 << 20;

/// Why a request to the admin API failed.
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
    #[error("admin API on {addr} did not answer in time")]
    Timeout {
        /// The address.
        addr: SocketAddr,
    },
    /// Reading or writing failed.
    #[error("admin API on {addr}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The reply is not HTTP.
    #[error("admin API on {addr} sent a malformed reply: {message}")]
    BadReply {
        /// The address.
        addr: SocketAddr,
        /// What was wrong.
        message: String,
    },
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
}

/// Sends one request to `127.0.0.1:port` (with `token` as its bearer token when given)
/// and reads the whole reply.
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    json_body: Option<&str>,
    token: Option<&str>,
) -> Result<Reply, ClientError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Err(_) => return Err(ClientError::Timeout { addr }),
        Ok(Err(source)) => return Err(ClientError::NotRunning { addr, source }),
        Ok(Ok(s)) => s,
    };
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = json_body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = json_body {
        req.push_str(b);
    }
    let exchange = async {
        stream.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        (&mut stream)
            .take(MAX_REPLY as u64 + 1)
            .read_to_end(&mut buf)
            .await?;
        Ok::<_, std::io::Error>(buf)
    };
    let raw = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Err(_) => return Err(ClientError::Timeout { addr }),
        Ok(Err(source)) => return Err(ClientError::Io { addr, source }),
        Ok(Ok(b)) => b,
    };
    if raw.len() > MAX_REPLY {
        return Err(ClientError::BadReply {
            addr,
            message: "reply too large".into(),
        });
    }
    parse_reply(&raw).map_err(|message| ClientError::BadReply { addr, message })
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

/// Parses an HTTP/1.1 reply read to the end of the connection.
pub fn parse_reply(raw: &[u8]) -> Result<Reply, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    if !parts.next().is_some_and(|p| p.starts_with("HTTP/1.")) {
        return Err(format!("not an HTTP reply: {status_line:.60}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {status_line:.60}"))?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        } else if k == "content-length" {
            length = v.parse().ok();
        }
    }
    if chunked {
        body = dechunk(&body)?;
    } else if let Some(n) = length {
        body.truncate(n);
    }
    let body = String::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    Ok(Reply { status, body })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk header")?;
        let size_txt = std::str::from_utf8(&b[..eol]).map_err(|_| "bad chunk header")?;
        let size_txt = size_txt.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_txt, 16).map_err(|_| "bad chunk size")?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = b.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        b = b.get(size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_replies() {
        let r = parse_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}extra").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        let r = parse_reply(
            b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"err\r\n9;x=y\r\nor\":\"no\"}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_str()), (409, "{\"error\":\"no\"}"));
        assert_eq!(r.error_message(), "no");
        for bad in [
            &b"garbage"[..],
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort",
        ] {
            assert!(parse_reply(bad).is_err(), "{bad:?}");
        }
    }
}
