//! The package cache (`http.apk_cache`) between real `curl` clients and a fake upstream
//! mirror on loopback that counts its requests: twenty nodes asking at once cause one
//! upstream fetch per file; with the mirror gone the lab still gets what was cached
//! (an expired APKINDEX too); a damaged or cut download reaches no client whole, is not
//! kept, and the next request fetches again; a mirror slower than the server's idle
//! limit still serves the waiting nodes (streamed as it arrives); nothing outside the
//! configured upstreams is fetched. Loopback only, no root.

mod apk_support;
mod common;
mod http_lab;

use std::path::{Path, PathBuf};
use std::time::Duration;

use apk_support::{write_repo, Damage, Mirror, Package};
use http_lab::{curl, next_event, Got, Server, TempLab};
use std::sync::atomic::Ordering::Relaxed;

use pxelab::engine::{ApkTally, EventKind};

const REPO: &str = "alpine/v3.21/main";

/// The made-up repository: k3s (big enough to take a while), curl and htop.
fn packages() -> Vec<Package> {
    vec![
        Package::new("k3s", "1.31.4-r0", 3 << 20),
        Package::new("curl", "8.11.1-r0", 40_000),
        Package::new("htop", "3.3.0-r0", 9_000),
    ]
}

struct Setup {
    mirror: Mirror,
    server: Server,
    files: std::collections::HashMap<String, Vec<u8>>,
    pkgs: Vec<Package>,
    _repo: tempfile::TempDir,
}

impl Setup {
    /// A mirror (answering after `delay`) and pxelab's HTTP server with the cache on,
    /// the mirror as its upstream and the given index TTL.
    fn new(delay: Duration, ttl: &str) -> Option<Setup> {
        if !common::require_program("curl") {
            return None;
        }
        let repo = tempfile::tempdir().unwrap();
        let pkgs = packages();
        let files = write_repo(repo.path(), REPO, &pkgs);
        let mirror = Mirror::start(repo.path(), delay);
        let lab = TempLab::new();
        let text = std::fs::read_to_string(&lab.path).unwrap();
        let up = mirror.url();
        let text = text
            .replace(
                &format!("  admin_port: {}\n", lab.admin_port),
                &format!(
                    "  admin_port: {}\n  apk_cache:\n    enabled: true\n    index_ttl: {ttl}\n    \
                     upstream: [\"{up}/alpine\"]\n",
                    lab.admin_port
                ),
            )
            .replace(
                "cmdline: \"console=ttyS0 ip=dhcp\"",
                &format!("cmdline: \"console=ttyS0 ip=dhcp alpine_repo={up}/{REPO}\""),
            );
        std::fs::write(&lab.path, text).unwrap();
        let server = Server::start(lab, false);
        Some(Setup {
            mirror,
            server,
            files,
            pkgs,
            _repo: repo,
        })
    }

    /// The cache's URL of a repository file (`x86_64/NAME`).
    fn url(&self, file: &str) -> String {
        format!(
            "{}/apk/127.0.0.1:{}/{REPO}/x86_64/{file}",
            self.server.lab.base(),
            self.mirror.port
        )
    }

    /// The path the mirror sees for it.
    fn upstream_path(&self, file: &str) -> String {
        format!("/{REPO}/x86_64/{file}")
    }

    /// The original bytes of a repository file.
    fn original(&self, file: &str) -> &[u8] {
        &self.files[&format!("{REPO}/x86_64/{file}")]
    }

    /// The cache's folder.
    fn cache_dir(&self) -> PathBuf {
        self.server.lab.dir.path().join(".pxelab/apk-cache")
    }

    /// Where the cache keeps a repository file.
    fn cached(&self, file: &str) -> PathBuf {
        self.cache_dir()
            .join(format!("127.0.0.1:{}", self.mirror.port))
            .join(REPO)
            .join("x86_64")
            .join(file)
    }
}

/// Every file under `dir`, recursively (to see that no temporary file is left).
fn all_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out
}

/// curl with `--fail`: whether the transfer succeeded whole, and what arrived.
fn curl_strict(url: &str) -> (bool, Vec<u8>) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20", url])
        .output()
        .expect("curl is installed");
    (out.status.success(), out.stdout)
}

