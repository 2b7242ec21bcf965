//! Which request heads the front answers itself: only what is certainly a plain,
//! whole-file `GET /assets/NAME` over HTTP/1.1 with keep-alive. Anything else, or
//! anything in doubt (a Range or If-Range, a body, `Expect`, `Upgrade`, a `Connection`
//! other than keep-alive, HTTP/1.0, a head httparse or `http` would not take), goes to
//! hyper, which answers it as it always has.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};

use crate::http::route::{self, Route};
use crate::mac::Mac;

/// Headers a head may have and still be answered here (hyper takes up to 100).
const MAX_HEADERS: usize = 64;

/// What a buffer holding the start of a request is.
#[derive(Debug)]
pub(super) enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// A plain GET of a boot asset.
    Fast(Fast),
    /// Anything else: hyper's.
    Hyper,
}

/// A plain GET of a boot asset.
#[derive(Debug)]
pub(super) struct Fast {
    /// Bytes of the head (where the next request starts).
    pub head_len: usize,
    /// The path, still percent-encoded (as hyper's `uri.path()`).
    pub path: String,
    /// Path and query.
    pub target: String,
    /// The asset's name, as [`route::route`] found it.
    pub name: String,
    /// The MAC from `?mac=`.
    pub mac: Option<Mac>,
    /// The request's headers.
    pub headers: HeaderMap,
}

/// Whether a header's presence (or value) sends the request to hyper.
fn needs_hyper(name: &HeaderName, value: &HeaderValue) -> bool {
    match name.as_str() {
        "range" | "if-range" | "transfer-encoding" | "expect" | "upgrade" | "te" => true,
        "content-length" => value.as_bytes().trim_ascii() != b"0",
        "connection" => value.to_str().map_or(true, |v| {
            v.split(',')
                .any(|t| !t.trim().eq_ignore_ascii_case("keep-alive"))
        }),
        _ => false,
    }
}

/// Classifies the bytes read so far on a connection.
pub(super) fn parse(buf: &[u8]) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Hyper,
    };
    if req.method != Some("GET") || req.version != Some(1) {
        return Parsed::Hyper;
    }
    let Some(Ok(uri)) = req.path.map(str::parse::<Uri>) else {
        return Parsed::Hyper;
    };
    if uri.scheme().is_some() || !uri.path().starts_with('/') {
        return Parsed::Hyper;
    }
    let Route::Asset { name, mac } = route::route(uri.path(), uri.query()) else {
        return Parsed::Hyper;
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::Hyper;
        };
        if needs_hyper(&n, &v) {
            return Parsed::Hyper;
        }
        headers.append(n, v);
    }
    let target = match uri.query() {
        Some(q) => format!("{}?{q}", uri.path()),
        None => uri.path().to_string(),
    };
    Parsed::Fast(Fast {
        head_len,
        path: uri.path().to_string(),
        target,
        name,
        mac,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(head: &str) -> Option<Fast> {
        match parse(head.as_bytes()) {
            Parsed::Fast(f) => Some(f),
            _ => None,
        }
    }

    #[test]
    fn a_plain_get_of_an_asset_is_answered_here() {
        let h = "GET /assets/vmlinuz?mac=525400aabbcc HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
        let f = fast(h).unwrap();
        assert_eq!(f.head_len, h.len() - "GET /next".len());
        assert_eq!(
            (f.name.as_str(), f.path.as_str()),
            ("vmlinuz", "/assets/vmlinuz")
        );
        assert_eq!(f.target, "/assets/vmlinuz?mac=525400aabbcc");
        assert!(f.mac.is_some());
        let ka = "GET /assets/k HTTP/1.1\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
        assert!(fast(ka).is_some());
    }

    #[test]
    fn anything_else_goes_to_hyper() {
        for h in [
            "HEAD /assets/k HTTP/1.1\r\n\r\n",
            "GET /assets/k HTTP/1.0\r\n\r\n",
            "GET /assets/k HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n",
            "GET /assets/k HTTP/1.1\r\nIf-Range: \"x\"\r\n\r\n",
            "GET /assets/k HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /assets/k HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
            "GET /assets/k HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "GET /assets/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /assets/k HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /assets/../lab.yaml HTTP/1.1\r\n\r\n",
            "GET /nocloud/525400aabbcc/user-data HTTP/1.1\r\n\r\n",
            "GET /boot.ipxe?mac=525400aabbcc HTTP/1.1\r\n\r\n",
            "GET /snapshot/525400aabbcc HTTP/1.1\r\n\r\n",
            "GET http://x/assets/k HTTP/1.1\r\n\r\n",
            "GET /assets HTTP/1.1\r\n\r\n",
            "BREW /assets/k HTTP/1.1\r\n\r\n",
            "GET /assets/k HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(matches!(parse(h.as_bytes()), Parsed::Hyper), "{h:?}");
        }
        assert!(matches!(
            parse(b"GET /assets/k HTTP/1.1\r\nHost: x\r\n"),
            Parsed::Partial
        ));
    }
}
