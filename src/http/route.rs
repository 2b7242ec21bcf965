//! Turning a raw request target into what the boot server serves, without trusting it.
//!
//! The path is percent-decoded once, as a whole, before it is split: an encoded slash
//! (`%2f`) or dot (`%2e`) is therefore judged like the plain character. Any `.` or `..`
//! segment, a backslash, a NUL or a decoding error refuses the request before any file
//! name is looked at. Empty segments are dropped, which is what lets tiny-cloud's
//! doubled slash (`/nocloud/<mac>//meta-data`) through.
//!
//! ```text
//! /boot.ipxe?mac=<mac>          BootScript
//! /boot/<mac>.ipxe, /boot/<mac> BootScript
//! /assets/<name>[?mac=<mac>]    Asset
//! /ipxe/<binary>                Ipxe      (UEFI HTTP boot, from the TFTP root)
//! /nocloud/<mac>/<file>         NoCloud   (also //<file>)
//! /apk/<host>/<path…>           Apk       (the package cache, http.apk_cache)
//! /snapshot/<mac>               Snapshot  (the k3s server's newest datastore snapshot)
//! ```

use crate::mac::Mac;

/// The NoCloud files tiny-cloud asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCloudFile {
    /// `meta-data`
    MetaData,
    /// `user-data`
    UserData,
    /// `vendor-data`
    VendorData,
    /// `network-config`
    NetworkConfig,
}

impl NoCloudFile {
    fn parse(s: &str) -> Option<NoCloudFile> {
        Some(match s {
            "meta-data" => NoCloudFile::MetaData,
            "user-data" => NoCloudFile::UserData,
            "vendor-data" => NoCloudFile::VendorData,
            "network-config" => NoCloudFile::NetworkConfig,
            _ => return None,
        })
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A node's iPXE script.
    BootScript(Result<Mac, BadRequest>),
    /// A boot asset by file name (relative to the assets folder), with the MAC the
    /// script appended (`?mac=`), if any and if well-formed.
    Asset {
        /// The file name as asked for (decoded, `/`-joined segments).
        name: String,
        /// The MAC from the query.
        mac: Option<Mac>,
    },
    /// An iPXE binary from the TFTP root (UEFI HTTP-boot firmware), by file name
    /// (decoded, `/`-joined segments).
    Ipxe {
        /// The file name as asked for.
        name: String,
    },
    /// NoCloud data for a MAC.
    NoCloud {
        /// The node.
        mac: Result<Mac, BadRequest>,
        /// Which file (`None`: a name tiny-cloud never asks for).
        file: Option<NoCloudFile>,
    },
    /// A file of the package cache (decoded segments after `/apk/`).
    Apk {
        /// The segments: upstream host, path, file name.
        segs: Vec<String>,
    },
    /// The k3s server's newest datastore snapshot.
    Snapshot(Result<Mac, BadRequest>),
    /// Nothing is served here.
    NotFound,
    /// The target is malformed or tries to leave its folder.
    Bad(BadRequest),
}

/// Why a request target is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    /// `..` or `.` segment (plain or percent-encoded).
    #[error("path traversal")]
    Traversal,
    /// A backslash (Windows-style separator).
    #[error("backslash in path")]
    Backslash,
    /// A NUL or other control character.
    #[error("control character in path")]
    Control,
    /// A `%` escape that is not two hex digits, or bytes that are not UTF-8.
    #[error("bad percent-encoding")]
    Encoding,
    /// No `mac=` where one is required.
    #[error("no MAC given")]
    MissingMac,
    /// The MAC is not six hex pairs.
    #[error("malformed MAC")]
    MalformedMac,
}

/// Decodes `%XX` escapes. Refuses bad escapes and non-UTF-8 results.
pub fn percent_decode(s: &str) -> Result<String, BadRequest> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(BadRequest::Encoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| BadRequest::Encoding)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| BadRequest::Encoding)?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| BadRequest::Encoding)
}

/// The value of `key` in a query string (`a=1&mac=…`), decoded (`+` is a space).
pub fn query_param(query: Option<&str>, key: &str) -> Option<Result<String, BadRequest>> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(&v.replace('+', " ")))
    })
}

/// Parses a MAC in any common spelling: `52:54:00:aa:bb:cc`, `52-54-00-AA-BB-CC`,
/// `525400aabbcc`, and Cisco's dotted `5254.00aa.bbcc`.
pub fn parse_mac(s: &str) -> Result<Mac, BadRequest> {
    let t = s.trim();
    let dotted = t.len() == 14 && t.as_bytes()[4] == b'.' && t.as_bytes()[9] == b'.';
    let t = if dotted {
        t.replace('.', "")
    } else {
        t.to_string()
    };
    t.parse::<Mac>().map_err(|_| BadRequest::MalformedMac)
}

