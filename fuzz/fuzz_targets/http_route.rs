//! Request targets: percent-decoding and routing. No panic; a name handed to the file
//! side (assets, iPXE binaries, the package cache's segments) never holds `.`/`..` segments, backslashes or control
//! characters; decoding never yields a string longer than its input; `printable`
//! output is short and has no control characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxelab::http::route::{percent_decode, printable, query_param, route, Route, PRINTABLE_MAX};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    };
    if let Ok(d) = percent_decode(path) {
        assert!(d.len() <= path.len());
    }
    let _ = query_param(query, "mac");
    let p = printable(s);
    assert!(p.chars().count() <= PRINTABLE_MAX + 1);
    assert!(!p.chars().any(char::is_control));
    match route(path, query) {
        Route::Asset { name, .. } | Route::Ipxe { name } => {
            assert!(!name.is_empty());
            assert!(!name.contains('\\'));
            assert!(!name.chars().any(char::is_control));
            assert!(!name
                .split('/')
                .any(|c| c == "." || c == ".." || c.is_empty()));
        }
        Route::Apk { segs } => {
            assert!(!segs.is_empty());
            for c in &segs {
                assert!(!c.is_empty() && c != "." && c != "..");
                assert!(!c.contains(['/', '\\']));
                assert!(!c.chars().any(char::is_control));
            }
        }
        _ => {}
    }
});
