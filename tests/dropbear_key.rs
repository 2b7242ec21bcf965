//! A role with `ssh.server: dropbear` gets its node's pinned host key in dropbear's own
//! format, and dropbear itself agrees: the user-data that `pxelab render` prints is
//! decoded as tiny-cloud would (`encoding: b64`), `dropbearkey -y` reads the file and
//! prints the pinned fingerprint, and a real `dropbear -r FILE` on loopback passes the
//! watcher's pinned host key check (and fails another node's). No root needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use pxelab::config::Lab;
use pxelab::watch::conn::{self, ConnError};
use pxelab::watch::trust::Trust;
use pxelab::Mac;

const DB: &str = "52:54:00:00:db:01";
const OTHER: &str = "52:54:00:00:db:02";
const KEY_PATH: &str = "/etc/dropbear/dropbear_ed25519_host_key";

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

/// A lab whose k3s-server runs dropbear and whose agent keeps OpenSSH.
fn write_lab(dir: &Path) -> (PathBuf, Lab) {
    let text = format!(
        "name: dropbeartest\nboot:\n  kernel: vmlinuz\nroles:\n  k3s-server:\n    ssh:\n      server: dropbear\n\
         nodes:\n  - mac: {DB}\n    hostname: db-1\n    role: k3s-server\n\
         \x20 - mac: {OTHER}\n    hostname: ossh-1\n    role: k3s-agent\n"
    );
    let path = dir.join("lab.yaml");
    std::fs::write(&path, &text).unwrap();
    let lab = Lab::parse(&path, &text).unwrap();
    (path, lab)
}

/// `pxelab render NODE user-data`, the operator's own view of what the node gets.
fn render_user_data(lab_path: &Path, node: &str) -> yaml_serde::Value {
    let out = Command::new(common::pxelab_bin())
        .args(["render", node, "user-data", "-c"])
        .arg(lab_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml_serde::from_slice(&out.stdout).unwrap()
}

fn write_file<'a>(ud: &'a yaml_serde::Value, path: &str) -> Option<&'a yaml_serde::Value> {
    ud["write_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str() == Some(path))
}

/// Writes the delivered dropbear key to `dir` (mode 0600, as tiny-cloud would).
fn delivered_key(lab_path: &Path, dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let ud = render_user_data(lab_path, "db-1");
    let f = write_file(&ud, KEY_PATH).expect("the dropbear key in write_files");
    assert_eq!(f["permissions"].as_str(), Some("0600"));
    assert_eq!(f["encoding"].as_str(), Some("b64"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(f["content"].as_str().unwrap())
        .unwrap();
    let file = dir.join("dropbear_ed25519_host_key");
    std::fs::write(&file, bytes).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    file
}

#[test]
fn dropbear_roles_get_the_pinned_key_in_dropbears_format_and_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (path, lab) = write_lab(dir.path());
    let (public, _) = pxelab::secrets::host_public_key(&lab, mac(DB)).unwrap();
    let ud = render_user_data(&path, "db-1");
    assert!(write_file(&ud, "/etc/ssh/ssh_host_ed25519_key").is_none());
    let pubfile = write_file(&ud, &format!("{KEY_PATH}.pub")).expect("public key");
    assert_eq!(
        pubfile["content"].as_str().map(str::trim),
        Some(public.to_openssh().unwrap().as_str())
    );
    let ud = render_user_data(&path, "ossh-1");
    assert!(write_file(&ud, KEY_PATH).is_none());
    assert!(write_file(&ud, "/etc/ssh/ssh_host_ed25519_key").is_some());
}

#[test]
fn dropbearkey_reads_the_delivered_key_and_prints_the_pinned_fingerprint() {
    if !common::require_program("dropbearkey") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, lab) = write_lab(dir.path());
    let file = delivered_key(&path, dir.path());
    let out = Command::new("dropbearkey")
        .arg("-y")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (public, fingerprint) = pxelab::secrets::host_public_key(&lab, mac(DB)).unwrap();
    assert!(
        text.lines()
            .any(|l| l.trim() == format!("Fingerprint: {fingerprint}")),
        "want {fingerprint}:\n{text}"
    );
    let blob = public.to_openssh().unwrap();
    let blob = blob.split_whitespace().nth(1).unwrap();
    assert!(text.contains(blob), "want {blob}:\n{text}");
}

/// A dropbear on loopback, killed on drop.
fn start_dropbear(key: &Path, dir: &Path, port: u16) -> common::ChildGuard {
    let log = std::fs::File::create(dir.join("dropbear.log")).unwrap();
    let child = Command::new(common::which("dropbear").unwrap())
        .arg("-r")
        .arg(key)
        .args(["-p", &format!("127.0.0.1:{port}"), "-F", "-E", "-s", "-P"])
        .arg(dir.join("dropbear.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let guard = common::ChildGuard(child);
    let up = common::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(
        up.is_some(),
        "dropbear did not start: {}",
        std::fs::read_to_string(dir.join("dropbear.log")).unwrap_or_default()
    );
    guard
}

#[tokio::test]
async fn a_real_dropbear_with_the_delivered_key_passes_the_pinned_check() {
    if !common::require_program("dropbear") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, lab) = write_lab(dir.path());
    let file = delivered_key(&path, dir.path());
    let port = common::free_port();
    let _dropbear = start_dropbear(&file, dir.path(), port);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let operator = pxelab::secrets::operator_key(&lab).unwrap();
    let attempt = |m: &str| {
        let (want, _) = pxelab::secrets::host_public_key(&lab, mac(m)).unwrap();
        conn::open(
            addr,
            Trust::Pinned(want),
            "pxelab-test",
            operator.clone(),
            Duration::from_secs(10),
            Duration::from_secs(5),
        )
    };
    // The pinned key matches: the watcher goes on to log in, which this dropbear refuses
    // (the operator key is in no authorized_keys here). A refused login is past the check.
    match attempt(DB).await {
        Ok(_) | Err(ConnError::Auth { .. }) => {}
        Err(e) => panic!("the pinned check failed against dropbear: {e}"),
    }
    // Another node's pin is refused, naming the key dropbear showed.
    let (_, shown) = pxelab::secrets::host_public_key(&lab, mac(DB)).unwrap();
    match attempt(OTHER).await {
        Err(ConnError::HostKey { seen, .. }) => assert_eq!(seen, shown),
        Err(e) => panic!("expected a host key mismatch, got {e}"),
        Ok(_) => panic!("expected a host key mismatch, logged in"),
    }
}
