//! The package cache's plan (`http.apk_cache`): which upstream repositories may be
//! fetched through pxelab, where their files are kept, and the one mapping between an
//! upstream URL and the cache's own URL.
//!
//! Why here: the kernel command line (`alpine_repo=` rewritten to the cache) and the
//! HTTP server (a `/apk/…` path back to its upstream URL) must agree on that mapping,
//! and `pxelab check` must refuse an upstream the server could not fetch. The cache's
//! URL names the upstream by host and path:
//!
//! ```text
//! https://dl-cdn.alpinelinux.org/alpine/v3.21/main
//!   ⇄ http://SERVER:PORT/apk/dl-cdn.alpinelinux.org/alpine/v3.21/main
//! ```
//!
//! so a path maps back only onto a configured upstream (no open proxy), and the cache
//! folder is keyed the same way (`DIR/dl-cdn.alpinelinux.org/alpine/v3.21/main/…`).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::net::parse_duration;
use crate::config::report::Reporter;
use crate::config::spans::Seg;
use crate::config::Lab;

/// The cache's URL prefix on the boot HTTP server.
pub const APK_PREFIX: &str = "/apk/";

/// How long a cached APKINDEX is fresh when `index_ttl` is not set.
pub const DEFAULT_INDEX_TTL: Duration = Duration::from_secs(3600);

/// One repository (or mirror folder) the cache may fetch from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `scheme://host[:port]/path`, without a trailing slash.
    pub url: String,
    /// `host[:port]/path`: the cache's URL path (after `/apk/`) and folder for it.
    pub key: String,
}

/// The package cache, when enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkCachePlan {
    /// Where cached files are kept (resolved against lab.yaml's folder).
    pub dir: PathBuf,
    /// What may be fetched, longest key first (the most specific one wins).
    pub upstreams: Vec<Upstream>,
    /// How long a cached APKINDEX is served before it is fetched again.
    pub index_ttl: Duration,
}

impl ApkCachePlan {
    /// The cache's URL for `url` (a repository URL or a file in one) under `http_base`,
    /// if `url` lies under a configured upstream.
    pub fn local_url(&self, http_base: &str, url: &str) -> Option<String> {
        let url = url.trim_end_matches('/');
        self.upstreams.iter().find_map(|u| {
            let rest = url.strip_prefix(u.url.as_str())?;
            (rest.is_empty() || rest.starts_with('/'))
                .then(|| format!("{http_base}{APK_PREFIX}{}{rest}", u.key))
        })
    }

    /// For a cache path (the decoded segments after `/apk/`): the upstream URL of the
    /// file and its key (`host/path/…`, also its place in [`Self::dir`]). `None` when no
    /// configured upstream holds it.
    pub fn upstream_of(&self, segs: &[&str]) -> Option<(String, String)> {
        let key = segs.join("/");
        self.upstreams.iter().find_map(|u| {
            let rest = key.strip_prefix(u.key.as_str())?;
            (rest.starts_with('/') && rest.len() > 1)
                .then(|| (format!("{}{rest}", u.url), key.clone()))
        })
    }

    /// A kernel command-line word with each `alpine_repo=` URL under an upstream pointed
    /// at the cache; any other word as it is.
    pub fn rewrite_word(&self, http_base: &str, word: &str) -> String {
        let Some(list) = word.strip_prefix("alpine_repo=") else {
            return word.to_string();
        };
        let urls: Vec<String> = list
            .split(',')
            .map(|u| {
                self.local_url(http_base, u)
                    .unwrap_or_else(|| u.to_string())
            })
            .collect();
        format!("alpine_repo={}", urls.join(","))
    }
}