/// `n` curl processes fetching `url` at once.
fn fetch_concurrently(url: &str, n: usize) -> Vec<Got> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let u = url.to_string();
            std::thread::spawn(move || curl(&u, &[]))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Sums the `apk-cache` events that arrive within `limit` (the summaries come at most
/// every 5 s).
fn tally_events(s: &mut Server, until: impl Fn(&ApkTally) -> bool) -> ApkTally {
    let mut sum = ApkTally::default();
    for _ in 0..4 {
        let Some(ev) = next_event(&mut s.rx, |k| matches!(k, EventKind::ApkCache { .. })) else {
            break;
        };
        if let EventKind::ApkCache { tally } = ev.kind {
            sum.hits += tally.hits;
            sum.fetched += tally.fetched;
            sum.stale += tally.stale;
            sum.failed += tally.failed;
            sum.bytes += tally.bytes;
            sum.last_error = tally.last_error.or(sum.last_error);
        }
        if until(&sum) {
            break;
        }
    }
    sum
}

#[test]
fn twenty_nodes_cause_one_upstream_fetch_per_file() {
    let Some(mut s) = Setup::new(Duration::from_millis(400), "1h") else {
        return;
    };
    let mut names = vec!["APKINDEX.tar.gz".to_string()];
    names.extend(s.pkgs.iter().map(Package::file_name));
    for name in &names {
        let got = fetch_concurrently(&s.url(name), 20);
        let mut misses = 0;
        for g in &got {
            assert_eq!(g.status, 200, "{name}: {}", g.text());
            assert!(
                g.body == s.original(name),
                "{name}: bytes differ from upstream"
            );
            match g.header("x-cache").as_deref() {
                Some("miss") => misses += 1,
                Some("hit") => {}
                other => panic!("{name}: X-Cache {other:?}"),
            }
        }
        assert_eq!(
            misses, 1,
            "{name}: one request fetched, the others waited for it"
        );
        assert_eq!(
            s.mirror.count(&s.upstream_path(name)),
            1,
            "{name}: exactly one upstream fetch for 20 concurrent clients"
        );
        assert_eq!(std::fs::read(s.cached(name)).unwrap(), s.original(name));
    }
    // A later boot: all from disk.
    for name in &names {
        let g = curl(&s.url(name), &[]);
        assert_eq!(
            (g.status, g.header("x-cache").as_deref()),
            (200, Some("hit"))
        );
    }
    assert_eq!(s.mirror.total(), names.len(), "no other upstream request");
    let c = s.server.engine.counters();
    assert_eq!(c.apk_fetched.load(Relaxed), 4);
    assert_eq!(c.apk_hits.load(Relaxed), 4 * 19 + 4);
    assert_eq!(c.apk_failed.load(Relaxed), 0);
    // Summaries, not an event per request: they add up to the 84 answers.
    let sum = tally_events(&mut s.server, |t| t.hits + t.fetched >= 84);
    assert_eq!((sum.fetched, sum.hits, sum.failed), (4, 80, 0), "{sum:?}");
    assert!(
        !all_files(&s.cache_dir()).iter().any(|f| f.starts_with('.')),
        "no temporary file left"
    );
}

#[test]
fn a_lab_whose_upstream_is_gone_still_gets_what_it_cached() {
    // A 1 s TTL: the index has expired by the time the mirror is gone.
    let Some(mut s) = Setup::new(Duration::ZERO, "1s") else {
        return;
    };
    let k3s = s.pkgs[0].file_name();
    let never = s.pkgs[2].file_name();
    // What a download cut by a crash left: swept once two hours old, kept when young.
    let folder = s.cached("APKINDEX.tar.gz").parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&folder).unwrap();
    let (old, young) = (
        folder.join(format!(".{k3s}.pxelab-tmp-00000000000000aa")),
        folder.join(format!(".{k3s}.pxelab-tmp-00000000000000bb")),
    );
    std::fs::write(&old, b"half a package").unwrap();
    std::fs::write(&young, b"a download under way").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    for name in ["APKINDEX.tar.gz", k3s.as_str()] {
        assert_eq!(curl(&s.url(name), &[]).status, 200);
    }
    assert!(
        !old.exists() && young.exists(),
        "only the stale temporary file is swept"
    );
    std::thread::sleep(Duration::from_millis(1200));
    // Still up: an expired index is fetched again.
    let g = curl(&s.url("APKINDEX.tar.gz"), &[]);
    assert_eq!(
        (g.status, g.header("x-cache").as_deref()),
        (200, Some("miss"))
    );
    assert_eq!(s.mirror.count(&s.upstream_path("APKINDEX.tar.gz")), 2);

    s.mirror.stop();
    std::thread::sleep(Duration::from_millis(1200));
    let g = curl(&s.url("APKINDEX.tar.gz"), &[]);
    assert_eq!(
        (g.status, g.header("x-cache").as_deref()),
        (200, Some("stale"))
    );
    assert!(g.body == s.original("APKINDEX.tar.gz"));
    let g = curl(&s.url(&k3s), &[]);
    assert_eq!(
        (g.status, g.header("x-cache").as_deref()),
        (200, Some("hit"))
    );
    assert!(g.body == s.original(&k3s));
    // What was never cached cannot be served: 502, with the reason in the summary.
    let g = curl(&s.url(&never), &[]);
    assert_eq!(g.status, 502, "{}", g.text());
    let sum = tally_events(&mut s.server, |t| t.failed > 0);
    assert_eq!((sum.stale, sum.failed), (1, 1), "{sum:?}");
    let reason = sum.last_error.unwrap_or_default();
    assert!(reason.contains(&never), "{reason}");
}

