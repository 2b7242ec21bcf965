//! Silent TFTP clients (an RRQ, then never an ACK) must not stop real ones, on loopback
//! (no root: 127.0.0.0/8 source addresses are distinct clients). The silent clients
//! are raw sockets (no real client goes silent on purpose); the real one is tftp-hpa.
//!
//! - 256 silent RRQs from one address: it gets its share (8), the rest is refused
//!   with a handful of events, and tftp-hpa from another address is served at once.
//! - 256 silent RRQs from 32 addresses (8 each) fill the server: tftp-hpa's request
//!   waits while the silent transfers are given up, and is served within seconds.

mod common;
mod dhcp_support;

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use dhcp_support::{free_tcp_port, free_udp_port, write_lab, Pxelab};

const FILE: &str = "undionly.kpxe";

/// An RRQ for FILE with no options from a fresh socket on `ip`, which stays silent.
fn silent_rrq(ip: [u8; 4], port: u16) -> UdpSocket {
    let s = UdpSocket::bind((std::net::Ipv4Addr::from(ip), 0)).unwrap();
    let mut rrq = vec![0u8, 1];
    rrq.extend_from_slice(FILE.as_bytes());
    rrq.extend_from_slice(b"\0octet\0");
    s.send_to(&rrq, ("127.0.0.1", port)).unwrap();
    s
}

/// tftp-hpa fetches FILE from 127.0.0.1; returns how long it took.
fn real_fetch(dir: &std::path::Path, port: u16, want: &[u8]) -> Duration {
    let out = dir.join("got.kpxe");
    let _ = std::fs::remove_file(&out);
    let t = Instant::now();
    let o = Command::new("timeout")
        .args(["30", "tftp", "-m", "binary", "127.0.0.1", &port.to_string()])
        .args(["-c", "get", FILE])
        .arg(&out)
        .output()
        .unwrap();
    let took = t.elapsed();
    let got = std::fs::read(&out).unwrap_or_default();
    assert!(
        got == want,
        "tftp-hpa was not served ({} of {} bytes after {took:?}): {}{}",
        got.len(),
        want.len(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    took
}

#[test]
fn silent_clients_do_not_stop_a_real_one() {
    if !common::require_program("tftp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    let want: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("root").join(FILE), &want).unwrap();
    let port = free_udp_port();
    let lab = write_lab(
        dir.path(),
        &format!(
            "name: flood\nserver_address: 127.0.0.1\ndhcp: {{mode: off}}\n\
             tftp: {{root: root, port: {port}}}\n\
             http: {{bind: 127.0.0.1, port: {}, admin_port: {}}}\n\
             ssh: {{watch: false}}\nboot: {{kernel: vmlinuz, initrds: [initrd]}}\n",
            free_tcp_port(),
            free_tcp_port()
        ),
    );
    let p = Pxelab::start(Command::new("env"), &lab, &["tftp"]);

    // One host, 256 silent requests.
    let mut silent: Vec<UdpSocket> = (0..256).map(|_| silent_rrq([127, 0, 0, 2], port)).collect();
    p.wait(Duration::from_secs(10), "the per-client refusal", |e| {
        e["event"] == "tftp-end"
            && e["outcome"] == "refused"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("too many transfers"))
    });
    let took = real_fetch(dir.path(), port, &want);
    assert!(took < Duration::from_secs(3), "served after {took:?}");
    let from_flooder = p
        .matching(|e| {
            e["event"] == "tftp-end"
                && e["outcome"] == "refused"
                && e["client"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("127.0.0.2:"))
        })
        .len();
    assert!(
        (1..=2).contains(&from_flooder),
        "{from_flooder} refusal events for one flooding host"
    );

    // 32 hosts, 8 silent requests each: every slot is taken.
    for h in 1..=32u8 {
        for _ in 0..8 {
            silent.push(silent_rrq([127, 0, 1, h], port));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let took = real_fetch(dir.path(), port, &want);
    assert!(
        took < Duration::from_secs(6),
        "served after {took:?} on a full server"
    );
    p.wait(Duration::from_secs(10), "a silent transfer given up", |e| {
        e["event"] == "tftp-end"
            && e["outcome"] == "timeout"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("server is full"))
    });
    drop(silent);
    p.stop();
}