/// Parses an upstream URL: `http` or `https`, a host, a path of plain segments; no
/// user, query or fragment.
pub fn parse_upstream(text: &str) -> Result<Upstream, String> {
    let t = text.trim().trim_end_matches('/');
    let rest = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .ok_or_else(|| format!("`{text}` is not an http:// or https:// URL"))?;
    if rest.contains(['?', '#', '@', '\\', ' ']) || rest.chars().any(char::is_control) {
        return Err(format!(
            "`{text}`: a repository URL has no user, query, fragment or spaces"
        ));
    }
    let mut segs = rest.split('/');
    let host = segs.next().unwrap_or("");
    if host.is_empty() || host.starts_with(['.', ':']) {
        return Err(format!("`{text}` names no host"));
    }
    if segs
        .clone()
        .any(|s| s.is_empty() || s.starts_with('.') || s.contains('%'))
    {
        return Err(format!(
            "`{text}`: path segments must be plain names (no empty, dot or %-escaped ones)"
        ));
    }
    Ok(Upstream {
        url: t.to_string(),
        key: rest.to_string(),
    })
}

/// The `alpine_repo=` URLs written literally in a command line.
pub fn alpine_repos(cmdline: &str) -> Vec<String> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("alpine_repo="))
        .flat_map(|l| l.split(','))
        .filter(|u| !u.is_empty() && !u.contains("{{"))
        .map(str::to_string)
        .collect()
}

