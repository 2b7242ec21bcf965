//! Shared test harness: the skip-or-fail rule for privileged tests, network namespaces
//! that clean up in `Drop`, and bounded waits.
//!
//! - [`packages`]: the program → Debian package table (`.ci/run` installs those packages;
//!   tests/ci_packages.rs checks both stay complete).
//! - [`skips`]: how a skip is made visible (straight to stderr and into
//!   `target/tmp/pxelab-skips.txt`, listed at the end of `cargo test` by
//!   tests/zz_skip_summary.rs, for that run only).
//!
//! Include from a test file with `mod common;`. Not every test uses every item.
#![allow(dead_code)]

pub mod packages;
pub mod skips;
pub mod tmux;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// True when running under CI (`.ci/run` sets `PXELAB_CI=1`): privileged tests must run.
pub fn in_ci() -> bool {
    std::env::var_os("PXELAB_CI").is_some_and(|v| v != "0")
}

/// Whether we are root.
pub fn is_root() -> bool {
    // SAFETY-free: read the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Returns true if the test may go on. Without the requirement: in CI, panics (a skip
/// there would hide a failure); elsewhere records the skip where it is seen (see
/// [`skips`]) and returns false.
pub fn require(ok: bool, what: &str) -> bool {
    require_from(ok, what, None)
}

/// [`require`], naming the Debian package that provides what is missing.
fn require_from(ok: bool, what: &str, package: Option<&str>) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        let from = package
            .map(|p| format!(" (package {p})"))
            .unwrap_or_default();
        panic!("this test needs {what}{from}, and PXELAB_CI is set: refusing to skip");
    }
    let remedy = match package {
        Some(p) => format!("apt-get install {p}"),
        None if what.starts_with("root") => "run as root".to_string(),
        None => "provide it".to_string(),
    };
    skips::record(what, package, &remedy);
    false
}

/// Requires root.
pub fn require_root() -> bool {
    require(is_root(), "root (network namespaces)")
}

/// Requires a program on PATH. Name it literally: tests/ci_packages.rs reads these
/// calls to check that [`packages::PROGRAMS`] and `.ci/run` know the program.
pub fn require_program(name: &str) -> bool {
    let package = packages::package_of(name);
    let what = match package {
        Some(_) => format!("`{name}` installed"),
        None => format!("`{name}` installed (not in tests/common/packages.rs: add it)"),
    };
    require_from(which(name).is_some(), &what, package)
}

/// Requires every program of `names` (stops at the first missing one).
pub fn require_programs(names: &[&str]) -> bool {
    names.iter().all(|n| require_program(n))
}

/// Finds a program on PATH (also /usr/sbin and /sbin).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file());
    found
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace removed (with everything in it) on drop.
///
/// `NetNs::with_bridge("pxt1", "10.77.0.1/24")` makes namespace `pxt1` holding bridge
/// `br0` with that address, loopback up. Veth peers and taps are added with
/// [`NetNs::add_veth_host`]. Names are prefixed so leftovers of a crashed run are
/// recognisable (`ip netns list | grep pxt`) and removed by the next run with the same name.
pub struct NetNs {
    /// The namespace name.
    pub name: String,
}

impl NetNs {
    /// Creates namespace `name` (removing a leftover of the same name first), loopback up.
    pub fn new(name: &str) -> NetNs {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh("ip", &["netns", "add", name]);
        let ns = NetNs {
            name: name.to_string(),
        };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// A namespace with bridge `br0` carrying `cidr` (e.g. `10.77.0.1/24`).
    pub fn with_bridge(name: &str, cidr: &str) -> NetNs {
        let ns = NetNs::new(name);
        ns.exec_ok(&["ip", "link", "add", "br0", "type", "bridge"]);
        ns.exec_ok(&[
            "ip",
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "forward_delay",
            "0",
        ]);
        ns.exec_ok(&["ip", "addr", "add", cidr, "dev", "br0"]);
        ns.exec_ok(&["ip", "link", "set", "br0", "up"]);
        ns
    }

    /// Adds a second namespace-local "host": a veth pair `<peer>` (in a new namespace
    /// `<name>-<peer>`) ↔ `v-<peer>` on `br0`. Returns the peer's namespace.
    pub fn add_veth_host(&self, peer: &str) -> NetNs {
        let host = NetNs::new(&format!("{}-{}", self.name, peer));
        let br_end = format!("v-{peer}");
        self.exec_ok(&[
            "ip", "link", "add", &br_end, "type", "veth", "peer", "name", "eth0", "netns",
            &host.name,
        ]);
        self.exec_ok(&["ip", "link", "set", &br_end, "master", "br0"]);
        self.exec_ok(&["ip", "link", "set", &br_end, "up"]);
        host.exec_ok(&["ip", "link", "set", "eth0", "up"]);
        host
    }

    /// Adds a tap device `name` on `br0` (for QEMU `-netdev tap,ifname=…`).
    pub fn add_tap(&self, tap: &str) {
        self.exec_ok(&["ip", "tuntap", "add", "dev", tap, "mode", "tap"]);
        self.exec_ok(&["ip", "link", "set", tap, "master", "br0"]);
        self.exec_ok(&["ip", "link", "set", tap, "up"]);
    }

    /// A `Command` that runs `argv` inside the namespace.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(argv);
        c
    }

    /// Runs `argv` inside the namespace and returns its output (any exit status).
    pub fn exec(&self, argv: &[&str]) -> Output {
        self.command(argv)
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {argv:?}: {e}", self.name))
    }

    /// Runs `argv` inside the namespace and panics if it fails.
    pub fn exec_ok(&self, argv: &[&str]) -> Output {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "in netns {}: {argv:?} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Kill whatever still runs inside, then remove the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).output();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A child process killed on drop.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` every `step` until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, step: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(step);
    }
    None
}

/// What a lease file and its journal (`FILE.journal`, where each lease goes first) hold,
/// as one text: a lease is on disk when it is in either.
#[allow(dead_code)]
pub fn lease_text(file: &std::path::Path) -> String {
    let mut journal = file.as_os_str().to_owned();
    journal.push(".journal");
    let mut text = std::fs::read_to_string(file).unwrap_or_default();
    text.push('\n');
    text.push_str(&std::fs::read_to_string(PathBuf::from(journal)).unwrap_or_default());
    text
}

/// The pxelab binary built for this test run.
pub fn pxelab_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pxelab"))
}

/// A port free for both TCP and UDP on every address, below the kernel's ephemeral range
/// (32768 and up) so that no outgoing socket (curl's source port, a TFTP transfer, an SSH
/// client of another test) can take it between this check and the server's bind. Spread
/// by process id; a counter keeps the ports of one test binary distinct.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    for _ in 0..500 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((std::process::id().wrapping_mul(97) + n * 7) % 12_000) as u16;
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
            && std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// Reads a connection the server should have closed until it ends (EOF or reset), at
/// most 32 MiB and 5 s of silence: whether it ended, and the bytes drained before.
#[allow(dead_code)]
pub fn drains_to_close(c: &mut std::net::TcpStream) -> (bool, usize) {
    use std::io::Read;
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    let ended = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) if total < 32 << 20 => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            _ => break false,
        }
    };
    (ended, total)
}