fn mac_from_query(query: Option<&str>) -> Result<Mac, BadRequest> {
    match query_param(query, "mac") {
        None => Err(BadRequest::MissingMac),
        Some(Err(e)) => Err(e),
        Some(Ok(v)) if v.trim().is_empty() => Err(BadRequest::MissingMac),
        Some(Ok(v)) => parse_mac(&v),
    }
}

/// Classifies a request target (`path` still percent-encoded, `query` without `?`).
pub fn route(path: &str, query: Option<&str>) -> Route {
    let decoded = match percent_decode(path) {
        Ok(d) => d,
        Err(e) => return Route::Bad(e),
    };
    if decoded.contains('\\') {
        return Route::Bad(BadRequest::Backslash);
    }
    if decoded.chars().any(char::is_control) {
        return Route::Bad(BadRequest::Control);
    }
    let segs: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    if segs.iter().any(|s| *s == ".." || *s == ".") {
        return Route::Bad(BadRequest::Traversal);
    }
    match segs.as_slice() {
        ["boot.ipxe"] => Route::BootScript(mac_from_query(query)),
        ["boot", file] => {
            let m = file.strip_suffix(".ipxe").unwrap_or(file);
            Route::BootScript(parse_mac(m))
        }
        ["assets", rest @ ..] if !rest.is_empty() => Route::Asset {
            name: rest.join("/"),
            mac: query_param(query, "mac")
                .and_then(Result::ok)
                .and_then(|v| parse_mac(&v).ok()),
        },
        ["ipxe", rest @ ..] if !rest.is_empty() => Route::Ipxe {
            name: rest.join("/"),
        },
        ["apk", rest @ ..] if !rest.is_empty() => Route::Apk {
            segs: rest.iter().map(|s| s.to_string()).collect(),
        },
        ["snapshot", mac] => Route::Snapshot(parse_mac(mac)),
        ["nocloud", mac, file] => Route::NoCloud {
            mac: parse_mac(mac),
            file: NoCloudFile::parse(file),
        },
        _ => Route::NotFound,
    }
}

/// Longest [`printable`] text, in characters (plus `…` when cut).
pub const PRINTABLE_MAX: usize = 200;

