//! The last check before an answer leaves: no secret value pxelab knows (the k3s
//! cluster token, each listed node's k3s node password, the admin token itself) appears
//! in anything the admin API sends, whatever carried it there.
//!
//! Why it is needed beyond the redacted lab ([`super::mirror::redact`]): node records and
//! the event stream carry what nodes log, and a node may log a command line or a failed
//! action holding its token. That is fine on the operator's own console, not on a
//! network. Every JSON answer is searched for the values and they are masked; the event
//! stream masks each event the same way.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AdminState;
use crate::engine::Engine;
use crate::secrets::mask::MASK;

/// Largest answer searched (bigger ones are refused rather than sent unsearched).
const MAX_BODY: usize = 64 << 20;

/// The secret values to keep out of answers (each at least 4 characters), searched for
/// all at once (Aho-Corasick: one pass over an answer however many nodes the lab has;
/// a search per value took 0.4 s on a 500-node lab's state).
#[derive(Debug, Clone, Default)]
pub struct Secrets(Option<Arc<AhoCorasick>>);

impl Secrets {
    /// The values known for `engine`'s lab now: read on a blocking thread (the first
    /// ask of a lab may read its files).
    pub async fn of(engine: &Engine, admin_token: &str) -> Secrets {
        let lab = engine.lab();
        let token = admin_token.to_string();
        let values = tokio::task::spawn_blocking(move || {
            let mut v = vec![token];
            v.extend(crate::secrets::k3s_token(&lab).ok());
            for n in &lab.file.nodes {
                if let Ok(s) = crate::secrets::for_node(&lab, n.mac) {
                    v.extend(s.node_password);
                }
            }
            v
        })
        .await
        .unwrap_or_default();
        Secrets::from_values(values)
    }

    /// From values (trimmed; short ones dropped: they would mask ordinary text).
    pub fn from_values(values: Vec<String>) -> Secrets {
        let mut v: Vec<String> = values
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| s.len() >= 4)
            .collect();
        v.sort();
        v.dedup();
        // Leftmost-longest: a value that contains another is masked whole.
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&v)
            .ok()
            .filter(|_| !v.is_empty());
        Secrets(ac.map(Arc::new))
    }

    /// `text` with every value masked.
    pub fn scrub(&self, text: &str) -> String {
        match &self.0 {
            Some(ac) if ac.is_match(text) => ac.replace_all(text, &vec![MASK; ac.patterns_len()]),
            _ => text.to_string(),
        }
    }
}

/// Masks secret values in every JSON answer (middleware, after the token check).
pub(super) async fn scrub_json(State(st): State<AdminState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return super::ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the answer is too large to send",
        )
        .into_response();
    };
    let secrets = Secrets::of(&st.engine, &st.token).await;
    let text = secrets.scrub(&String::from_utf8_lossy(&bytes));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_are_masked_wherever_they_are_and_short_ones_ignored() {
        let s = Secrets::from_values(vec![
            " K10abc::server:s3cr3t\n".into(),
            "pw-123456".into(),
            "ab".into(),
        ]);
        let text =
            r#"{"log":["k3s: K3S_TOKEN=K10abc::server:s3cr3t sh -","x pw-123456 y"],"a":"ab"}"#;
        let out = s.scrub(text);
        assert!(
            !out.contains("s3cr3t") && !out.contains("pw-123456"),
            "{out}"
        );
        assert!(out.contains(r#""a":"ab""#), "{out}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{out}"
        );
    }
}
