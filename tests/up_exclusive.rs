//! One instance per lab, and nothing left behind by a killed one (issue 13): a second
//! `pxelab up` of a running lab exits non-zero naming the first's PID and lab.yaml
//! (before it binds a port: two servers once shared DHCP and TFTP through SO_REUSEPORT
//! and split the clients); temporary files a killed writer left are swept at start; a
//! demo ended by SIGHUP removes its temporary folder like one ended by SIGTERM.
//!
//! Loopback only, unprivileged ports (DHCP in server mode on a `127.x` lab uses plain UDP
//! sockets; nothing is broadcast).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

struct Lab {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("assets")).unwrap();
        std::fs::write(d.join("assets/vmlinuz-lts"), b"kernel").unwrap();
        std::fs::create_dir(d.join("tftproot")).unwrap();
        std::fs::write(d.join("tftproot/undionly.kpxe"), b"ipxe").unwrap();
        let p: Vec<u16> = (0..5).map(|_| common::free_port()).collect();
        let yaml = format!(
            "name: exclusive\nserver_address: 127.0.0.1\n\
dhcp:\n  mode: server\n  subnet: 127.0.0.0/8\n  range: [127.1.211.10, 127.1.211.50]\n  port: {}\n  pxe_port: {}\n\
tftp:\n  enabled: true\n  root: tftproot\n  port: {}\n\
http:\n  bind: 127.0.0.1\n  port: {}\n  admin_port: {}\n\
ssh:\n  watch: false\n\
boot:\n  assets_dir: assets\n  kernel: vmlinuz-lts\n\
nodes: []\n",
            p[0], p[1], p[2], p[3], p[4]
        );
        let path = d.join("lab.yaml");
        std::fs::write(&path, yaml).unwrap();
        Lab { dir, path }
    }

    fn up(&self) -> Command {
        let mut c = Command::new(common::pxelab_bin());
        c.arg("-c")
            .arg(&self.path)
            .args(["up", "--no-tui", "--json"])
            .stdin(Stdio::null());
        c
    }
}

/// Starts `up` and waits for its four listeners (DHCP, TFTP, HTTP, admin) to be up.
fn start(lab: &Lab) -> common::ChildGuard {
    let mut child = common::ChildGuard(
        lab.up()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut up = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("\"event\":\"server-up\"") {
                up += 1;
                if up == 4 {
                    let _ = tx.send(());
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the first pxelab up starts its four servers");
    child
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_second_up_of_a_running_lab_is_refused_naming_the_first() {
    let lab = Lab::new();
    let first = start(&lab);
    let pid = first.0.id();
    assert_eq!(mode(&lab.dir.path().join(".pxelab")), 0o700);
    let out = lab.up().stdout(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second instance started: {err}");
    assert!(err.contains(&format!("PID {pid}")), "{err}");
    assert!(
        err.contains(&lab.path.display().to_string()),
        "names lab.yaml: {err}"
    );
    // It never got as far as a port: nothing of it in the first one's event stream,
    // and the first one still runs.
    assert!(!err.contains("bind"), "{err}");
    drop(first);
    // The lock died with the process: a new instance starts.
    let again = start(&lab);
    drop(again);
}

#[test]
fn stale_temporary_files_of_killed_writers_are_swept_at_start() {
    let lab = Lab::new();
    let state = lab.dir.path().join(".pxelab");
    std::fs::create_dir(&state).unwrap();
    let beside = lab.dir.path().join(".lab.yaml.pxelab-tmp-00000000deadbeef");
    let inside = state.join(".leases.json.pxelab-tmp-00000000cafebabe");
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for p in [&beside, &inside] {
        std::fs::write(p, b"half a file").unwrap();
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    let child = start(&lab);
    assert!(!beside.exists(), "{} left", beside.display());
    assert!(!inside.exists(), "{} left", inside.display());
    drop(child);
}

/// The demo's folder, from the line it prints on stderr.
fn demo_folder(line: &str) -> Option<PathBuf> {
    let rest = line.strip_prefix("pxelab demo: lab ")?;
    let lab = rest.split(" with ").next()?;
    Path::new(lab).parent().map(Path::to_path_buf)
}

#[test]
fn a_demo_ended_by_sighup_or_sigterm_removes_its_folder() {
    for signal in ["-HUP", "-TERM"] {
        let mut child = common::ChildGuard(
            Command::new(common::pxelab_bin())
                .args(["demo", "--no-tui", "--nodes", "2", "--duration", "60"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stderr = child.0.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
        let folder = lines
            .by_ref()
            .take(20)
            .find_map(|l| demo_folder(&l))
            .expect("the demo names its lab");
        assert!(folder.is_dir());
        std::thread::spawn(move || lines.for_each(drop));
        // Let it get its servers up, then hang up on it.
        std::thread::sleep(Duration::from_millis(500));
        common::sh("kill", &[signal, &child.0.id().to_string()]);
        let status = common::wait_for(Duration::from_secs(20), Duration::from_millis(20), || {
            child.0.try_wait().ok().flatten()
        });
        assert!(status.is_some(), "demo still running after {signal}");
        assert!(!folder.exists(), "{} left after {signal}", folder.display());
    }
}