/// Builds the cache's plan, reporting every problem of `http.apk_cache` to `r`. `None`
/// when the cache is off (or cannot run: then `r` has the errors).
pub(super) fn build(lab: &Lab, r: &mut Reporter<'_>) -> Option<ApkCachePlan> {
    let c = lab.file.http.apk_cache.as_ref().filter(|c| c.enabled)?;
    let at = |k| [Seg::Key("http"), Seg::Key("apk_cache"), Seg::Key(k)];
    let before = r.problems.len();
    let index_ttl = match c.index_ttl.as_deref() {
        None => DEFAULT_INDEX_TTL,
        Some(t) => parse_duration(t).unwrap_or_else(|| {
            r.error(
                &at("index_ttl"),
                format!("`{t}` is not a duration (seconds, or 30m, 1h, 1d)"),
            );
            DEFAULT_INDEX_TTL
        }),
    };
    let mut upstreams = Vec::new();
    if c.upstream.is_empty() {
        let from_cmdline = alpine_repos(&lab.file.boot.cmdline);
        if from_cmdline.is_empty() {
            r.error(
                &at("enabled"),
                "the package cache needs http.apk_cache.upstream, or alpine_repo= URLs in \
                 boot.cmdline to take as its upstreams"
                    .to_string(),
            );
        }
        for u in &from_cmdline {
            match parse_upstream(u) {
                Ok(up) => upstreams.push(up),
                Err(e) => r.error(&[Seg::Key("boot"), Seg::Key("cmdline")], e),
            }
        }
    }
    for (i, u) in c.upstream.iter().enumerate() {
        match parse_upstream(u) {
            Ok(up) => upstreams.push(up),
            Err(e) => r.error(
                &[
                    Seg::Key("http"),
                    Seg::Key("apk_cache"),
                    Seg::Key("upstream"),
                    Seg::Index(i),
                ],
                e,
            ),
        }
    }
    upstreams.sort_by(|a, b| b.key.len().cmp(&a.key.len()).then(a.key.cmp(&b.key)));
    upstreams.dedup_by(|a, b| a.key == b.key);
    let dir = match &c.dir {
        Some(d) => lab.resolve(d),
        None => lab.state_dir().join("apk-cache"),
    };
    (r.problems.len() == before).then_some(ApkCachePlan {
        dir,
        upstreams,
        index_ttl,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn lab(extra: &str) -> Lab {
        let text = format!(
            "name: t\nserver_address: 10.0.0.1\nboot:\n  kernel: k\n  cmdline: \"ip=dhcp \
             alpine_repo=https://dl-cdn.alpinelinux.org/alpine/v3.21/main,https://dl-cdn.alpinelinux.org/alpine/v3.21/community\"\n{extra}"
        );
        Lab::parse(Path::new("/srv/lab/lab.yaml"), &text).unwrap()
    }

    #[test]
    fn off_unless_enabled() {
        assert_eq!(lab("").plan().unwrap().apk_cache, None);
        assert_eq!(
            lab("http: {apk_cache: {enabled: false}}\n")
                .plan()
                .unwrap()
                .apk_cache,
            None
        );
    }

    #[test]
    fn upstreams_default_to_the_command_lines_repos_and_map_both_ways() {
        let l = lab("http: {apk_cache: {enabled: true}}\n");
        let p = l.plan().unwrap().apk_cache.clone().unwrap();
        assert_eq!(p.dir, PathBuf::from("/srv/lab/.pxelab/apk-cache"));
        assert_eq!(p.index_ttl, DEFAULT_INDEX_TTL);
        assert_eq!(p.upstreams.len(), 2);
        let base = "http://10.0.0.1:8080";
        assert_eq!(
            p.rewrite_word(base, "alpine_repo=https://dl-cdn.alpinelinux.org/alpine/v3.21/main,https://other.example/x"),
            "alpine_repo=http://10.0.0.1:8080/apk/dl-cdn.alpinelinux.org/alpine/v3.21/main,https://other.example/x"
        );
        assert_eq!(p.rewrite_word(base, "ip=dhcp"), "ip=dhcp");
        let segs = [
            "dl-cdn.alpinelinux.org",
            "alpine",
            "v3.21",
            "community",
            "x86_64",
            "k3s-1.31.apk",
        ];
        assert_eq!(
            p.upstream_of(&segs),
            Some((
                "https://dl-cdn.alpinelinux.org/alpine/v3.21/community/x86_64/k3s-1.31.apk".into(),
                segs.join("/")
            ))
        );
        // Not under an upstream: another branch, another host, the repo folder itself.
        assert_eq!(
            p.upstream_of(&["dl-cdn.alpinelinux.org", "alpine", "edge", "main", "x"]),
            None
        );
        assert_eq!(p.upstream_of(&["evil.example", "x"]), None);
        assert_eq!(
            p.upstream_of(&["dl-cdn.alpinelinux.org", "alpine", "v3.21", "main"]),
            None
        );
        // A longer name that merely starts like an upstream is not under it.
        assert_eq!(
            p.upstream_of(&["dl-cdn.alpinelinux.org", "alpine", "v3.21", "mainx", "a"]),
            None
        );
    }

    #[test]
    fn explicit_upstreams_dir_and_ttl() {
        let l = lab(
            "http:\n  apk_cache:\n    enabled: true\n    dir: cache\n    index_ttl: 10m\n    \
             upstream: [\"http://127.0.0.1:9000/alpine/\"]\n",
        );
        let p = l.plan().unwrap().apk_cache.clone().unwrap();
        assert_eq!(p.dir, PathBuf::from("/srv/lab/cache"));
        assert_eq!(p.index_ttl, Duration::from_secs(600));
        assert_eq!(p.upstreams[0].key, "127.0.0.1:9000/alpine");
        assert_eq!(
            p.local_url("http://S:1", "http://127.0.0.1:9000/alpine/v3.21/main"),
            Some("http://S:1/apk/127.0.0.1:9000/alpine/v3.21/main".into())
        );
    }

    #[test]
    fn bad_upstreams_and_ttl_are_errors_at_their_value() {
        for (y, want) in [
            ("upstream: [ftp://x/y]", "not an http:// or https:// URL"),
            ("upstream: [\"http://x/a?b=1\"]", "no user, query"),
            ("upstream: [\"http:///a\"]", "names no host"),
            ("upstream: [\"http://x/.hidden\"]", "plain names"),
            ("index_ttl: soon", "not a duration"),
        ] {
            let text = format!(
                "name: t\nboot: {{kernel: k}}\nhttp:\n  apk_cache: {{enabled: true, {y}}}\n"
            );
            let l = Lab::parse(Path::new("/srv/lab/lab.yaml"), &text).unwrap();
            let msg = format!("{:?}", l.plan_problems());
            assert!(msg.contains(want), "{y}: {msg}");
            assert!(msg.contains("line: 4"), "{y}: {msg}");
        }
        let l = Lab::parse(
            Path::new("/srv/lab/lab.yaml"),
            "name: t\nboot: {kernel: k}\nhttp: {apk_cache: {enabled: true}}\n",
        )
        .unwrap();
        assert!(format!("{:?}", l.plan_problems()).contains("needs http.apk_cache.upstream"));
    }
}
