//! user-data (the node's secrets) goes only to an address the node really holds, with
//! a real node, a routed attacker and an on-link impostor (root: network namespaces
//! the test makes and removes; curl as every client):
//!
//! ```text
//!  pxh13u-n (node, victim's MAC) 10.79.13.50 ─┐
//!  pxh13u-o (other MAC)          10.79.13.60 ─┼─ br0 10.79.13.1 (pxh13u: pxelab)
//!  pxh13u-r (router) eth0        10.79.13.2 ──┘
//!           eth1 10.79.14.1 ─── pxh13u-a (attacker) 10.79.14.50, routed
//! ```
//!
//! The attacker fetches the victim's boot script first (anyone may) and then its
//! user-data: it has no neighbour entry on pxelab's side (its packets come through
//! the router), so it gets 403 and a `refused` event. The real node, on-link with its
//! own MAC, gets its user-data before and after the attacker's tries; a host on the
//! segment with another MAC gets 403.

mod common;
mod dhcp_support;

use std::time::Duration;

use common::NetNs;
use dhcp_support::{write_lab, Pxelab};

const VICTIM: &str = "52:54:00:79:13:01";
const SERVER: &str = "10.79.13.1";
const NODE_IP: &str = "10.79.13.50";
const OTHER_IP: &str = "10.79.13.60";
const ATTACKER_IP: &str = "10.79.14.50";

fn topology() -> (NetNs, NetNs, NetNs, NetNs, NetNs) {
    let srv = NetNs::with_bridge("pxh13u", &format!("{SERVER}/24"));
    srv.exec_ok(&["ip", "route", "add", "10.79.14.0/24", "via", "10.79.13.2"]);
    let node = srv.add_veth_host("n");
    node.exec_ok(&["ip", "link", "set", "eth0", "down"]);
    node.exec_ok(&["ip", "link", "set", "eth0", "address", VICTIM]);
    node.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    node.exec_ok(&["ip", "addr", "add", &format!("{NODE_IP}/24"), "dev", "eth0"]);
    let other = srv.add_veth_host("o");
    other.exec_ok(&[
        "ip",
        "addr",
        "add",
        &format!("{OTHER_IP}/24"),
        "dev",
        "eth0",
    ]);
    let router = srv.add_veth_host("r");
    router.exec_ok(&["ip", "addr", "add", "10.79.13.2/24", "dev", "eth0"]);
    router.exec_ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let attacker = NetNs::new("pxh13u-a");
    router.exec_ok(&[
        "ip",
        "link",
        "add",
        "eth1",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &attacker.name,
    ]);
    router.exec_ok(&["ip", "addr", "add", "10.79.14.1/24", "dev", "eth1"]);
    router.exec_ok(&["ip", "link", "set", "eth1", "up"]);
    attacker.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    attacker.exec_ok(&[
        "ip",
        "addr",
        "add",
        &format!("{ATTACKER_IP}/24"),
        "dev",
        "eth0",
    ]);
    attacker.exec_ok(&["ip", "route", "add", "default", "via", "10.79.14.1"]);
    (srv, node, other, router, attacker)
}

/// `curl` from `ns`: status and body.
fn get(ns: &NetNs, path: &str) -> (u16, String) {
    let out = ns.exec(&[
        "curl",
        "-s",
        "--max-time",
        "15",
        "-w",
        "\n%{http_code}",
        &format!("http://{SERVER}:8080{path}"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn a_routed_host_never_gets_another_nodes_user_data() {
    if !common::require_root() || !common::require_program("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (srv, node, other, _router, attacker) = topology();
    let lab = write_lab(
        dir.path(),
        &format!(
            "name: ud-test\nserver_address: {SERVER}\ndhcp: {{mode: off}}\n\
             tftp: {{enabled: false}}\nhttp: {{port: 8080, admin_port: 7480}}\n\
             ssh: {{watch: false}}\nboot: {{kernel: vmlinuz, initrds: [initrd]}}\n\
             nodes:\n  - mac: '{VICTIM}'\n    hostname: victim\n    role: k3s-server\n"
        ),
    );
    let p = Pxelab::start(srv.command(&[]), &lab, &["http"]);
    let script = format!("/boot.ipxe?mac={VICTIM}");
    let user_data = format!("/nocloud/{VICTIM}/user-data");
    let refused_to = |ip: &str| {
        let ip = ip.to_string();
        move |e: &serde_json::Value| {
            e["event"] == "refused"
                && e["source"] == "http"
                && e["client"] == ip.as_str()
                && e["what"]
                    .as_str()
                    .is_some_and(|w| w.ends_with("/user-data"))
        }
    };

    // The routed attacker asks first: the script is anyone's, the user-data is not.
    assert_eq!(get(&attacker, &script).0, 200);
    // It really is routed: pxelab's side has no neighbour entry for it.
    let neigh = srv.exec(&["ip", "neigh", "show", ATTACKER_IP]);
    assert!(neigh.stdout.is_empty(), "{neigh:?}");
    let (status, body) = get(&attacker, &user_data);
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("cloud-config"), "secrets in a refusal");
    p.wait(
        Duration::from_secs(10),
        "refusal of the attacker",
        refused_to(ATTACKER_IP),
    );

    // The real node boots: on-link, its own MAC. It gets its user-data.
    assert_eq!(get(&node, &script).0, 200);
    let (status, body) = get(&node, &user_data);
    assert_eq!(status, 200, "the real node was refused: {body}");
    assert!(body.starts_with("#cloud-config"), "{body}");

    // The attacker tries again after the node: the script fetch moves nothing.
    assert_eq!(get(&attacker, &script).0, 200);
    assert_eq!(get(&attacker, &user_data).0, 403);
    assert_eq!(get(&node, &user_data).0, 200, "the node lost its user-data");

    // A host on the segment with another MAC: the ARP table says no.
    assert_eq!(get(&other, &script).0, 200);
    assert_eq!(get(&other, &user_data).0, 403);
    p.wait(
        Duration::from_secs(10),
        "refusal of the on-link impostor",
        refused_to(OTHER_IP),
    );
    // No event or log line carries a secret.
    let all = p.events().iter().map(|e| e.to_string()).collect::<String>();
    assert!(!all.contains("PRIVATE KEY"), "a secret in the events");
    p.stop();
}
