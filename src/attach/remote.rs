//! A remote pxelab's admin API over pinned TLS: one request per connection (the API's
//! replies are small and infrequent), and the event stream on a connection of its own.

use std::time::Duration;

use futures::Stream;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::engine::Event;
use crate::http::tls::{pin, KnownServers, PinCheck};

use super::AttachError;

/// How long a request (not the event stream) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest the event stream may stay silent (the server's keep-alive is every 15 s).
const SILENCE: Duration = Duration::from_secs(45);
/// Largest reply kept.
const MAX_REPLY: usize = 32 << 20;

/// Where and how to reach a remote admin API.
#[derive(Clone)]
pub struct Remote {
    /// `host:port`.
    pub server: String,
    token: String,
    known: KnownServers,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Remote")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// A reply: status and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The API's `error` text, or the status.
    pub fn error_message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {}", self.status))
    }
}

impl Remote {
    /// `url` is `https://host:port` (a path is ignored); the token is the server's
    /// `.pxelab/admin-token`.
    pub fn new(url: &str, token: String, known: KnownServers) -> Result<Remote, AttachError> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| AttachError::Url(url.to_string()))?;
        let server = rest.split('/').next().unwrap_or_default();
        if server.is_empty() || !server.contains(':') {
            return Err(AttachError::Url(url.to_string()));
        }
        Ok(Remote {
            server: server.to_string(),
            token,
            known,
        })
    }

    async fn open(
        &self,
    ) -> Result<
        (
            hyper::client::conn::http1::SendRequest<Full<Bytes>>,
            PinCheck,
        ),
        AttachError,
    > {
        let tls = pin::connect(&self.server, &self.known).await?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls.stream))
            .await
            .map_err(|e| self.broken(e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((send, tls.check))
    }

    fn broken(&self, e: impl std::fmt::Display) -> AttachError {
        AttachError::Broken {
            server: self.server.clone(),
            why: e.to_string(),
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> hyper::Request<Full<Bytes>> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.server)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(hyper::header::USER_AGENT, "pxelab-attach");
        let body = match body {
            Some(v) => {
                b = b.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        b.body(Full::new(body)).unwrap_or_default()
    }

    /// Connects once, pinning the certificate on first use; says which it was.
    pub async fn hello(&self) -> Result<PinCheck, AttachError> {
        let (_, check) = self.open().await?;
        Ok(check)
    }

    /// Sends one request and reads the whole reply.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, AttachError> {
        let run = async {
            let (mut send, _) = self.open().await?;
            let reply = send
                .send_request(self.request(method, path, body))
                .await
                .map_err(|e| self.broken(e))?;
            let status = reply.status().as_u16();
            let mut body = reply.into_body();
            let mut got = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| self.broken(e))?;
                if let Some(d) = frame.data_ref() {
                    if got.len() + d.len() > MAX_REPLY {
                        return Err(self.broken("reply too large"));
                    }
                    got.extend_from_slice(d);
                }
            }
            Ok(Reply { status, body: got })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, run)
            .await
            .map_err(|_| self.broken("no answer in time"))?
    }

    /// A request whose reply must be 2xx with a JSON body.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, AttachError> {
        let reply = self.call(method, path, body).await?;
        if !(200..300).contains(&reply.status) {
            return Err(AttachError::Refused {
                server: self.server.clone(),
                status: reply.status,
                why: reply.error_message(),
            });
        }
        serde_json::from_slice(&reply.body).map_err(|e| self.broken(e))
    }

    /// The server's events as they happen (`text/event-stream`), log lines included;
    /// the stream ends when the connection does.
    pub async fn events(&self) -> Result<impl Stream<Item = Streamed> + use<>, AttachError> {
        let open = async {
            let (mut send, _) = self.open().await?;
            send.send_request(self.request("GET", "/api/events?logs=1", None))
                .await
                .map_err(|e| self.broken(e))
        };
        let reply = tokio::time::timeout(REQUEST_TIMEOUT, open)
            .await
            .map_err(|_| self.broken("no answer in time"))??;
        if reply.status() != hyper::StatusCode::OK {
            return Err(AttachError::Refused {
                server: self.server.clone(),
                status: reply.status().as_u16(),
                why: "the event stream was refused".into(),
            });
        }
        let body = reply.into_body();
        Ok(futures::stream::unfold(
            (body, SseReader::default(), Vec::<Streamed>::new()),
            |(mut body, mut reader, mut ready)| async move {
                loop {
                    if let Some(ev) = ready.pop() {
                        return Some((ev, (body, reader, ready)));
                    }
                    // The server sends a keep-alive every 15 s: silence beyond
                    // [`SILENCE`] is a connection that died without a word.
                    let frame = tokio::time::timeout(SILENCE, body.frame())
                        .await
                        .ok()??
                        .ok()?;
                    if let Some(d) = frame.data_ref() {
                        let mut got = reader.feed(d);
                        got.reverse();
                        ready = got;
                    }
                }
            },
        ))
    }
}

