//! Files streamed from disk: `/assets/<name>` (boot files named in lab.yaml, from the
//! assets folder) and `/ipxe/<binary>` (iPXE binaries from the TFTP root, for UEFI
//! HTTP-boot firmware, which DHCP points there when option 93 is 16 or 19).
//!
//! Under `/assets/` only names listed in `boot:` (kernel, initrds, modloop, extra, and
//! each `boot.arch` profile's kernel, initrds and modloop) or in
//! a node's overrides (kernel, initrds, modloop) are served, and only if the file, with symlinks resolved, lies
//! inside the assets folder. Both go through [`crate::net::path::resolve`], as TFTP
//! does: relative plain names, no dot-component (`.pxelab`, `.git`), and only regular
//! files whose real path stays inside the folder. Bodies are
//! streamed from disk in 256 KiB chunks ([`super::chunks`], never read whole), with
//! Content-Length, HEAD, one Range (206/416), Last-Modified and an ETag.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::chunks::FileChunks;
use super::meter::{Metered, Report};
use super::range::{self, RangeAnswer};
use super::Ctx;
use crate::config::Lab;
use crate::engine::{EventKind, FetchKind};
use crate::mac::Mac;
use crate::net::path::PathRefused;

/// Assets at least this big get an `http-start` event before their body.
pub const START_EVENT_BYTES: u64 = 1 << 20;

/// What kind of boot file `name` is, if lab.yaml names it at all.
pub(crate) fn asset_kind(lab: &Lab, name: &str) -> Option<FetchKind> {
    let boot = &lab.file.boot;
    let nodes = &lab.file.nodes;
    let profiles = boot.arch.values();
    if boot.kernel == name
        || nodes.iter().any(|n| n.kernel.as_deref() == Some(name))
        || profiles.clone().any(|p| p.kernel == name)
    {
        return Some(FetchKind::Kernel);
    }
    let in_initrds = boot.initrds.iter().any(|i| i == name)
        || nodes
            .iter()
            .any(|n| n.initrds.iter().flatten().any(|i| i == name))
        || profiles
            .clone()
            .any(|p| p.initrds.iter().any(|i| i == name));
    if in_initrds {
        return Some(FetchKind::Initrd);
    }
    if boot.modloop.as_deref() == Some(name)
        || nodes.iter().any(|n| n.modloop.as_deref() == Some(name))
        || profiles.clone().any(|p| p.modloop.as_deref() == Some(name))
    {
        return Some(FetchKind::Modloop);
    }
    if boot.extra.iter().any(|e| e == name) {
        return Some(FetchKind::Asset);
    }
    None
}

/// Resolves `name` inside `root` with [`crate::net::path::resolve`] (the one rooting
/// rule: plain relative name, no dot-component, real path a regular file inside the
/// canonicalised root), off the async workers. The status and reason when refused.
async fn resolve_inside(root: PathBuf, name: &str) -> Result<PathBuf, (StatusCode, String)> {
    let wanted = name.to_string();
    let found =
        tokio::task::spawn_blocking(move || crate::net::path::resolve(&root, &wanted)).await;
    match found {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e @ PathRefused::Traversal(_))) => Err((StatusCode::BAD_REQUEST, e.to_string())),
        Ok(Err(e @ (PathRefused::Hidden(_) | PathRefused::Outside(_)))) => {
            Err((StatusCode::FORBIDDEN, e.to_string()))
        }
        Ok(Err(e @ PathRefused::NotFound(_))) => Err((StatusCode::NOT_FOUND, e.to_string())),
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("file lookup failed: {e}"),
        )),
    }
}

/// The MAC an asset fetch belongs to: the `?mac=` the script appended, else the
/// machine that last fetched a boot script from this address, else a node whose
/// configured, observed or leased address it is, else the kernel's ARP entry for the
/// address (proxy mode: UEFI HTTP boot fetches its iPXE binary before any script).
fn attribute(ctx: &Ctx, from_query: Option<Mac>) -> Option<Mac> {
    from_query
        .or_else(|| ctx.clients.mac_of(&ctx.client))
        .or_else(|| ctx.engine.mac_by_ip(ctx.client))
        .or_else(|| crate::net::arp::mac_of(ctx.client))
}

pub(crate) fn http_date(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Serves one asset.
pub(crate) async fn serve(ctx: &Ctx, name: &str, from_query: Option<Mac>) -> Response {
    let lab = ctx.engine.lab();
    let mac = attribute(ctx, from_query);
    let Some(kind) = asset_kind(&lab, name) else {
        return ctx.refuse(mac, StatusCode::NOT_FOUND, "not a boot asset of this lab");
    };
    match resolve_inside(lab.assets_dir(), name).await {
        Ok(path) => stream_file(ctx, &path, kind, mac).await,
        // Whatever the reason, a listed name that is not a file inside the folder is
        // simply not there for the client (the event says why).
        Err((_, reason)) => ctx.refuse(mac, StatusCode::NOT_FOUND, &reason),
    }
}

/// Serves an iPXE binary from the TFTP root to UEFI HTTP-boot firmware.
pub(crate) async fn serve_ipxe(ctx: &Ctx, name: &str) -> Response {
    let lab = ctx.engine.lab();
    let mac = attribute(ctx, None);
    let root = lab.resolve(&lab.file.tftp.root);
    match resolve_inside(root, name).await {
        Ok(path) => stream_file(ctx, &path, FetchKind::Ipxe, mac).await,
        Err((status, reason)) => ctx.refuse(mac, status, &reason),
    }
}

/// An asset file opened for sending, with the validators both paths send.
pub(crate) struct Opened {
    /// The open file.
    pub file: std::fs::File,
    /// Its length when opened.
    pub len: u64,
    /// `"len-mtime"` in hex.
    pub etag: String,
    /// Its modification time as an HTTP date.
    pub last_modified: Option<String>,
}

impl Opened {
    /// The headers of every answer about this file but the length and the status's own
    /// (Content-Range): the one list hyper's path and the sendfile path both send.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        for (name, v) in [
            (header::ETAG, Some(&self.etag)),
            (header::LAST_MODIFIED, self.last_modified.as_ref()),
        ] {
            if let Some(v) = v.and_then(|v| HeaderValue::from_str(v).ok()) {
                h.insert(name, v);
            }
        }
        h
    }
}

