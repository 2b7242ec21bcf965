//! Who may use the admin API: requests addressed to loopback (unless it is bound beyond
//! it, over TLS), carrying the bearer token. A refusal is a 401 or 403 answer naming
//! what to send, and a `refused` event naming the client.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AdminState, ApiError};
use crate::engine::{EventKind, Source};

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

pub(super) async fn only_loopback_hosts(req: Request, next: Next) -> Response {
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
pub(super) async fn require_token(
    State(st): State<AdminState>,
    req: Request,
    next: Next,
) -> Response {
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
