//! Harness for the HTTP tests: a temporary lab (lab.yaml + small fake assets) on
//! unprivileged loopback ports, the real boot server (and admin API) running in-process,
//! and `curl` as the client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pxelab::engine::{Event, EventKind};
use pxelab::Engine;
use tokio::sync::broadcast::Receiver;
use tokio_util::sync::CancellationToken;

/// The known nodes of the test lab.
pub const NODE1: &str = "52:54:00:00:00:01";
pub const NODE2: &str = "52:54:00:00:00:02";
/// Text that only exists outside the assets folder.
pub const SECRET: &str = "TOP-SECRET-OUTSIDE-ASSETS";

/// A free port (see `common::free_port`).
pub fn free_port() -> u16 {
    crate::common::free_port()
}

/// Deterministic, position-dependent content (so a wrong offset shows).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

/// A lab in a temporary folder.
pub struct TempLab {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub port: u16,
    pub admin_port: u16,
}

impl TempLab {
    /// Writes lab.yaml and assets: kernel 1.5 MiB, initrd 40 KiB, modloop 16 MiB,
    /// a per-node kernel, an apkovl, a symlink leading outside and an unlisted file.
    pub fn new() -> TempLab {
        let dir = tempfile::tempdir().unwrap();
        let assets = dir.path().join("assets");
        std::fs::create_dir(&assets).unwrap();
        std::fs::write(assets.join("vmlinuz-lts"), pattern(1_572_864, 1)).unwrap();
        std::fs::write(assets.join("initramfs-lts"), pattern(40_000, 2)).unwrap();
        std::fs::write(assets.join("modloop-lts"), pattern(16 << 20, 3)).unwrap();
        std::fs::write(assets.join("vmlinuz-special"), pattern(5_000, 4)).unwrap();
        std::fs::write(assets.join("node.apkovl.tar.gz"), pattern(777, 5)).unwrap();
        std::fs::write(assets.join("unlisted.bin"), SECRET).unwrap();
        std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink("../secret.txt", assets.join("escape")).unwrap();
        let tftproot = dir.path().join("tftproot");
        std::fs::create_dir(&tftproot).unwrap();
        std::fs::write(tftproot.join("ipxe.efi"), pattern(300_000, 6)).unwrap();
        std::fs::write(tftproot.join("undionly.kpxe"), pattern(70_000, 7)).unwrap();
        let port = free_port();
        let admin_port = free_port();
        let yaml = format!(
            "# test lab\n\
name: httptest\n\
server_address: 127.0.0.1\n\
dhcp:\n  mode: off\n\
tftp:\n  enabled: false\n  root: tftproot\n\
http:\n  bind: 127.0.0.1\n  port: {port}\n  admin_port: {admin_port}\n\
ssh:\n  watch: false\n\
boot:\n  assets_dir: assets\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  modloop: modloop-lts\n  extra: [node.apkovl.tar.gz, escape]\n  cmdline: \"console=ttyS0 ip=dhcp\"\n\
unknown: hold\n\
nodes:\n  - mac: {NODE1}\n    hostname: node-1\n    role: k3s-server\n  - mac: {NODE2}\n    hostname: node-2\n    role: k3s-agent\n    kernel: vmlinuz-special\n"
        );
        let path = dir.path().join("lab.yaml");
        std::fs::write(&path, yaml).unwrap();
        TempLab {
            dir,
            path,
            port,
            admin_port,
        }
    }

    /// Moves the lab to two other free ports (rewrites lab.yaml).
    pub fn new_ports(&mut self) {
        let (port, admin_port) = (free_port(), free_port());
        let text = read(&self.path)
            .replace(
                &format!("  port: {}\n", self.port),
                &format!("  port: {port}\n"),
            )
            .replace(
                &format!("  admin_port: {}\n", self.admin_port),
                &format!("  admin_port: {admin_port}\n"),
            );
        std::fs::write(&self.path, text).unwrap();
        self.port = port;
        self.admin_port = admin_port;
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn admin(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// The admin API's bearer token, as the running server wrote it.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(".pxelab/admin-token"))
            .expect("the admin API wrote its token")
            .trim()
            .to_string()
    }

    pub fn asset(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join("assets").join(name)).unwrap()
    }

    /// A file of the TFTP root (the iPXE binaries).
    pub fn tftp_file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join("tftproot").join(name)).unwrap()
    }
}

