//! GETs as busybox `wget` and iPXE make them: one request per connection, from a chosen
//! local address so the server sees the node's own address. The HTTP itself is the one
//! client, [`crate::http::client`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::http::client::{self, ClientError};

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://HOST:PORT/PATH` with a numeric IPv4 host.
    #[error("unsupported URL {url}")]
    BadUrl {
        /// The URL.
        url: String,
    },
    /// Connect, write or read failed.
    #[error("GET {url}: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The response did not parse.
    #[error("GET {url}: malformed response: {detail}")]
    Malformed {
        /// The URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The whole request took longer than allowed.
    #[error("GET {url}: timed out after {ms} ms")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit.
        ms: u64,
    },
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body bytes received (always counted).
    pub bytes: u64,
    /// The body, when asked to keep it.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// Splits `http://host:port/path?query` into the socket address and the request target.
pub fn split_url(url: &str) -> Result<(SocketAddr, String), HttpError> {
    let bad = || HttpError::BadUrl {
        url: url.to_string(),
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let addr: SocketAddr = if authority.contains(':') {
        authority.parse().map_err(|_| bad())?
    } else {
        SocketAddr::new(authority.parse().map_err(|_| bad())?, 80)
    };
    Ok((addr, path))
}

/// Largest body kept in memory.
const MAX_KEEP: usize = 16 * 1024 * 1024;

/// GETs `url` from local address `from` (port chosen by the OS) with the one HTTP
/// client ([`crate::http::client`]). Keeps the body when `keep` is set, else only counts
/// it (kernels and initrds).
pub async fn get(
    from: IpAddr,
    url: &str,
    keep: bool,
    limit: Duration,
) -> Result<Response, HttpError> {
    let (addr, target) = split_url(url)?;
    let call = client::Call {
        from: Some(from),
        user_agent: "pxelab-sim",
        connect_timeout: limit,
        timeout: limit,
        keep: if keep { MAX_KEEP } else { 0 },
        max_body: None,
        ..client::Call::new(addr, "GET", &target)
    };
    let url = url.to_string();
    match client::fetch(&call).await {
        Ok(f) => Ok(Response {
            status: f.status,
            bytes: f.bytes,
            body: f.body,
        }),
        Err(ClientError::Timeout { .. }) => Err(HttpError::Timeout {
            url,
            ms: limit.as_millis() as u64,
        }),
        Err(ClientError::NotRunning { source, .. } | ClientError::Io { source, .. }) => {
            Err(HttpError::Io { url, source })
        }
        Err(e @ (ClientError::BadRequest { .. } | ClientError::BadReply { .. })) => {
            Err(HttpError::Malformed {
                url,
                detail: e.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let (a, p) = split_url("http://127.0.0.1:8080/boot.ipxe?mac=aa:bb").unwrap();
        assert_eq!(a, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(p, "/boot.ipxe?mac=aa:bb");
        let (a, p) = split_url("http://10.0.0.1").unwrap();
        assert_eq!(a.port(), 80);
        assert_eq!(p, "/");
        assert!(split_url("https://x/").is_err());
        assert!(split_url("http://name.example/").is_err());
    }
}
