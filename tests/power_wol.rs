//! Wake-on-LAN from the real binary, captured on the wire inside network namespaces the
//! test creates (nothing is broadcast on this machine's own network): `pxelab power on`
//! sends 6 × 0xFF then the MAC 16 times, from the lab interface, to the broadcast
//! address of its subnet, port 9. A second node, then `all` (k3s server first); and
//! `off` with the `wol` driver says that it goes over SSH and why it cannot. And
//! `wake_on_start: true`: `pxelab up` wakes the lab itself once its servers listen.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::{ChildGuard, NetNs};

/// Receives `count` datagrams on UDP port 9 (SO_BROADCAST, IP_PKTINFO for the address
/// they were sent to) within `secs` seconds each; prints `ready`, then per datagram
/// `HEX DESTINATION SOURCE`.
const RECEIVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.IPPROTO_IP, 8, 1)  # IP_PKTINFO
s.bind(("0.0.0.0", 9))
s.settimeout(float(sys.argv[2]))
print("ready", flush=True)
for _ in range(int(sys.argv[1])):
    try:
        data, anc, flags, src = s.recvmsg(2048, 256)
    except socket.timeout:
        print("timeout", flush=True)
        break
    dst = "?"
    for level, kind, d in anc:
        if level == socket.IPPROTO_IP and kind == 8:
            dst = socket.inet_ntoa(d[8:12])
    print(data.hex(), dst, src[0], flush=True)
"#;

const SERVER_MAC: &str = "52:54:00:77:00:01";
const AGENT_MAC: &str = "52:54:00:77:00:02";

fn magic(mac: &str) -> String {
    let m = mac.replace(':', "");
    "ff".repeat(6) + &m.repeat(16)
}

/// The receiver's lines, read on a thread so every wait is bounded.
fn receiver(peer: &NetNs, count: usize) -> (ChildGuard, mpsc::Receiver<String>) {
    let mut child = peer
        .command(&["python3", "-c", RECEIVER, &count.to_string(), "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver did not start");
    assert_eq!(first, "ready");
    (ChildGuard(child), rx)
}

/// lab.yaml for the namespace lab: the agent listed before the server.
fn lab_yaml(extra: &str) -> String {
    format!(
        "name: woltest\ninterface: br0\nserver_address: 10.77.9.1\ndhcp: {{mode: off}}\n\
         tftp: {{enabled: false}}\nhttp: {{bind: 10.77.9.1, port: 18080, admin_port: 17480}}\n\
         ssh: {{watch: false}}\nboot: {{kernel: vmlinuz-lts}}\n{extra}\
         nodes:\n  - {{mac: {AGENT_MAC}, hostname: agent-1, role: k3s-agent}}\n  \
         - {{mac: {SERVER_MAC}, hostname: server-0, role: k3s-server, power: wol}}\n"
    )
}

fn pxelab(ns: &NetNs, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let cfg = dir.join("lab.yaml");
    let bin = common::pxelab_bin();
    let mut argv = vec![bin.to_str().unwrap(), "-c", cfg.to_str().unwrap()];
    argv.extend_from_slice(args);
    ns.command(&argv)
        .env("PXELAB_CONFIG", &cfg)
        .output()
        .expect("pxelab")
}

#[test]
fn power_on_sends_the_magic_packet_to_the_subnet_broadcast_on_the_lab_interface() {
    if !common::require_root() || !common::require_programs(&["ip", "python3"]) {
        return;
    }
    let lab_ns = NetNs::with_bridge("pxwol", "10.77.9.1/24");
    let peer = lab_ns.add_veth_host("p");
    peer.exec_ok(&["ip", "addr", "add", "10.77.9.2/24", "dev", "eth0"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lab.yaml"), lab_yaml("")).unwrap();

    let (_rx_guard, rx) = receiver(&peer, 1);
    let out = pxelab(&lab_ns, dir.path(), &["power", "on", "agent-1"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let errs = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{said}{errs}");
    assert!(
        said.contains(
            "agent-1: power on: magic packet for 52:54:00:77:00:02 sent to 10.77.9.255:9 on br0"
        ),
        "{said}"
    );
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no datagram");
    let f: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(f.len(), 3, "{got}");
    assert_eq!(f[0], magic(AGENT_MAC), "payload");
    assert_eq!(f[0].len(), 102 * 2);
    assert_eq!(
        f[1], "10.77.9.255",
        "destination: the subnet's broadcast address"
    );
    assert_eq!(f[2], "10.77.9.1", "source: the lab interface");

    // `all`: the k3s server first, then the agents.
    let (_rx_guard, rx) = receiver(&peer, 2);
    let out = pxelab(&lab_ns, dir.path(), &["power", "on", "all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("first datagram");
    let second = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("second datagram");
    assert!(first.starts_with(&magic(SERVER_MAC)), "{first}");
    assert!(second.starts_with(&magic(AGENT_MAC)), "{second}");

    // `wol` powers off over SSH; a node never seen and with no fixed ip cannot be reached.
    let out = pxelab(&lab_ns, dir.path(), &["power", "off", "agent-1"]);
    assert_eq!(out.status.code(), Some(1));
    let errs = String::from_utf8_lossy(&out.stderr);
    assert!(
        errs.contains("agent-1: over SSH") && errs.contains("no address known"),
        "{errs}"
    );
}

#[test]
fn up_with_wake_on_start_wakes_the_lab_server_first() {
    if !common::require_root() || !common::require_programs(&["ip", "python3"]) {
        return;
    }
    let lab_ns = NetNs::with_bridge("pxwake", "10.77.9.1/24");
    let peer = lab_ns.add_veth_host("p");
    peer.exec_ok(&["ip", "addr", "add", "10.77.9.2/24", "dev", "eth0"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lab.yaml");
    std::fs::write(&cfg, lab_yaml("wake_on_start: true\n")).unwrap();
    let (_rx_guard, rx) = receiver(&peer, 2);
    let bin = common::pxelab_bin();
    let mut up = lab_ns
        .command(&[
            bin.to_str().unwrap(),
            "-c",
            cfg.to_str().unwrap(),
            "up",
            "--no-tui",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("pxelab up");
    let out = up.stdout.take().unwrap();
    let _up = ChildGuard(up);
    let (tx, events) = mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no magic packet from up");
    let second = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("one magic packet only");
    assert!(first.starts_with(&magic(SERVER_MAC)), "{first}");
    assert!(first.ends_with("10.77.9.255 10.77.9.1"), "{first}");
    assert!(second.starts_with(&magic(AGENT_MAC)), "{second}");
    // Each wake is a `power` event of the running instance, server first.
    let mut woken = Vec::new();
    while woken.len() < 2 {
        let e = events
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("power events seen: {woken:?}"));
        if e["event"] == "power" {
            assert_eq!(
                (
                    e["action"].as_str(),
                    e["driver"].as_str(),
                    e["ok"].as_bool()
                ),
                (Some("on"), Some("wol"), Some(true)),
                "{e}"
            );
            woken.push(e["hostname"].as_str().unwrap_or("").to_string());
        }
    }
    assert_eq!(woken, ["server-0", "agent-1"]);
}