#[test]
fn damaged_or_cut_downloads_are_not_cached_and_the_next_request_fetches_again() {
    let Some(s) = Setup::new(Duration::ZERO, "1h") else {
        return;
    };
    assert_eq!(curl(&s.url("APKINDEX.tar.gz"), &[]).status, 200);
    let curl_pkg = s.pkgs[1].file_name();
    let k3s = s.pkgs[0].file_name();
    let htop = s.pkgs[2].file_name();
    // A flipped byte in the data segment (its gzip CRC), one in the signature segment,
    // a cut transfer (shorter than Content-Length). The control segment's checksum is
    // checked by verify.rs's unit test.
    let sig_len = 60; // well inside the signature stream: header bytes are checked too
    for (name, how) in [
        (&curl_pkg, Damage::Flip(s.pkgs[1].bytes.len() / 2)),
        (&htop, Damage::Flip(sig_len)),
        (&k3s, Damage::Cut),
    ] {
        let path = s.upstream_path(name);
        s.mirror.damage(&path, Some(how));
        // Streamed as it came, but the last byte is held back until the check: the
        // transfer is cut short (curl fails), never a whole damaged body.
        let (ok, got) = curl_strict(&s.url(name));
        assert!(!ok, "{name} {how:?}: curl succeeded");
        assert!(
            got.len() < s.original(name).len(),
            "{name} {how:?}: whole body sent"
        );
        assert!(
            !s.cached(name).exists(),
            "{name}: a damaged download was kept"
        );
        s.mirror.damage(&path, None);
        let g = curl(&s.url(name), &[]);
        assert_eq!(
            (g.status, g.header("x-cache").as_deref()),
            (200, Some("miss"))
        );
        assert!(g.body == s.original(name));
        assert_eq!(
            s.mirror.count(&path),
            2,
            "{name}: fetched again after the failure"
        );
    }
    let failed = s.server.engine.counters().apk_failed.load(Relaxed);
    assert_eq!(failed, 3, "each cut transfer is counted as failed");
    // A damaged index is not kept either.
    let idx = s.upstream_path("APKINDEX.tar.gz");
    std::fs::remove_file(s.cached("APKINDEX.tar.gz")).unwrap();
    s.mirror.damage(&idx, Some(Damage::Cut));
    assert!(!curl_strict(&s.url("APKINDEX.tar.gz")).0);
    assert!(!s.cached("APKINDEX.tar.gz").exists());
    assert!(
        !all_files(&s.cache_dir()).iter().any(|f| f.starts_with('.')),
        "no temporary file left: {:?}",
        all_files(&s.cache_dir())
    );
}