/// The boot server (and optionally the admin API) running on its own runtime.
pub struct Server {
    pub lab: TempLab,
    pub engine: Engine,
    pub rx: Receiver<Event>,
    cancel: CancellationToken,
    rt: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// Starts the boot server, and the admin API when `admin` is set, and waits until
    /// each reported `server-up`. If a port was taken meanwhile (another test on this
    /// machine), the lab gets new ports and the start is retried.
    pub fn start(mut lab: TempLab, admin: bool) -> Server {
        for _ in 0..5 {
            match Server::try_start(&lab, admin) {
                Some((engine, rx, cancel, rt)) => {
                    return Server {
                        lab,
                        engine,
                        rx,
                        cancel,
                        rt: Some(rt),
                    }
                }
                None => lab.new_ports(),
            }
        }
        panic!("the servers did not come up in 5 attempts");
    }

    #[allow(clippy::type_complexity)]
    fn try_start(
        lab: &TempLab,
        admin: bool,
    ) -> Option<(
        Engine,
        Receiver<Event>,
        CancellationToken,
        tokio::runtime::Runtime,
    )> {
        let loaded = pxelab::app::load_lab(&lab.path).unwrap();
        let engine = Engine::new(loaded);
        let mut rx = engine.subscribe();
        let cancel = CancellationToken::new();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let _service = {
            let _in = rt.enter();
            pxelab::app::start_service(&engine, &cancel)
        };
        let plan = engine.lab().plan().unwrap().clone();
        let mut tasks = vec![rt.spawn(pxelab::http::serve(
            engine.clone(),
            plan.http,
            cancel.clone(),
        ))];
        let mut want = vec![pxelab::engine::Source::Http];
        if admin {
            tasks.push(rt.spawn(pxelab::http::admin::serve(
                engine.clone(),
                plan.admin,
                cancel.clone(),
            )));
            want.push(pxelab::engine::Source::Admin);
        }
        // The servers start concurrently: their `server-up` events come in either order.
        let start = Instant::now();
        while !want.is_empty() {
            if let Ok(ev) = rx.try_recv() {
                if let EventKind::ServerUp { source, .. } = &ev.kind {
                    want.retain(|w| w != source);
                }
                continue;
            }
            // A server task that ended before coming up could not bind.
            let failed = tasks.iter().any(|t| t.is_finished());
            if failed || start.elapsed() > Duration::from_secs(10) {
                cancel.cancel();
                rt.shutdown_timeout(Duration::from_secs(2));
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Some((engine, rx, cancel, rt))
    }

    /// The next `http-fetch` or `refused` event: every request ends in exactly one.
    pub fn outcome(&mut self) -> Event {
        next_event(&mut self.rx, |k| {
            matches!(k, EventKind::HttpFetch { .. } | EventKind::Refused { .. })
        })
        .expect("no http-fetch/refused event within 10 s")
    }

    /// Asserts that no further outcome event is pending.
    pub fn no_more_outcomes(&mut self) {
        while let Ok(ev) = self.rx.try_recv() {
            assert!(
                !matches!(
                    ev.kind,
                    EventKind::HttpFetch { .. } | EventKind::Refused { .. }
                ),
                "unexpected extra event {ev:?}"
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(3));
        }
    }
}

/// Waits (at most 10 s) for an event whose kind matches; skips the others.
pub fn next_event(rx: &mut Receiver<Event>, pred: impl Fn(&EventKind) -> bool) -> Option<Event> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        match rx.try_recv() {
            Ok(ev) if pred(&ev.kind) => return Some(ev),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("event bus: {e}"),
        }
    }
    None
}

/// What curl got.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Got {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header value (case-insensitive name), from the last response block.
    pub fn header(&self, name: &str) -> Option<String> {
        let block = self
            .headers
            .rsplit("\r\n\r\n")
            .find(|b| !b.trim().is_empty())?;
        block.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Runs the real `curl` with `args` against `url`; status, headers and body.
pub fn curl(url: &str, args: &[&str]) -> Got {
    let tmp = tempfile::tempdir().unwrap();
    let hdr = tmp.path().join("h");
    let body = tmp.path().join("b");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D"])
        .arg(&hdr)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl is installed");
    let status: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "curl {url}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        });
    Got {
        status,
        headers: std::fs::read_to_string(&hdr).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// Reads a file, for assertions on lab.yaml.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}
