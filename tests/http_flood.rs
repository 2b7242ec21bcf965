//! One host must not stop the boot server for the others (loopback, no root:
//! 127.0.0.2 and 127.0.0.3 are different client addresses). The slow clients are raw
//! sockets (no real client trickles a header on purpose); the normal client is curl.
//!
//! - 1,100 connections from 127.0.0.2, each sending a header line every 2 s: the
//!   address gets its 32, the rest are closed at once, and curl from 127.0.0.3
//!   fetches a script and a kernel in its usual time; the 32 are closed by the header
//!   deadline (10 s) however steadily they trickle; the cut-offs are a handful of
//!   `refused` events, not a thousand.
//! - A download the client stops reading is cut within the rate window (10 s).

mod common;
mod http_lab;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use http_lab::{curl, next_event, Server, TempLab, NODE1};

use pxelab::engine::EventKind;

/// The soft limit on open files (the flood needs ~1,200).
fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A TCP connection to `port` on 127.0.0.1 from `from`.
fn connect_from(from: [u8; 4], port: u16, rcvbuf: Option<usize>) -> Option<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    if let Some(n) = rcvbuf {
        s.set_recv_buffer_size(n).ok()?;
    }
    s.bind(&SocketAddr::from((Ipv4Addr::from(from), 0)).into())
        .ok()?;
    s.connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)).into(),
        Duration::from_secs(2),
    )
    .ok()?;
    Some(s.into())
}

/// Whether the server has closed (or answered and closed) this connection.
fn closed(s: &mut TcpStream) -> bool {
    let _ = s.set_nonblocking(true);
    let mut b = [0u8; 512];
    !matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// curl from `from`: status and how long it took.
fn curl_from(from: &str, url: &str) -> (u16, Duration) {
    let t = Instant::now();
    let g = curl(url, &["--interface", from]);
    (g.status, t.elapsed())
}

#[test]
fn a_thousand_slow_connections_from_one_host_stop_no_one_else() {
    if !common::require_program("curl")
        || !common::require(open_files_limit() >= 4096, "ulimit -n of 4096 or more")
    {
        return;
    }
    let mut s = Server::start(TempLab::new(), false);
    let port = s.lab.port;
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..1100)
        .filter_map(|_| connect_from([127, 0, 0, 2], port, None))
        .collect();
    for c in &mut slow {
        let _ = c.write_all(b"GET /boot.ipxe?mac=52:54:00:00:00:01 HTTP/1.1\r\n");
    }
    assert!(slow.len() > 1000, "only {} connections opened", slow.len());

    // Another host is served as usual: its script and its kernel.
    let base = s.lab.base();
    let (st, took) = curl_from("127.0.0.3", &format!("{base}/boot.ipxe?mac={NODE1}"));
    assert_eq!(st, 200);
    assert!(took < Duration::from_secs(2), "script after {took:?}");
    let (st, took) = curl_from("127.0.0.3", &format!("{base}/assets/vmlinuz-lts"));
    assert_eq!(st, 200);
    assert!(took < Duration::from_secs(3), "kernel after {took:?}");

    // The flooding host's connections beyond its share are closed at once; its 32 are
    // closed by the header deadline, however steadily they trickle (bounded: 8 rounds).
    let mut open_after_3s = None;
    for round in 0..8 {
        std::thread::sleep(Duration::from_secs(2));
        slow.retain_mut(|c| {
            let _ = c.set_nonblocking(false);
            c.write_all(format!("X-Slow-{round}: 1\r\n").as_bytes())
                .is_ok()
                && !closed(c)
        });
        if open_after_3s.is_none() && started.elapsed() >= Duration::from_secs(3) {
            open_after_3s = Some(slow.len());
        }
        if slow.is_empty() {
            break;
        }
    }
    let open_after_3s = open_after_3s.unwrap_or(0);
    assert!(
        (1..=32).contains(&open_after_3s),
        "{open_after_3s} connections of one host open after 3 s"
    );
    assert!(
        slow.is_empty(),
        "{} slow-header connections still open after {:?}",
        slow.len(),
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(16));

    // Every cut was counted; the events say so a few times, not a thousand.
    let mut cuts = Vec::new();
    loop {
        match s.rx.try_recv() {
            Ok(ev) => {
                if let EventKind::Refused { what, client, .. } = &ev.kind {
                    if what == "connection" {
                        assert_eq!(client, "127.0.0.2");
                        cuts.push(ev.kind.describe());
                    }
                }
            }
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => continue,
            Err(_) => break,
        }
    }
    let text = cuts.join("\n");
    assert!((1..=3).contains(&cuts.len()), "{text}");
    assert!(text.contains("more than 32 connections"), "{text}");
    let refused = s
        .engine
        .counters()
        .http_refused
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(refused >= 1000, "{refused} cuts counted");
}

#[test]
fn a_stalled_download_is_cut_within_the_rate_window() {
    let mut s = Server::start(TempLab::new(), false);
    // A 16 MiB modloop, asked for and then never read (a tiny receive buffer).
    let mut c = connect_from([127, 0, 0, 3], s.lab.port, Some(4096)).expect("connect");
    c.write_all(b"GET /assets/modloop-lts HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let t = Instant::now();
    let ev = next_event(&mut s.rx, |k| {
        matches!(k, EventKind::HttpFetch { status: 499, .. })
    });
    let ev = ev.or_else(|| {
        next_event(&mut s.rx, |k| {
            matches!(k, EventKind::HttpFetch { status: 499, .. })
        })
    });
    let took = t.elapsed();
    let ev = ev.expect("the stalled download was not cut within 20 s");
    assert!(took < Duration::from_secs(16), "cut after {took:?}");
    let EventKind::HttpFetch { bytes, path, .. } = &ev.kind else {
        unreachable!()
    };
    assert_eq!(path, "/assets/modloop-lts");
    assert!(*bytes < 16 << 20, "{bytes}");
    // The connection is closed: reading drains what was buffered, then ends.
    let (ended, total) = common::drains_to_close(&mut c);
    assert!(ended, "connection still open after {total} bytes");
}