#[test]
fn only_indexes_and_packages_under_configured_upstreams_are_fetched() {
    let Some(s) = Setup::new(Duration::ZERO, "1h") else {
        return;
    };
    let base = s.server.lab.base();
    let port = s.mirror.port;
    for (path, status) in [
        (
            "/apk/evil.example/alpine/v3.21/main/x86_64/APKINDEX.tar.gz".to_string(),
            404,
        ),
        (
            format!("/apk/127.0.0.2:{port}/{REPO}/x86_64/APKINDEX.tar.gz"),
            404,
        ),
        (
            format!("/apk/127.0.0.1:{port}/other/x86_64/APKINDEX.tar.gz"),
            404,
        ),
        (
            format!("/apk/127.0.0.1:{port}/{REPO}/x86_64/notes.txt"),
            404,
        ),
        (
            format!("/apk/127.0.0.1:{port}/{REPO}/x86_64/.hidden.apk"),
            400,
        ),
        (
            format!("/apk/127.0.0.1:{port}/{REPO}/%2e%2e/%2e%2e/x.apk"),
            400,
        ),
        ("/apk/".to_string(), 404),
    ] {
        let g = curl(&format!("{base}{path}"), &["--path-as-is"]);
        assert_eq!(g.status, status, "{path}: {}", g.text());
    }
    assert_eq!(s.mirror.total(), 0, "nothing was fetched upstream");
}

#[test]
fn the_command_line_points_alpine_repo_at_the_cache() {
    let Some(s) = Setup::new(Duration::ZERO, "1h") else {
        return;
    };
    let lab = s.server.engine.lab();
    let node = lab.file.nodes[0].clone();
    let cmdline = pxelab::render::kernel_cmdline(&lab, &node).unwrap();
    let want = format!(
        "alpine_repo={}/apk/127.0.0.1:{}/{REPO} ",
        s.server.lab.base(),
        s.mirror.port
    );
    assert!(cmdline.contains(&want), "{cmdline}");
    // The node's apk reads that repository: its index comes through the cache.
    let repo = want.trim().trim_start_matches("alpine_repo=");
    let g = curl(&format!("{repo}/x86_64/APKINDEX.tar.gz"), &[]);
    assert_eq!(g.status, 200);
}

#[test]
fn a_mirror_slower_than_the_idle_limit_still_serves_the_waiting_nodes() {
    if !common::require_program("curl") {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let pkgs = packages();
    let files = write_repo(repo.path(), REPO, &pkgs);
    let mirror = Mirror::start(repo.path(), Duration::ZERO);
    let k3s = pkgs[0].file_name();
    let path = format!("/{REPO}/x86_64/{k3s}");
    // The whole package takes 6 s to come, three times the server's idle limit here:
    // the waiting nodes get it as it arrives, whole, and no connection is cut.
    mirror.damage(&path, Some(Damage::Trickle(Duration::from_secs(6))));
    let lab = TempLab::new();
    let text = std::fs::read_to_string(&lab.path).unwrap().replace(
        &format!("  admin_port: {}\n", lab.admin_port),
        &format!(
            "  admin_port: {}\n  apk_cache:\n    enabled: true\n    upstream: [\"{}/alpine\"]\n",
            lab.admin_port,
            mirror.url()
        ),
    );
    std::fs::write(&lab.path, text).unwrap();
    let engine = pxelab::Engine::new(pxelab::app::load_lab(&lab.path).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let limits = pxelab::http::conn::Limits {
        idle: Duration::from_secs(2),
        ..Default::default()
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    rt.spawn(pxelab::http::serve_listener_with(
        engine,
        listener,
        cancel.clone(),
        limits,
    ));
    let url = format!(
        "http://127.0.0.1:{port}/apk/127.0.0.1:{}/{REPO}/x86_64/{k3s}",
        mirror.port
    );
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let u = url.clone();
            std::thread::spawn(move || curl_strict(&u))
        })
        .collect();
    for h in handles {
        let (ok, body) = h.join().unwrap();
        assert!(ok, "a waiting node was cut off ({} bytes)", body.len());
        assert!(body == files[&format!("{REPO}/x86_64/{k3s}")]);
    }
    assert_eq!(mirror.count(&path), 1);
    cancel.cancel();
    rt.shutdown_timeout(Duration::from_secs(3));
}