/// A request target made safe to put in an event or a terminal line: control
/// characters escaped, at most [`PRINTABLE_MAX`] characters after escaping (then `…`).
/// The cap applies to the escaped text: a target of escape characters would otherwise
/// grow sixfold (`\u{1b}` each) in the event stream.
pub fn printable(s: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in s.chars() {
        let piece: Vec<char> = if c.is_control() {
            c.escape_default().collect()
        } else {
            vec![c]
        };
        if n + piece.len() > PRINTABLE_MAX {
            out.push('…');
            return out;
        }
        n += piece.len();
        out.extend(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac() -> Mac {
        "52:54:00:aa:bb:cc".parse().unwrap()
    }

    /// Found by fuzz/fuzz_targets/http_route.rs: escaping made a 200-character target
    /// of ESC characters 1,200 characters long in events.
    #[test]
    fn printable_is_capped_after_escaping() {
        let esc = "\u{1b}".repeat(300);
        let p = printable(&esc);
        assert!(p.chars().count() <= PRINTABLE_MAX + 1, "{p}");
        assert!(p.ends_with('…') && !p.contains('\u{1b}'));
        let exact = "a".repeat(PRINTABLE_MAX);
        assert_eq!(printable(&exact), exact);
        assert_eq!(printable(&format!("{exact}b")), format!("{exact}…"));
        assert_eq!(printable("/a\tb"), "/a\\tb");
    }

    #[test]
    fn boot_script_mac_in_query_or_path_any_spelling() {
        for (p, q) in [
            ("/boot.ipxe", Some("mac=52:54:00:aa:bb:cc")),
            ("/boot.ipxe", Some("x=1&mac=52-54-00-AA-BB-CC")),
            ("/boot.ipxe", Some("mac=52%3A54%3A00%3Aaa%3Abb%3Acc")),
            ("/boot/525400aabbcc.ipxe", None),
            ("/boot/52-54-00-aa-bb-cc.ipxe", None),
            ("/boot/5254.00aa.bbcc.ipxe", None),
            ("/boot/52:54:00:aa:bb:cc", None),
        ] {
            assert_eq!(route(p, q), Route::BootScript(Ok(mac())), "{p}?{q:?}");
        }
        assert_eq!(
            route("/boot.ipxe", None),
            Route::BootScript(Err(BadRequest::MissingMac))
        );
        assert_eq!(
            route("/boot.ipxe", Some("mac=")),
            Route::BootScript(Err(BadRequest::MissingMac))
        );
        assert_eq!(
            route("/boot.ipxe", Some("mac=52:54:00:aa:bb")),
            Route::BootScript(Err(BadRequest::MalformedMac))
        );
        assert_eq!(
            route("/boot/zz.ipxe", None),
            Route::BootScript(Err(BadRequest::MalformedMac))
        );
    }

    #[test]
    fn ipxe_binaries_for_http_boot() {
        assert_eq!(
            route("/ipxe/ipxe.efi", None),
            Route::Ipxe {
                name: "ipxe.efi".into()
            }
        );
        assert_eq!(
            route("/ipxe/arm64/ipxe.efi", Some("x=1")),
            Route::Ipxe {
                name: "arm64/ipxe.efi".into()
            }
        );
        assert_eq!(route("/ipxe", None), Route::NotFound);
        assert_eq!(
            route("/ipxe/%2e%2e/lab.yaml", None),
            Route::Bad(BadRequest::Traversal)
        );
    }

    #[test]
    fn assets_and_nocloud() {
        assert_eq!(
            route("/assets/vmlinuz-lts", Some("mac=525400aabbcc")),
            Route::Asset {
                name: "vmlinuz-lts".into(),
                mac: Some(mac())
            }
        );
        assert_eq!(
            route("/assets/sub/initrd", Some("mac=bogus")),
            Route::Asset {
                name: "sub/initrd".into(),
                mac: None
            }
        );
        for p in [
            "/nocloud/52:54:00:aa:bb:cc/meta-data",
            "/nocloud/52:54:00:aa:bb:cc//meta-data",
            "//nocloud/525400aabbcc/meta-data",
        ] {
            assert_eq!(
                route(p, None),
                Route::NoCloud {
                    mac: Ok(mac()),
                    file: Some(NoCloudFile::MetaData)
                },
                "{p}"
            );
        }
        assert_eq!(
            route("/nocloud/52:54:00:aa:bb:cc/passwd", None),
            Route::NoCloud {
                mac: Ok(mac()),
                file: None
            }
        );
        assert_eq!(
            route("/snapshot/525400aabbcc", None),
            Route::Snapshot(Ok(mac()))
        );
        assert_eq!(
            route("/snapshot/x", None),
            Route::Snapshot(Err(BadRequest::MalformedMac))
        );
        assert_eq!(route("/snapshot/525400aabbcc/x", None), Route::NotFound);
        assert_eq!(route("/", None), Route::NotFound);
        assert_eq!(route("/assets", None), Route::NotFound);
        assert_eq!(route("/etc/passwd", None), Route::NotFound);
    }

    #[test]
    fn traversal_in_every_spelling_is_refused() {
        for p in [
            "/assets/../lab.yaml",
            "/assets/%2e%2e/lab.yaml",
            "/assets/%2E%2E%2Flab.yaml",
            "/assets/..%2f..%2fetc%2fpasswd",
            "/assets/.%2e/x",
            "/../etc/passwd",
            "/nocloud/../../etc/passwd",
            "/assets/./vmlinuz",
        ] {
            assert_eq!(route(p, None), Route::Bad(BadRequest::Traversal), "{p}");
        }
        assert_eq!(
            route("/assets/..\\..\\etc\\passwd", None),
            Route::Bad(BadRequest::Backslash)
        );
        assert_eq!(
            route("/assets/%5c..%5cx", None),
            Route::Bad(BadRequest::Backslash)
        );
        assert_eq!(
            route("/assets/a%00b", None),
            Route::Bad(BadRequest::Control)
        );
        assert_eq!(route("/assets/%zz", None), Route::Bad(BadRequest::Encoding));
        assert_eq!(route("/assets/%ff", None), Route::Bad(BadRequest::Encoding));
        assert_eq!(route("/assets/%2", None), Route::Bad(BadRequest::Encoding));
        // Double encoding decodes once: a literal `%2e%2e` name, not a traversal,
        // and not a boot asset either (the allow-list refuses it later).
        assert_eq!(
            route("/assets/%252e%252e/x", None),
            Route::Asset {
                name: "%2e%2e/x".into(),
                mac: None
            }
        );
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(printable(&"x".repeat(300)).chars().count(), 201);
    }
}
