//! Packet fuzz through the real server: random, truncated, oversized, BOOTREPLY and
//! mangled-option datagrams sent to pxelab's DHCP port (loopback lab, unprivileged port)
//! are each dropped and counted (`dhcp-dropped`), none is answered, nothing panics, and
//! a well-formed PXE DISCOVER afterwards still gets its offer.

mod common;
mod dhcp_support;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use dhcp_support::{free_tcp_port, free_udp_port, raw_request, write_lab, Pxelab};
use rand::{Rng, SeedableRng};

#[test]
fn malformed_packets_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let lab = write_lab(
        dir.path(),
        &format!(
            "name: fuzz\nserver_address: 127.0.0.1\n\
             dhcp: {{mode: proxy, port: {port}, pxe_port: {}}}\ntftp: {{enabled: false}}\n\
             http: {{bind: 127.0.0.1, port: {}, admin_port: {}}}\nssh: {{watch: false}}\n\
             boot: {{kernel: vmlinuz, initrds: [initrd]}}\n",
            free_udp_port(),
            free_tcp_port(),
            free_tcp_port()
        ),
    );
    let p = Pxelab::start(Command::new("env"), &lab, &["dhcp"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", port);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e3779b9);
    let good = raw_request(
        [0x52, 0x54, 0, 9, 9, 9],
        &[(53, &[1]), (60, b"PXEClient:Arch:00000:UNDI:002001")],
    );
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // Truncations of a valid PXE DISCOVER (every length short of header + cookie, and
    // cuts inside the options).
    for n in (0..240).step_by(7).chain([241, 243, good.len() - 3]) {
        cases.push(good[..n].to_vec());
    }
    // Oversized.
    for n in [1501, 2048, 4000] {
        let mut b = good.clone();
        b.resize(n, 0);
        cases.push(b);
    }
    // A BOOTREPLY, bad magic, bad hardware type, no message type, a server message type.
    let mut reply = good.clone();
    reply[0] = 2;
    cases.push(reply);
    let mut magic = good.clone();
    magic[237] ^= 0xff;
    cases.push(magic);
    let mut htype = good.clone();
    htype[1] = 6;
    cases.push(htype);
    cases.push(raw_request([2, 0, 0, 0, 0, 1], &[(60, b"PXEClient")]));
    cases.push(raw_request(
        [2, 0, 0, 0, 0, 1],
        &[(53, &[2]), (60, b"PXEClient")],
    ));
    // Hostile options: wrong lengths, an option 121 with a 33-bit prefix (panics
    // dhcproto 0.15's decoder), option overload pointing at garbage.
    cases.push(raw_request(
        [2, 0, 0, 0, 0, 2],
        &[(53, &[1, 1]), (60, b"PXEClient")],
    ));
    cases.push(raw_request(
        [2, 0, 0, 0, 0, 2],
        &[(53, &[1]), (60, b"PXEClient"), (93, &[0])],
    ));
    cases.push(raw_request(
        [2, 0, 0, 0, 0, 2],
        &[(53, &[1]), (121, &[33, 10, 0, 0, 0, 1, 2, 3, 4])],
    ));
    let mut overload = raw_request([2, 0, 0, 0, 0, 2], &[(53, &[1]), (52, &[3])]);
    overload[108..236].fill(0x42);
    cases.push(overload);
    // Random bytes, and random bytes behind a valid header and cookie.
    for _ in 0..150 {
        let n = rng.random_range(0..1600);
        cases.push((0..n).map(|_| rng.random()).collect());
    }
    for _ in 0..150 {
        let mut b = good[..240].to_vec();
        b[0] = 1;
        let n = rng.random_range(1..600);
        b.extend((0..n).map(|_| rng.random::<u8>()));
        cases.push(b);
    }
    // Random garbage could by chance decode as a PXE DISCOVER only with the right
    // header, cookie and options: count those that our own decoder-equivalent check
    // would accept, so the expectation is exact.
    let plausible = |b: &[u8]| {
        b.len() >= 240
            && b.len() <= 1500
            && b[0] == 1
            && b[1] == 1
            && b[2] == 6
            && b[236..240] == [99, 130, 83, 99]
    };
    let maybe_ok = cases.iter().filter(|b| plausible(b)).count();
    // Every datagram is either dropped (most) or, for a random tail that happens to be
    // well formed but is not a PXE client, dropped as not-PXE: all counted, none answered.
    // Sent in batches, each counted before the next, so a descheduled server cannot
    // overflow its socket buffer (the kernel would drop them uncounted).
    // At most one `dhcp-dropped` event a second, each counting the drops since the last.
    let dropped = || -> usize {
        p.matching(|e| e["event"] == "dhcp-dropped")
            .iter()
            .map(|e| e["count"].as_u64().unwrap_or(1) as usize)
            .sum()
    };
    let mut sent = 0;
    for batch in cases.chunks(60) {
        for c in batch {
            sock.send_to(c, to).unwrap();
        }
        sent += batch.len();
        common::wait_for(Duration::from_secs(20), Duration::from_millis(20), || {
            (dropped() >= sent).then_some(())
        })
        .unwrap_or_else(|| {
            p.fail(&format!(
                "{sent} dhcp-dropped events ({maybe_ok} plausible among {})",
                cases.len()
            ))
        });
    }
    assert!(
        p.matching(|e| e["event"] == "dhcp-reply").is_empty(),
        "a malformed packet was answered"
    );
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(sock.recv_from(&mut buf).is_err(), "got a reply to garbage");

    // Still alive and answering.
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    sock.send_to(&good, to).unwrap();
    let (len, _) = sock.recv_from(&mut buf).expect("no offer after the fuzz");
    assert!(len >= 240 && buf[0] == 2, "not a BOOTREPLY");
    p.wait(Duration::from_secs(15), "offer after fuzz", |e| {
        e["event"] == "dhcp-reply" && e["msg"] == "offer"
    });
    p.stop();
}
