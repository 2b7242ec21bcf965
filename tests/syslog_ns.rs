//! The syslog receiver in a namespace of its own: `pxelab up` listens on the lab side
//! (10.79.5.1:514 on a bridge), a second namespace on a veth sends RFC 3164 lines over
//! UDP as busybox `syslogd -R` does (util-linux `logger --rfc3164 -d`: a syslogd would
//! take the host's /dev/log, which a network namespace shares), and the lines arrive as
//! `log-line` events with file `syslog` on the node whose `ip:` is the sender's. A
//! sender no node has is counted, not attributed. Nothing leaves the namespaces.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ChildGuard, NetNs};

const NODE_MAC: &str = "52:54:00:5a:10:01";

fn lab_text() -> String {
    format!(
        "name: sloglab\nserver_address: 10.79.5.1\ndhcp:\n  mode: off\ntftp:\n  enabled: false\nhttp:\n  bind: 10.79.5.1\n  port: 8080\n  admin_port: 7480\nboot:\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  cmdline: \"console=ttyS0 ip=dhcp\"\nssh:\n  watch: false\nsyslog:\n  enabled: true\n  port: 514\nnodes:\n  - mac: {NODE_MAC}\n    hostname: sl-node\n    role: k3s-server\n    ip: 10.79.5.11\n"
    )
}

#[test]
fn syslog_lines_join_the_node_that_sent_them() {
    if !common::require_root() || !common::require_programs(&["ip", "logger", "curl"]) {
        return;
    }
    let ns = NetNs::with_bridge("pxslsrv", "10.79.5.1/24");
    let node = ns.add_veth_host("n1");
    node.exec_ok(&["ip", "addr", "add", "10.79.5.11/24", "dev", "eth0"]);
    let stranger = ns.add_veth_host("n2");
    stranger.exec_ok(&["ip", "addr", "add", "10.79.5.99/24", "dev", "eth0"]);

    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.yaml");
    std::fs::write(&lab, lab_text()).unwrap();
    let bin = common::pxelab_bin();
    let (bin_s, lab_s) = (bin.to_string_lossy(), lab.to_string_lossy());
    let mut child = ns.command(&[&bin_s, "--config", &lab_s, "up", "--no-tui", "--json"]);
    child
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = ChildGuard(child.spawn().expect("start pxelab"));
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let out = child.0.stdout.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    let seen = |what: &str, secs: u64| {
        common::wait_for(
            Duration::from_secs(secs),
            Duration::from_millis(100),
            || {
                lines
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|l| l.contains(what))
                    .cloned()
            },
        )
    };
    let up = seen("514", 20)
        .unwrap_or_else(|| panic!("no syslog receiver: {:?}", lines.lock().unwrap()));
    assert!(
        up.contains("server-up") && up.contains("10.79.5.1:514"),
        "{up}"
    );

    let send = |from: &NetNs, msg: &str| {
        from.exec_ok(&[
            "logger",
            "--rfc3164",
            "-d",
            "-n",
            "10.79.5.1",
            "-P",
            "514",
            "-t",
            "k3s",
            msg,
        ]);
    };
    // Log lines stay out of the headless stream: read the node's record from the admin
    // API (inside the namespace) instead.
    let record = || {
        // The admin API wants the token this instance wrote into .pxelab/.
        let token =
            std::fs::read_to_string(dir.path().join(".pxelab/admin-token")).unwrap_or_default();
        let auth = format!("Authorization: Bearer {}", token.trim());
        let o = ns.exec(&[
            "curl",
            "-sf",
            "--max-time",
            "3",
            "-H",
            &auth,
            "http://127.0.0.1:7480/api/nodes/sl-node",
        ]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // Bounded: a few tries, in case the first datagram races the bind.
    let got = (0..5).find_map(|i| {
        send(&node, &format!("hello from the node {i}"));
        common::wait_for(Duration::from_secs(2), Duration::from_millis(200), || {
            Some(record()).filter(|r| r.contains("hello from the node"))
        })
    });
    let got = got.unwrap_or_else(|| panic!("the node's line never came: {}", record()));
    assert!(
        got.contains("syslog: ") && got.contains("k3s: hello from the node"),
        "{got}"
    );

    // A sender no node has: counted, never put in a node's log.
    send(&stranger, "who am I");
    std::thread::sleep(Duration::from_millis(500));
    send(&node, "after the stranger");
    let got = common::wait_for(Duration::from_secs(5), Duration::from_millis(200), || {
        Some(record()).filter(|r| r.contains("after the stranger"))
    })
    .expect("the node's second line");
    assert!(!got.contains("who am I"), "{got}");
}
