//! HTTP(S) downloads for `pxelab fetch`, through `ureq` with rustls (no OpenSSL).
//!
//! The netboot tarball is large and home links drop: it is written to a `.part` file in
//! the staging folder and a second run asks for the rest with `Range: bytes=N-`. A body
//! that ends before its announced length is reported as [`FetchError::Truncated`] with
//! what was kept, never mistaken for a whole file. The package cache (`src/http/apk`)
//! fetches its upstream files through the same client ([`Client::get_into`]).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use super::progress::Progress;
use super::{io_err, FetchError};

/// Time to establish a connection (DNS, TCP, TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest silence while waiting for the response or reading its body.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest small file (index, checksum, signature) accepted.
const SMALL_LIMIT: u64 = 1 << 20;

/// A mirror client: one agent, so connections are reused across the files of a fetch.
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with pxelab's timeouts; HTTP error statuses are answers, not errors,
    /// so each refusal can name the URL and the status.
    pub fn new() -> Client {
        Client::with_timeouts(CONNECT_TIMEOUT, READ_TIMEOUT)
    }

    /// A client with other timeouts (the package cache's upstream fetches: a lab whose
    /// mirror is unreachable must fall back to its cached index quickly).
    pub fn with_timeouts(connect: Duration, read: Duration) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(connect))
            .timeout_recv_response(Some(read))
            .timeout_per_read(Some(read))
            .user_agent(concat!("pxelab/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// `GET url`, answered with 200 (any other status is [`FetchError::Http`]).
    fn get_ok(&self, url: &str) -> Result<ureq::http::Response<ureq::Body>, FetchError> {
        let resp = self.agent.get(url).call().map_err(transport(url))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(FetchError::Http {
                url: url.to_string(),
                status,
            });
        }
        Ok(resp)
    }

    /// Streams `url` into `out` (never into memory whole). Only a 200 with every
    /// announced byte, and at most `limit` bytes, is a success: a short body (the
    /// connection cut before Content-Length) is an error, never a whole file.
    /// `started` is told the announced length once the 200 arrived, before the body.
    pub fn get_into(
        &self,
        url: &str,
        out: &mut impl Write,
        limit: u64,
        started: impl FnOnce(Option<u64>),
    ) -> Result<u64, FetchError> {
        let resp = self.get_ok(url)?;
        let announced = header(&resp, "content-length").parse::<u64>().ok();
        if announced.is_some_and(|a| a > limit) {
            return Err(FetchError::Transport {
                url: url.to_string(),
                message: format!("larger than {limit} bytes"),
            });
        }
        started(announced);
        let failed = |message: String| FetchError::Transport {
            url: url.to_string(),
            message,
        };
        let mut body = resp.into_body().into_reader();
        let mut got = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got += n as u64;
                    if got > limit {
                        return Err(failed(format!("larger than {limit} bytes")));
                    }
                    out.write_all(&buf[..n])
                        .map_err(|e| failed(format!("writing: {e}")))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(failed(format!("cut after {got} bytes: {e}"))),
            }
        }
        match announced {
            Some(a) if a != got => Err(failed(format!("truncated: got {got} of {a} bytes"))),
            _ => Ok(got),
        }
    }

    /// A small file (index, checksum, signature) into memory.
    pub fn get_small(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let resp = self.get_ok(url)?;
        resp.into_body()
            .with_config()
            .limit(SMALL_LIMIT)
            .read_to_vec()
            .map_err(transport(url))
    }

    /// Downloads `url` into `part`, resuming from what `part` already holds. Returns the
    /// file's length once it has all of `expected` (or of the announced length).
    pub fn get_resumable(
        &self,
        url: &str,
        part: &Path,
        expected: Option<u64>,
    ) -> Result<u64, FetchError> {
        // A server that refuses the range (416) had the file shrink or change under
        // the `.part`: start over, once.
        for _attempt in 0..2 {
            let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
            if have > 0 && expected == Some(have) {
                return Ok(have);
            }
            let mut req = self.agent.get(url);
            if have > 0 {
                req = req.header("Range", format!("bytes={have}-"));
            }
            let resp = req.call().map_err(transport(url))?;
            let status = resp.status().as_u16();
            let (start, total) = match status {
                206 => {
                    let range = header(&resp, "content-range");
                    let (start, total) =
                        parse_content_range(&range).ok_or_else(|| FetchError::Transport {
                            url: url.to_string(),
                            message: format!("unusable Content-Range `{range}`"),
                        })?;
                    if start != have {
                        return Err(FetchError::Transport {
                            url: url.to_string(),
                            message: format!("asked for bytes from {have}, got from {start}"),
                        });
                    }
                    (start, total)
                }
                200 => (0, header(&resp, "content-length").parse::<u64>().ok()),
                416 if have > 0 => {
                    std::fs::remove_file(part).map_err(io_err(part))?;
                    continue;
                }
                _ => {
                    return Err(FetchError::Http {
                        url: url.to_string(),
                        status,
                    })
                }
            };
            let want = expected.or(total);
            let mut file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(start > 0)
                .truncate(start == 0)
                .open(part)
                .map_err(io_err(part))?;
            let name = url.rsplit('/').next().unwrap_or(url);
            let mut progress = Progress::new(name, want, start);
            let mut body = resp.into_body().into_reader();
            let mut got = start;
            let mut buf = vec![0u8; 64 * 1024];
            let read_error = loop {
                match body.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => {
                        file.write_all(&buf[..n]).map_err(io_err(part))?;
                        got += n as u64;
                        progress.advance(got);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => break Some(e),
                }
            };
            file.flush().map_err(io_err(part))?;
            file.sync_all().map_err(io_err(part))?;
            progress.finish(got);
            return match (want, read_error) {
                (Some(w), _) if got < w => Err(FetchError::Truncated {
                    url: url.to_string(),
                    got,
                    expected: w,
                }),
                (_, Some(e)) => Err(FetchError::Transport {
                    url: url.to_string(),
                    message: format!("after {got} bytes: {e}"),
                }),
                _ => Ok(got),
            };
        }
        Err(FetchError::Http {
            url: url.to_string(),
            status: 416,
        })
    }
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn transport(url: &str) -> impl FnOnce(ureq::Error) -> FetchError + '_ {
    move |e| FetchError::Transport {
        url: url.to_string(),
        message: e.to_string(),
    }
}

/// `bytes START-END/TOTAL` → (START, TOTAL); TOTAL `*` is unknown.
pub fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes 9-5/20"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
