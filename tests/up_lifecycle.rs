//! `pxelab up` from start to stop, as an operator runs it: the event record is readable
//! while pxelab runs, every server says `server-down` at SIGTERM, a lab whose servers
//! cannot start is refused with each reason (and the interfaces that exist), and the
//! state folder is private from the first file written into it.
//!
//! Loopback only, unprivileged ports: DHCP in server mode on a `127.x` lab uses plain
//! UDP sockets (nothing can be broadcast), TFTP on a free port.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A loopback lab with DHCP (server mode), TFTP, HTTP and the admin API on free ports.
struct Lab {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Lab {
    fn new(extra: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("assets")).unwrap();
        std::fs::write(d.join("assets/vmlinuz-lts"), b"kernel").unwrap();
        std::fs::write(d.join("assets/initramfs-lts"), b"initrd").unwrap();
        std::fs::create_dir(d.join("tftproot")).unwrap();
        std::fs::write(d.join("tftproot/undionly.kpxe"), b"ipxe").unwrap();
        let p: Vec<u16> = (0..5).map(|_| common::free_port()).collect();
        let yaml = format!(
            "name: lifecycle\n{extra}server_address: 127.0.0.1\n\
dhcp:\n  mode: server\n  subnet: 127.0.0.0/8\n  range: [127.1.210.10, 127.1.210.50]\n  port: {}\n  pxe_port: {}\n\
tftp:\n  enabled: true\n  root: tftproot\n  port: {}\n\
http:\n  bind: 127.0.0.1\n  port: {}\n  admin_port: {}\n\
boot:\n  assets_dir: assets\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n\
nodes: []\n",
            p[0], p[1], p[2], p[3], p[4]
        );
        let path = d.join("lab.yaml");
        std::fs::write(&path, yaml).unwrap();
        Lab { dir, path }
    }

    /// `up` run to its end, which must be a failure: its stderr.
    fn refused(&self) -> String {
        let out = self
            .up(&["--no-tui"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "up did not refuse: {err}");
        err
    }

    fn up(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::pxelab_bin());
        c.arg("-c").arg(&self.path).arg("up").args(args);
        c.stdin(Stdio::null());
        c
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn events_in(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn the_record_is_readable_while_running_and_every_server_says_down_at_sigterm() {
    let lab = Lab::new("");
    let record = lab.dir.path().join("events.jsonl");
    let mut child = common::ChildGuard(
        lab.up(&["--no-tui", "--json", "--record"])
            .arg(&record)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    // While pxelab runs, `tail -f` of the record shows every server up.
    let servers = ["dhcp", "tftp", "http", "admin", "ssh"];
    let live = common::wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        let evs = events_in(&record);
        servers
            .iter()
            .all(|s| {
                evs.iter()
                    .any(|e| e["event"] == "server-up" && e["source"] == *s)
            })
            .then_some(evs)
    });
    assert!(
        live.is_some(),
        "record while running: {:?}",
        std::fs::read_to_string(&record).unwrap_or_default()
    );
    // The lease writer made the state folder private (server mode, no secret needed yet).
    let state = lab.dir.path().join(".pxelab");
    common::sh("kill", &["-TERM", &child.0.id().to_string()]);
    let status = common::wait_for(Duration::from_secs(20), Duration::from_millis(20), || {
        child.0.try_wait().ok().flatten()
    })
    .expect("pxelab up exits on SIGTERM");
    assert!(status.success(), "exit status {status}");
    let stdout = reader.join().unwrap();
    let recorded = events_in(&record);
    for s in servers {
        let down = |evs: &[serde_json::Value]| {
            evs.iter().any(|e| {
                e["event"] == "server-down" && e["source"] == s && e["reason"] == "stopped"
            })
        };
        assert!(
            down(&recorded),
            "record lacks server-down of {s}: {recorded:?}"
        );
        let out: Vec<serde_json::Value> = stdout
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(down(&out), "stdout lacks server-down of {s}: {stdout:?}");
    }
    if state.exists() {
        assert_eq!(mode(&state), 0o700, ".pxelab mode");
        for e in std::fs::read_dir(&state).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(mode(&p), 0o600, "{} mode", p.display());
        }
    }
}

#[test]
fn a_missing_interface_is_refused_naming_the_interfaces_that_exist() {
    let lab = Lab::new("interface: eth-nope\n");
    let err = lab.refused();
    assert!(
        err.contains("interface: `eth-nope` does not exist") && err.contains("lab.yaml:2:"),
        "{err}"
    );
    assert!(err.contains("lo"), "names the interfaces here: {err}");
    assert!(err.contains("--keep-going"), "{err}");
}

#[test]
fn servers_that_cannot_start_stop_up_with_each_reason_unless_keep_going() {
    let lab = Lab::new("");
    // Take the TFTP and HTTP ports first: the bind fails as "in use".
    let text = std::fs::read_to_string(&lab.path).unwrap();
    let port_of = |section: &str| -> u16 {
        let at = text.find(&format!("{section}:\n")).unwrap();
        let rest = &text[at..];
        let p = rest.find("  port: ").unwrap() + 8;
        rest[p..].lines().next().unwrap().parse().unwrap()
    };
    let _tftp = std::net::UdpSocket::bind(("127.0.0.1", port_of("tftp"))).unwrap();
    let _http = std::net::TcpListener::bind(("127.0.0.1", port_of("http"))).unwrap();
    let err = lab.refused();
    assert!(
        err.contains("the TFTP server could not start")
            && err.contains("the HTTP server could not start"),
        "{err}"
    );
    assert!(!err.contains("the DHCP server could not start"), "{err}");
    // With --keep-going it runs with what started; SIGTERM ends it normally.
    let mut child = common::ChildGuard(
        lab.up(&["--no-tui", "--json", "--keep-going"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let dhcp_up = common::wait_for(Duration::from_secs(20), Duration::from_millis(1), || {
        let l = lines.next()?.ok()?;
        (l.contains("\"server-up\"") && l.contains("\"dhcp\"")).then_some(())
    });
    assert!(dhcp_up.is_some(), "DHCP runs under --keep-going");
    assert!(child.0.try_wait().unwrap().is_none(), "still running");
}