/// One item of the event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Streamed {
    /// An event.
    Event(Event),
    /// The server dropped this many events for this client (it read too slowly).
    Lagged(u64),
}

/// Splits a `text/event-stream` body into the events its `data:` lines carry.
#[derive(Debug, Default)]
pub struct SseReader {
    pending: Vec<u8>,
}

impl SseReader {
    /// Feeds bytes; returns the events (and `lagged` notices) completed by them, oldest
    /// first. Keep-alives and lines that are not pxelab events are skipped.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Streamed> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = find(&self.pending, b"\n\n") {
            let block: Vec<u8> = self.pending.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let data: String = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|l| l.strip_prefix(' ').unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n");
            if let Ok(ev) = serde_json::from_str::<Event>(&data) {
                out.push(Streamed::Event(ev));
            } else if let Ok(l) = serde_json::from_str::<Lagged>(&data) {
                if l.event == "lagged" {
                    out.push(Streamed::Lagged(l.skipped));
                }
            }
        }
        // A line that never ends is not an event: bound what is kept.
        if self.pending.len() > MAX_REPLY {
            self.pending.clear();
        }
        out
    }
}

/// The server's `lagged` notice.
#[derive(serde::Deserialize)]
struct Lagged {
    event: String,
    skipped: u64,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_come_out_whole_and_in_order() {
        let a = r#"{"seq":1,"at_ms":5,"event":"node-held","mac":"52:54:00:00:00:01"}"#;
        let b = r#"{"seq":2,"at_ms":6,"event":"node-forgotten","mac":"52:54:00:00:00:01"}"#;
        let stream = format!(
            ": keep-alive\n\nevent: node-held\nid: 1\ndata: {a}\n\nevent: lagged\ndata: {{\"event\":\"lagged\",\"skipped\":3}}\n\nevent: x\ndata: {b}\n\n"
        );
        let mut r = SseReader::default();
        let mut got = Vec::new();
        for chunk in stream.as_bytes().chunks(7) {
            got.extend(r.feed(chunk));
        }
        let seqs: Vec<String> = got
            .iter()
            .map(|s| match s {
                Streamed::Event(e) => e.seq.to_string(),
                Streamed::Lagged(n) => format!("lagged {n}"),
            })
            .collect();
        assert_eq!(seqs, ["1", "lagged 3", "2"]);
    }

    #[test]
    fn a_url_must_be_https_with_a_port_and_the_token_stays_out_of_debug() {
        let known = KnownServers::at("/nonexistent/known");
        assert!(Remote::new("http://10.0.0.1:9", "t".into(), known.clone()).is_err());
        assert!(Remote::new("https://10.0.0.1", "t".into(), known.clone()).is_err());
        let r = Remote::new("https://10.0.0.1:9443/x", "sekrit".into(), known).unwrap();
        assert_eq!(r.server, "10.0.0.1:9443");
        assert!(!format!("{r:?}").contains("sekrit"));
    }
}