/// Opens `path`, if it is a readable regular file.
async fn open_file(path: &Path) -> Option<Opened> {
    let path = path.to_path_buf();
    let (file, meta) = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(path)?;
        let meta = f.metadata()?;
        Ok::<_, std::io::Error>((f, meta))
    })
    .await
    .ok()?
    .ok()?;
    if !meta.is_file() {
        return None;
    }
    let len = meta.len();
    let modified = meta.modified().ok();
    let mtime_secs = modified
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Some(Opened {
        file,
        len,
        etag: format!("\"{len:x}-{mtime_secs:x}\""),
        last_modified: modified.map(http_date),
    })
}

/// A boot asset a plain GET may get whole by sendfile: what [`serve`] would answer 200
/// with its full body, found by the same steps, or `None` for anything else (which
/// then goes to [`serve`] through hyper, refusals and all).
pub(crate) struct Whole {
    /// The file and its validators.
    pub opened: Opened,
    /// What kind of boot file it is.
    pub kind: FetchKind,
    /// The machine it is attributed to.
    pub mac: Option<Mac>,
}

/// [`Whole`] for `name` if [`serve`] would send it whole with 200.
pub(crate) async fn whole(ctx: &Ctx, name: &str, from_query: Option<Mac>) -> Option<Whole> {
    let lab = ctx.engine.lab();
    let kind = asset_kind(&lab, name)?;
    let path = resolve_inside(lab.assets_dir(), name).await.ok()?;
    let opened = open_file(&path).await?;
    Some(Whole {
        opened,
        kind,
        mac: attribute(ctx, from_query),
    })
}

/// Announces a body of `count` bytes (`http-start`, for big ones) and returns the
/// report its end will emit.
pub(crate) fn start_body(
    ctx: &Ctx,
    mac: Option<Mac>,
    kind: FetchKind,
    status: StatusCode,
    count: u64,
) -> Report {
    if count >= START_EVENT_BYTES {
        ctx.engine.emit(
            mac,
            EventKind::HttpStart {
                path: ctx.path.clone(),
                client: ctx.client,
                what: kind,
                bytes: count,
            },
        );
    }
    Report {
        engine: ctx.engine.clone(),
        mac,
        path: ctx.path.clone(),
        client: ctx.client,
        what: kind,
        status: status.as_u16(),
        expected: count,
        started: ctx.started,
    }
}

/// Streams `path` as `kind` with Content-Length, HEAD, Range and validators.
async fn stream_file(ctx: &Ctx, path: &Path, kind: FetchKind, mac: Option<Mac>) -> Response {
    let Some(opened) = open_file(path).await else {
        return ctx.refuse(
            mac,
            StatusCode::NOT_FOUND,
            "boot asset is not a readable file",
        );
    };
    let len = opened.len;

    // If-Range: only honour the Range when the validator still matches.
    let range_header = ctx.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let if_range_ok = match ctx
        .headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(v) => v == opened.etag || Some(v) == opened.last_modified.as_deref(),
    };
    let answer = if if_range_ok {
        range::answer(range_header, len)
    } else {
        RangeAnswer::Full
    };

    let mut builder = Response::builder();
    if let Some(h) = builder.headers_mut() {
        *h = opened.headers();
    }
    let (status, start, count) = match answer {
        RangeAnswer::Full => (StatusCode::OK, 0, len),
        RangeAnswer::Partial { start, end } => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeAnswer::Unsatisfiable => {
            ctx.fetched(mac, kind, 416, 0);
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::CONTENT_LENGTH, 0)
                .body(Body::empty())
                .unwrap_or_else(|_| super::fallback_500());
        }
    };
    let builder = builder.status(status).header(header::CONTENT_LENGTH, count);
    if ctx.head {
        // A HEAD fetches nothing: reported, but as `other` so the node does not advance.
        ctx.fetched(mac, FetchKind::Other, status.as_u16(), 0);
        return builder
            .body(Body::empty())
            .unwrap_or_else(|_| super::fallback_500());
    }
    let report = start_body(ctx, mac, kind, status, count);
    let stream = FileChunks::new(opened.file, start, count);
    builder
        .body(Body::from_stream(Metered::new(stream, report)))
        .unwrap_or_else(|_| super::fallback_500())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_own_modloop_is_served_as_a_modloop() {
        let lab = Lab::parse(
            Path::new("/srv/lab/lab.yaml"),
            "name: t\nboot: {kernel: vmlinuz-lts, initrds: [initramfs-lts], modloop: modloop-lts}\n\
             nodes:\n  - {mac: '52:54:00:00:00:01', hostname: v, role: k3s-server, kernel: vmlinuz-virt, \
             initrds: [initramfs-virt], modloop: modloop-virt}\n",
        )
        .unwrap();
        assert_eq!(asset_kind(&lab, "modloop-lts"), Some(FetchKind::Modloop));
        assert_eq!(asset_kind(&lab, "modloop-virt"), Some(FetchKind::Modloop));
        assert_eq!(asset_kind(&lab, "vmlinuz-virt"), Some(FetchKind::Kernel));
        assert_eq!(asset_kind(&lab, "modloop-rpi"), None);
    }
}
