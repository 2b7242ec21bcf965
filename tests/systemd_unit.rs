//! The systemd unit in contrib/systemd runs pxelab headless with only two capabilities.
//! Proven as a user runs it: `systemd-analyze verify` accepts the unit, and pxelab
//! started the way the unit starts it (not root, a dynamic uid, no capability but the
//! unit's `AmbientCapabilities`, no new privileges) serves a real DHCP client in a network
//! namespace on the privileged ports; with one capability fewer, `up` refuses and names
//! the server that cannot start.

mod common;
mod dhcp_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::NetNs;
use dhcp_support::Pxelab;

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/pxelab.service")
}

fn unit() -> String {
    std::fs::read_to_string(unit_path()).expect("contrib/systemd/pxelab.service")
}

/// The values of `key=` lines.
fn values(key: &str) -> Vec<String> {
    unit()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn systemd_accepts_the_unit() {
    if !common::require_program("systemd-analyze") {
        return;
    }
    // The unit names the installed binary; verify checks that it exists.
    let dir = tempfile::tempdir().unwrap();
    let text = unit().replace(
        "/usr/local/bin/pxelab",
        common::pxelab_bin().to_str().unwrap(),
    );
    let copy = dir.path().join("pxelab.service");
    std::fs::write(&copy, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("pxelab.service:"),
        "{err}"
    );
    let caps = values("AmbientCapabilities");
    assert_eq!(caps, ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]);
    assert_eq!(values("CapabilityBoundingSet"), caps);
    assert_eq!(values("NoNewPrivileges"), ["yes"]);
}

/// `setpriv` arguments that give a process exactly `caps` as an unprivileged uid.
fn as_service(caps: &[String]) -> Vec<String> {
    let list: Vec<String> = caps
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let list = list.join(",");
    vec![
        "setpriv".into(),
        "--reuid=65534".into(),
        "--regid=65534".into(),
        "--clear-groups".into(),
        format!("--inh-caps=-all,{list}"),
        format!("--ambient-caps=-all,{list}"),
        format!("--bounding-set=-all,{list}"),
        "--no-new-privs".into(),
    ]
}

fn lab(dir: &Path) -> PathBuf {
    // Server mode on the namespace's bridge, on the standard ports, RAs included (auto).
    let p = dhcp_support::write_lab(
        dir,
        "name: unit-test\ninterface: br0\nserver_address: 10.77.9.1\n\
         dhcp:\n  mode: server\n  subnet: 10.77.9.0/24\n  range: [10.77.9.100, 10.77.9.150]\n\
         tftp: {root: tftproot}\nhttp: {port: 80, admin_port: 7480}\nssh: {watch: false}\n\
         boot: {kernel: vmlinuz, initrds: [initrd]}\nunknown: hold\nnodes: []\n",
    );
    std::fs::create_dir_all(dir.join("tftproot")).unwrap();
    std::fs::write(dir.join("tftproot/undionly.kpxe"), b"ipxe").unwrap();
    // The service's state directory belongs to its (dynamic) user.
    common::sh("chown", &["-R", "65534:65534", dir.to_str().unwrap()]);
    p
}

#[test]
fn pxelab_serves_with_only_the_units_capabilities() {
    if !common::require_root() || !common::require_programs(&["setpriv", "busybox"]) {
        return;
    }
    let caps = values("AmbientCapabilities");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let lab = lab(dir.path());
    let ns = NetNs::with_bridge("pxtunit", "10.77.9.1/24");
    let argv = as_service(&caps);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let p = Pxelab::start(ns.command(&argv), &lab, &["dhcp", "tftp", "http", "ra"]);
    // A real client gets an address: the reply goes out on the raw socket to a host
    // that has none yet.
    let c = ns.add_veth_host("c1");
    let script = dir.path().join("udhcpc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = bound ] && ip addr replace \"$ip/24\" dev \"$interface\"\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = c.exec(&[
        "timeout",
        "30",
        "busybox",
        "udhcpc",
        "-i",
        "eth0",
        "-n",
        "-q",
        "-t",
        "5",
        "-T",
        "2",
        "-s",
        script.to_str().unwrap(),
    ]);
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "udhcpc got no lease: {said}");
    p.wait(Duration::from_secs(10), "the lease", |e| {
        e["event"] == "dhcp-lease" || (e["event"] == "dhcp-reply" && e["msg"] == "ack")
    });
    // TFTP on port 69 answers too.
    let got = c.exec(&[
        "busybox",
        "tftp",
        "-g",
        "-r",
        "undionly.kpxe",
        "-l",
        "/dev/null",
        "10.77.9.1",
    ]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
}

#[test]
fn one_capability_fewer_is_refused_by_name() {
    if !common::require_root() || !common::require_programs(&["setpriv"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let lab = lab(dir.path());
    let ns = NetNs::with_bridge("pxtunit2", "10.77.9.1/24");
    // Server mode needs the raw socket for its router advertisements (proxy mode needs
    // it for port 67 beside the LAN's server), and port 67 itself needs the bind.
    for (keep, why, names) in [
        ("CAP_NET_BIND_SERVICE", "without CAP_NET_RAW", "IPv6 RA"),
        ("CAP_NET_RAW", "without CAP_NET_BIND_SERVICE", "DHCP"),
    ] {
        let mut argv = as_service(&[keep.to_string()]);
        argv.push(common::pxelab_bin().to_str().unwrap().to_string());
        argv.extend(["-c", lab.to_str().unwrap(), "up", "--no-tui"].map(String::from));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = ns.command(&["timeout", "30"]).args(&argv).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{why}: up started anyway: {err}");
        assert!(
            err.contains(names)
                && (err.contains("Operation not permitted") || err.contains("Permission denied")),
            "{why}: up does not say that {names} cannot start: {err}"
        );
    }
}
