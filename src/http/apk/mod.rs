//! `/apk/…`: a pull-through cache of the lab's Alpine package repositories
//! (`http.apk_cache`), so a diskless lab downloads k3s and its dependencies from the
//! mirror once, not at every boot of every node, and still boots when the mirror is
//! unreachable.
//!
//! ```text
//! GET /apk/<host>/<repo path>/<arch>/APKINDEX.tar.gz   fetched once per index_ttl
//! GET /apk/<host>/<repo path>/<arch>/<name>-<ver>.apk  fetched once, kept
//! ```
//!
//! Only files under a configured upstream ([`crate::config::plan::ApkCachePlan`]) and
//! only those two kinds of file are fetched: the cache is no open proxy. The names go
//! through [`crate::net::path::check_name`] like every other served file. Files are
//! kept as upstream sent them: apk on the node verifies the index's signature and the
//! packages as ever; the cache never re-signs. [`store`] keeps them (one upstream fetch
//! per file, streamed to disk, checked by [`verify`] before it is kept; waiters read
//! it as it grows through [`growing`]), [`report`]
//! counts the answers without an event per request. The answer carries `X-Cache: hit`,
//! `miss` or `stale`.

mod growing;
pub mod report;
pub mod store;
pub mod verify;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;

use super::chunks::FileChunks;
use super::Ctx;
use store::{Answer, FileKind, How, Store, Want};

/// The cache's state, shared by the boot server's requests.
#[derive(Default)]
pub struct ApkCache {
    store: Arc<Store>,
    report: report::Reporter,
}

impl ApkCache {
    /// Reports pending counts (see [`report::Reporter::flush`]).
    pub fn flush(&self, engine: &crate::engine::Engine, now: bool) {
        self.report.flush(engine, now);
    }
}

/// The file kind a name is cached as, if it is one.
fn kind_of(name: &str) -> Option<FileKind> {
    if name == "APKINDEX.tar.gz" {
        Some(FileKind::Index)
    } else if name.ends_with(".apk") && name.len() > 4 {
        Some(FileKind::Package)
    } else {
        None
    }
}

/// Serves one `/apk/…` request (`segs`: the decoded segments after `apk`).
pub(crate) async fn serve(ctx: &Ctx, cache: &Arc<ApkCache>, segs: &[String]) -> Response {
    let lab = ctx.engine.lab();
    let Some(plan) = lab.plan().ok().and_then(|p| p.apk_cache.as_ref()) else {
        return ctx.refuse(
            None,
            StatusCode::NOT_FOUND,
            "the package cache is off (http.apk_cache)",
        );
    };
    let refs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let Some((url, key)) = plan.upstream_of(&refs) else {
        return ctx.refuse(
            None,
            StatusCode::NOT_FOUND,
            "not under an upstream of http.apk_cache",
        );
    };
    let Some(kind) = kind_of(refs.last().copied().unwrap_or_default()) else {
        return ctx.refuse(
            None,
            StatusCode::NOT_FOUND,
            "only APKINDEX.tar.gz and .apk files are cached",
        );
    };
    if let Err(e) = crate::net::path::check_name(&key) {
        return ctx.refuse(None, StatusCode::BAD_REQUEST, &e.to_string());
    }
    let want = Want {
        url,
        path: plan.dir.join(&key),
        key,
        kind,
        ttl: plan.index_ttl,
    };
    let path = want.path.clone();
    drop(lab);
    let answer = match cache.store.get(want).await {
        Ok(a) => a,
        Err(e) => {
            cache.report.count(&ctx.engine, &Err(e.clone()), 0);
            let body = format!("502 upstream failed: {e}\n");
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header(header::CACHE_CONTROL, "no-store")
                .body(Body::from(body))
                .unwrap_or_else(|_| super::fallback_500());
        }
    };
    let (counted_now, how, len, body) = match answer {
        Answer::File(how) => {
            let opened = async {
                let f = tokio::fs::File::open(&path).await?;
                let len = f.metadata().await?.len();
                Ok::<_, std::io::Error>((f, len))
            }
            .await;
            let Ok((file, len)) = opened else {
                let why = Err("the cached file vanished before it was sent".to_string());
                cache.report.count(&ctx.engine, &why, 0);
                return ctx.refuse(None, StatusCode::NOT_FOUND, "cached file vanished");
            };
            let body = if ctx.head {
                Body::empty()
            } else {
                Body::from_stream(FileChunks::new(file.into_std().await, 0, len))
            };
            (Some(if ctx.head { 0 } else { len }), how, Some(len), body)
        }
        Answer::Growing(rx, how) => {
            let len = rx.borrow().announced;
            // Counted when it ends: whole, or cut because the download failed.
            let (c, engine) = (Arc::clone(cache), ctx.engine.clone());
            let on_end: growing::OnEnd = Box::new(move |end| {
                let answer = end.map(|()| how);
                c.report.count(&engine, &answer, len.unwrap_or(0));
            });
            let body = match growing::body(rx, on_end) {
                Some(stream) if !ctx.head => Body::from_stream(stream),
                _ => {
                    cache.report.count(&ctx.engine, &Ok(how), 0);
                    Body::empty()
                }
            };
            (None, how, len, body)
        }
    };
    if let Some(sent) = counted_now {
        cache.report.count(&ctx.engine, &Ok(how), sent);
    }
    let x_cache = match how {
        How::Hit | How::Coalesced => "hit",
        How::Fetched => "miss",
        How::Stale => "stale",
    };
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("x-cache", x_cache);
    if let Some(len) = len {
        builder = builder.header(header::CONTENT_LENGTH, len);
    }
    builder.body(body).unwrap_or_else(|_| super::fallback_500())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_indexes_and_packages_are_cached() {
        assert_eq!(kind_of("APKINDEX.tar.gz"), Some(FileKind::Index));
        assert_eq!(kind_of("k3s-1.31.4-r0.apk"), Some(FileKind::Package));
        for n in [".apk", "APKINDEX", "latest-releases.yaml", "x.apk.sig"] {
            assert_eq!(kind_of(n), None, "{n}");
        }
    }
}
