//! A tiny HTTP/1.1 GET client, as busybox `wget` and iPXE use it: one request per
//! connection (`Connection: close`), Content-Length or chunked bodies, from a chosen
//! local address so the server sees the node's own address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;

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

/// GETs `url` from local address `from` (port chosen by the OS). Keeps the body when
/// `keep` is set, else only counts it (kernels and initrds).
pub async fn get(
    from: IpAddr,
    url: &str,
    keep: bool,
    limit: Duration,
) -> Result<Response, HttpError> {
    match tokio::time::timeout(limit, get_inner(from, url, keep)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout {
            url: url.to_string(),
            ms: limit.as_millis() as u64,
        }),
    }
}

async fn get_inner(from: IpAddr, url: &str, keep: bool) -> Result<Response, HttpError> {
    let (addr, target) = split_url(url)?;
    let io = |source| HttpError::Io {
        url: url.to_string(),
        source,
    };
    let bad = |detail: &str| HttpError::Malformed {
        url: url.to_string(),
        detail: detail.to_string(),
    };
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io)?;
    sock.bind(SocketAddr::new(from, 0)).map_err(io)?;
    let mut stream = sock.connect(addr).await.map_err(io)?;
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: pxelab-sim\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.map_err(io)?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).await.map_err(io)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for _ in 0..200 {
        line.clear();
        if r.read_line(&mut line).await.map_err(io)? == 0 {
            return Err(bad("headers cut short"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                length = Some(v.parse().map_err(|_| bad("bad content-length"))?);
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut sink = |chunk: &[u8], body: &mut Vec<u8>| {
        bytes += chunk.len() as u64;
        if keep && body.len() + chunk.len() <= MAX_KEEP {
            body.extend_from_slice(chunk);
        }
    };
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).await.map_err(io)?;
            let size_txt = line.trim().split(';').next().unwrap_or("");
            let size = u64::from_str_radix(size_txt, 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            let mut left = size;
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = r.read(&mut buf[..want]).await.map_err(io)?;
                if n == 0 {
                    return Err(bad("chunk cut short"));
                }
                sink(&buf[..n], &mut body);
                left -= n as u64;
            }
            line.clear();
            r.read_line(&mut line).await.map_err(io)?;
        }
    } else if let Some(len) = length {
        let mut left = len;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = r.read(&mut buf[..want]).await.map_err(io)?;
            if n == 0 {
                return Err(bad("body shorter than content-length"));
            }
            sink(&buf[..n], &mut body);
            left -= n as u64;
        }
    } else {
        loop {
            let n = r.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            sink(&buf[..n], &mut body);
        }
    }
    Ok(Response {
        status,
        bytes,
        body,
    })
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
