//! Server-mode leases that no crash and no stranger can take away (issue 13):
//! - ACKs then `kill -9` at once: after a restart another client does not get those
//!   addresses (each lease was on disk before its ACK went out);
//! - a DECLINE for a client's address sent from another MAC changes nothing: the real
//!   client keeps renewing its lease;
//! - a lease file that cannot be written holds the ACK back and says so
//!   (`lease-write-failed`), loopback, no root.

mod common;
mod dhcp_support;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ChildGuard, NetNs};
use dhcp_support::{free_tcp_port, free_udp_port, raw_request, write_lab, Pxelab};

fn lab_yaml() -> String {
    "name: durable\ninterface: br0\nserver_address: 10.77.131.1\n\
     dhcp:\n  mode: server\n  subnet: 10.77.131.0/24\n  range: [10.77.131.100, 10.77.131.199]\n  \
     lease_time: 1h\n\
     tftp: {enabled: false}\nhttp: {port: 8080, admin_port: 7480}\n\
     k3s: {server_url: \"https://10.77.131.1:6443\"}\nssh: {watch: false}\n\
     boot: {kernel: vmlinuz, initrds: [initrd]}\n"
        .to_string()
}

/// udhcpc on `eth0` of `ns`: with `-q` it exits once bound, else it stays in the
/// foreground and renews on SIGUSR1. Its script records the last bound/renew address.
fn udhcpc(
    ns: &NetNs,
    dir: &std::path::Path,
    tag: &str,
    extra: &[&str],
) -> (ChildGuard, std::path::PathBuf) {
    let script = dir.join(format!("{tag}.sh"));
    let out = dir.join(format!("{tag}.ip"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in bound|renew) ip addr replace \"$ip/24\" dev \"$interface\"; \
             echo \"$1 $ip\" >> {} ;; esac\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let sp = script.to_str().unwrap().to_string();
    let mut argv = vec![
        "busybox", "udhcpc", "-i", "eth0", "-f", "-t", "10", "-T", "1", "-s", &sp,
    ];
    argv.extend_from_slice(extra);
    let child = ns
        .command(&argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (ChildGuard(child), out)
}

/// The lines the udhcpc script wrote (`bound 10.77.131.100`, `renew …`).
fn lines(f: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(f)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn bound_ip(f: &std::path::Path) -> String {
    common::wait_for(Duration::from_secs(30), Duration::from_millis(20), || {
        lines(f)
            .iter()
            .find_map(|l| l.strip_prefix("bound ").map(str::to_string))
    })
    .unwrap_or_else(|| panic!("udhcpc never bound ({})", f.display()))
}

#[test]
fn acked_leases_survive_kill_9_right_after_the_acks() {
    if !common::require_root() || !common::require_program("busybox") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = NetNs::with_bridge("pxs13d", "10.77.131.1/24");
    let lab = write_lab(dir.path(), &lab_yaml());
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp"]);
    let clients: Vec<NetNs> = (1..=3)
        .map(|i| {
            let c = ns.add_veth_host(&format!("a{i}"));
            c.exec_ok(&[
                "ip",
                "link",
                "set",
                "eth0",
                "address",
                &format!("52:54:00:13:00:0{i}"),
            ]);
            c
        })
        .collect();
    // Three clients at once; `-q`: each exits as soon as it is bound.
    let runs: Vec<(ChildGuard, std::path::PathBuf)> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| udhcpc(c, dir.path(), &format!("a{i}"), &["-q"]))
        .collect();
    let ips: Vec<String> = runs.iter().map(|(_, f)| bound_ip(f)).collect();
    // The third client holds its ACK: pxelab dies now, well within its old 0.5 s flush.
    p.kill9();
    let leases = common::lease_text(&dir.path().join(".pxelab/leases.json"));
    for (i, ip) in ips.iter().enumerate() {
        assert!(
            leases.contains(&format!("52:54:00:13:00:0{}", i + 1)) && leases.contains(ip.as_str()),
            "ACKed lease {ip} not on disk after kill -9: {leases}"
        );
    }
    // Restarted, pxelab gives other machines asking for those very addresses others.
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp"]);
    for (i, ip) in ips.iter().enumerate() {
        let c = ns.add_veth_host(&format!("b{i}"));
        c.exec_ok(&[
            "ip",
            "link",
            "set",
            "eth0",
            "address",
            &format!("52:54:00:13:00:1{i}"),
        ]);
        let (_u, f) = udhcpc(&c, dir.path(), &format!("b{i}"), &["-q", "-r", ip]);
        let got = bound_ip(&f);
        assert!(!ips.contains(&got), "{got} handed out twice after kill -9");
    }
    p.stop();
}

/// A DHCPDECLINE from `mac` for `ip`, to server `sid`.
fn decline(mac: [u8; 6], ip: [u8; 4], sid: [u8; 4]) -> Vec<u8> {
    let mut b = vec![0u8; 236];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&[0x13, 0x13, 0x13, 0x13]);
    b[28..34].copy_from_slice(&mac);
    b.extend_from_slice(&[99, 130, 83, 99]);
    b.extend_from_slice(&[53, 1, 4, 50, 4]);
    b.extend_from_slice(&ip);
    b.extend_from_slice(&[54, 4]);
    b.extend_from_slice(&sid);
    b.push(255);
    b
}

#[test]
fn a_decline_from_another_mac_does_not_take_a_renewing_clients_lease() {
    if !common::require_root() || !common::require_program("busybox") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = NetNs::with_bridge("pxs13e", "10.77.131.1/24");
    let lab = write_lab(dir.path(), &lab_yaml());
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp"]);
    let victim = ns.add_veth_host("v");
    victim.exec_ok(&["ip", "link", "set", "eth0", "address", "52:54:00:13:00:21"]);
    let (u, f) = udhcpc(&victim, dir.path(), "v", &[]);
    let ip = bound_ip(&f);
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    let attacker = ns.add_veth_host("x");
    attacker.exec_ok(&["ip", "addr", "add", "10.77.131.250/24", "dev", "eth0"]);
    let pkt = dir.path().join("decline.bin");
    for round in 0..3 {
        // Spoofed DECLINE of the victim's address, from another MAC, unicast to pxelab.
        std::fs::write(
            &pkt,
            decline(
                [0x52, 0x54, 0, 0x13, 0, 0x66],
                [octets[0], octets[1], octets[2], octets[3]],
                [10, 77, 131, 1],
            ),
        )
        .unwrap();
        attacker.exec_ok(&[
            "bash",
            "-c",
            &format!("cat {} > /dev/udp/10.77.131.1/67", pkt.display()),
        ]);
        p.wait(
            Duration::from_secs(10),
            "the spoofed DECLINE dropped",
            |e| {
                e["event"] == "dhcp-dropped"
                    && e.to_string().contains("52:54:00:13:00:66")
                    && e.to_string().contains("DECLINE")
            },
        );
        // The victim renews and keeps its address.
        let before = lines(&f).len();
        common::sh("kill", &["-USR1", &u.0.id().to_string()]);
        let renewed = common::wait_for(Duration::from_secs(15), Duration::from_millis(50), || {
            lines(&f).get(before).cloned()
        });
        assert_eq!(
            renewed.as_deref(),
            Some(format!("renew {ip}").as_str()),
            "round {round}: the victim lost {ip}"
        );
    }
    assert!(
        p.matching(|e| e["event"] == "dhcp-lease" && e["action"] == "decline")
            .is_empty(),
        "a DECLINE from another MAC was honoured"
    );
    assert!(p
        .matching(|e| e["event"] == "dhcp-reply" && e["msg"] == "nak")
        .is_empty());
    p.stop();
}

#[test]
fn an_unwritable_lease_file_holds_the_ack_back_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let lab = write_lab(
        dir.path(),
        &format!(
            "name: unwritable\nserver_address: 127.0.0.1\n\
             dhcp: {{mode: server, subnet: 127.0.0.0/8, range: [127.1.131.10, 127.1.131.20], \
             port: {port}, pxe_port: {}, leases_file: state/leases.json}}\ntftp: {{enabled: false}}\n\
             http: {{bind: 127.0.0.1, port: {}, admin_port: {}}}\nssh: {{watch: false}}\n\
             boot: {{kernel: vmlinuz, initrds: [initrd]}}\n",
            free_udp_port(),
            free_tcp_port(),
            free_tcp_port()
        ),
    );
    let p = Pxelab::start(Command::new("env"), &lab, &["dhcp"]);
    // The lease folder goes away and a file takes its name: no write can succeed,
    // not even root's.
    std::fs::remove_dir(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state"), b"not a folder").unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mac = [0x52, 0x54, 0, 0x13, 0, 0x31];
    let req = raw_request(
        mac,
        &[(53, &[3]), (50, &[127, 1, 131, 10]), (54, &[127, 0, 0, 1])],
    );
    sock.send_to(&req, ("127.0.0.1", port)).unwrap();
    let ev = p.wait(Duration::from_secs(10), "lease-write-failed", |e| {
        e["event"] == "lease-write-failed"
    });
    assert!(
        ev["path"].as_str().unwrap().ends_with("state/leases.json"),
        "{ev}"
    );
    let mut buf = [0u8; 1500];
    assert!(
        sock.recv_from(&mut buf).is_err(),
        "an ACK went out for a lease that is not on disk"
    );
    assert!(p
        .matching(|e| e["event"] == "dhcp-reply" && e["msg"] == "ack")
        .is_empty());
    // The disk works again: the client's retry gets its ACK.
    std::fs::remove_file(dir.path().join("state")).unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    sock.send_to(&req, ("127.0.0.1", port)).unwrap();
    let (n, _) = sock.recv_from(&mut buf).expect("ACK once the disk works");
    assert!(n >= 240 && buf[0] == 2);
    assert!(common::lease_text(&dir.path().join("state/leases.json")).contains("52:54:00:13:00:31"));
    p.stop();
}
