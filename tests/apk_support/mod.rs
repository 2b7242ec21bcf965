//! Test support for the package cache: an Alpine repository made on the spot (real
//! formats: `.apk` = signature, control and data gzip streams; `APKINDEX.tar.gz` =
//! signature and index streams, with `C:Q1…` checksums and `S:` sizes), and a fake
//! upstream mirror on loopback that counts the requests for each path and can be told
//! to send damaged or cut files, or be stopped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// A gzip stream of a tar holding `files`; `end` keeps the end-of-archive blocks
/// (abuild strips them from signature and control streams so the streams concatenate).
fn tar_gz(files: &[(&str, &[u8])], end: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    let mut t = b.into_inner().unwrap();
    if !end {
        t.truncate(t.len() - 1024);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&t).unwrap();
    gz.finish().unwrap()
}

/// One package of the made-up repository.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// The `.apk` file.
    pub bytes: Vec<u8>,
    /// `C:` of its index entry.
    pub checksum: String,
}

impl Package {
    /// A package with one file (`usr/share/NAME/payload`, `size` bytes of noise).
    pub fn new(name: &str, version: &str, size: usize) -> Package {
        let sig = tar_gz(
            &[(".SIGN.RSA.test@example.rsa.pub", b"not a real signature")],
            false,
        );
        let pkginfo = format!("pkgname = {name}\npkgver = {version}\narch = x86_64\n");
        let control = tar_gz(&[(".PKGINFO", pkginfo.as_bytes())], false);
        // Pseudo-random (xorshift), so the package is as big as asked once compressed.
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ size as u64;
        let payload: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let data = tar_gz(&[(&format!("usr/share/{name}/payload"), &payload)], true);
        let q1 = Sha1::digest(&control);
        let checksum = format!("Q1{}", base64::engine::general_purpose::STANDARD.encode(q1));
        Package {
            name: name.into(),
            version: version.into(),
            bytes: [sig, control, data].concat(),
            checksum,
        }
    }

    /// `NAME-VERSION.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }
}

/// The `APKINDEX.tar.gz` listing `packages`.
pub fn apkindex(packages: &[Package]) -> Vec<u8> {
    let mut text = String::new();
    for p in packages {
        text.push_str(&format!(
            "C:{}\nP:{}\nV:{}\nA:x86_64\nS:{}\nI:{}\nT:test package\n\n",
            p.checksum,
            p.name,
            p.version,
            p.bytes.len(),
            p.bytes.len() * 2
        ));
    }
    let sig = tar_gz(
        &[(".SIGN.RSA.test@example.rsa.pub", b"not a real signature")],
        false,
    );
    let index = tar_gz(
        &[
            ("DESCRIPTION", b"test repository"),
            ("APKINDEX", text.as_bytes()),
        ],
        true,
    );
    [sig, index].concat()
}

/// Writes a repository (`ROOT/REPO/x86_64/…`) for `packages`; returns the files by
/// their path under `root`.
pub fn write_repo(root: &Path, repo: &str, packages: &[Package]) -> HashMap<String, Vec<u8>> {
    let dir = root.join(repo).join("x86_64");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = HashMap::new();
    let index = apkindex(packages);
    std::fs::write(dir.join("APKINDEX.tar.gz"), &index).unwrap();
    files.insert(format!("{repo}/x86_64/APKINDEX.tar.gz"), index);
    for p in packages {
        std::fs::write(dir.join(p.file_name()), &p.bytes).unwrap();
        files.insert(format!("{repo}/x86_64/{}", p.file_name()), p.bytes.clone());
    }
    files
}

/// How the fake mirror answers one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// One byte of the body flipped (same length).
    Flip(usize),
    /// Content-Length says more than is sent, then the connection closes.
    Cut,
    /// Sent whole, in 20 pieces spread over this long (a slow mirror).
    Trickle(Duration),
}

/// A fake upstream mirror on 127.0.0.1 serving files from a folder, one thread per
/// connection, counting requests per path. It answers after `delay` (so concurrent
/// clients overlap).
pub struct Mirror {
    pub port: u16,
    root: PathBuf,
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    damage: Arc<Mutex<HashMap<String, Damage>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mirror {
    /// Serves `root` at `http://127.0.0.1:PORT/`.
    pub fn start(root: &Path, delay: Duration) -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let damage = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, d, s, r) = (
            hits.clone(),
            damage.clone(),
            stop.clone(),
            root.to_path_buf(),
        );
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, d, r) = (h.clone(), d.clone(), r.clone());
                std::thread::spawn(move || answer(conn, &r, &h, &d, delay));
            }
        });
        Mirror {
            port,
            root: root.to_path_buf(),
            hits,
            damage,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests seen for `path` (`/alpine/v3.21/main/x86_64/…`).
    pub fn count(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Requests seen in all.
    pub fn total(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }

    /// Damages (or, with `None`, repairs) what `path` answers.
    pub fn damage(&self, path: &str, how: Option<Damage>) {
        let mut d = self.damage.lock().unwrap();
        match how {
            Some(h) => d.insert(path.to_string(), h),
            None => d.remove(path),
        };
    }

    /// Stops listening: from now on connections are refused.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answer(
    mut conn: TcpStream,
    root: &Path,
    hits: &Mutex<HashMap<String, usize>>,
    damage: &Mutex<HashMap<String, Damage>>,
    delay: Duration,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Headers until the blank line (bounded).
    for _ in 0..100 {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    std::thread::sleep(delay);
    let file = root.join(path.trim_start_matches('/'));
    let Ok(mut body) = std::fs::read(&file) else {
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let how = damage.lock().unwrap().get(&path).copied();
    let mut announced = body.len();
    match how {
        Some(Damage::Flip(at)) => {
            let i = at.min(body.len() - 1);
            body[i] ^= 0xff;
        }
        Some(Damage::Cut) => {
            announced = body.len();
            body.truncate(body.len() / 2);
        }
        Some(Damage::Trickle(_)) | None => {}
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
    );
    let _ = conn.write_all(head.as_bytes());
    if let Some(Damage::Trickle(total)) = how {
        let piece = body.len().div_ceil(20).max(1);
        for chunk in body.chunks(piece) {
            std::thread::sleep(total / 20);
            if conn.write_all(chunk).is_err() {
                return;
            }
        }
    } else {
        let _ = conn.write_all(&body);
    }
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Both);
    let mut sink = Vec::new();
    let _ = reader.read_to_end(&mut sink);
}

/// Requests per path in a `busybox httpd -f -vv` log (`ADDR: url:/path` lines): the
/// VM test's mirror, which runs inside its network namespace.
pub fn httpd_requests(log: &Path) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        if let Some((_, url)) = line.split_once(" url:") {
            *out.entry(url.trim().to_string()).or_default() += 1;
        }
    }
    out
}
