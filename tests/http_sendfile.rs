//! The boot server's sendfile path (src/http/front), driven by the real `curl`: a plain
//! `GET /assets/NAME` is sent by sendfile, byte for byte, with hyper's headers and
//! events; keep-alive carries on into hyper's path on the same connection (also
//! pipelined); Range, HEAD and refusals stay hyper's; the per-address limit and the
//! stalled-client cut still hold. Which path answered is read from the engine's
//! `http_sendfile` counter, so each test fails if the wrong path answered.

mod common;
mod http_lab;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http_lab::{curl, next_event, Server, TempLab, NODE1, SECRET};
use pxelab::engine::{Event, EventKind, FetchKind};
use sha2::{Digest, Sha256};

fn server() -> Option<Server> {
    if !common::require_program("curl") {
        return None;
    }
    Some(Server::start(TempLab::new(), false))
}

fn sent_by_sendfile(s: &Server) -> u64 {
    s.engine.counters().http_sendfile.load(Ordering::Relaxed)
}

fn sha(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// The events of one asset GET: `http-start` (big files) and `http-fetch`, with the
/// elapsed milliseconds zeroed (the one field that may differ between two fetches).
fn asset_events(s: &mut Server, big: bool) -> Vec<Event> {
    let mut out = Vec::new();
    if big {
        let ev = next_event(&mut s.rx, |k| matches!(k, EventKind::HttpStart { .. }));
        out.push(ev.expect("http-start"));
    }
    let mut ev = s.outcome();
    if let EventKind::HttpFetch { ms, .. } = &mut ev.kind {
        *ms = 0;
    }
    out.push(ev);
    out
}

/// What two events say, without their sequence numbers and times.
fn said(evs: &[Event]) -> Vec<String> {
    evs.iter()
        .map(|e| format!("{:?} {:?}", e.mac, e.kind))
        .collect()
}

#[test]
fn a_plain_get_is_sent_by_sendfile_byte_for_byte_with_hyper_s_headers() {
    let Some(mut s) = server() else { return };
    for (name, what) in [
        ("modloop-lts", FetchKind::Modloop),
        ("vmlinuz-lts", FetchKind::Kernel),
        ("node.apkovl.tar.gz", FetchKind::Asset),
    ] {
        let before = sent_by_sendfile(&s);
        let file = s.lab.asset(name);
        let url = format!("{}/assets/{name}?mac={NODE1}", s.lab.base());
        let g = curl(&url, &[]);
        assert_eq!(g.status, 200, "{name}");
        assert_eq!(
            sha(&g.body),
            sha(&file),
            "{name}: body differs from the file"
        );
        assert_eq!(
            sent_by_sendfile(&s),
            before + 1,
            "{name}: not sent by sendfile"
        );
        let evs = asset_events(&mut s, file.len() >= 1 << 20);
        let last = evs.last().unwrap();
        assert_eq!(last.mac, Some(NODE1.parse().unwrap()));
        match &last.kind {
            EventKind::HttpFetch {
                what: w,
                status,
                bytes,
                ..
            } => assert_eq!((*w, *status, *bytes), (what, 200, file.len() as u64)),
            other => panic!("{other:?}"),
        }

        // HEAD is hyper's: the same headers (but the date), no body.
        let h = curl(&url, &["-I"]);
        assert_eq!(h.status, 200);
        for k in [
            "content-type",
            "content-length",
            "accept-ranges",
            "etag",
            "last-modified",
        ] {
            assert!(g.header(k).is_some(), "{name}: no {k}");
            assert_eq!(g.header(k), h.header(k), "{name}: {k}");
        }
        assert!(g.header("date").is_some());
        assert_eq!(sent_by_sendfile(&s), before + 1, "HEAD went by sendfile");
        s.outcome();
    }
    s.no_more_outcomes();
}

#[test]
fn events_of_the_sendfile_path_equal_hyper_s() {
    let Some(mut s) = server() else { return };
    let url = format!("{}/assets/modloop-lts?mac={NODE1}", s.lab.base());
    let before = sent_by_sendfile(&s);
    let fast = curl(&url, &[]);
    assert_eq!(sent_by_sendfile(&s), before + 1);
    let fast_events = asset_events(&mut s, true);
    // `Connection: close` is left to hyper: the same file, whole, the other way.
    let slow = curl(&url, &["-H", "Connection: close"]);
    assert_eq!(sent_by_sendfile(&s), before + 1, "close went by sendfile");
    let hyper_events = asset_events(&mut s, true);
    assert_eq!(sha(&fast.body), sha(&slow.body));
    assert_eq!(said(&fast_events), said(&hyper_events));
    s.no_more_outcomes();
}

/// curl with several URLs on one connection: per URL, its status and whether it
/// opened a new connection.
fn curl_many(urls: &[String], dir: &std::path::Path) -> Vec<(u16, u32)> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20"]);
    for i in 0..urls.len() {
        cmd.arg("-o").arg(dir.join(format!("b{i}")));
    }
    cmd.args(["-w", "%{http_code} %{num_connects}\\n"])
        .args(urls);
    let out = cmd.output().expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

#[test]
fn keep_alive_goes_on_from_sendfile_to_sendfile_to_hyper() {
    let Some(mut s) = server() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = s.lab.base();
    let urls = [
        format!("{base}/assets/vmlinuz-lts"),
        format!("{base}/assets/initramfs-lts"),
        format!("{base}/boot.ipxe?mac={NODE1}"),
        format!("{base}/assets/vmlinuz-lts"),
    ];
    let before = sent_by_sendfile(&s);
    let got = curl_many(&urls, tmp.path());
    // One connection for all four; the first two by sendfile, then hyper keeps it.
    assert_eq!(got, vec![(200, 1), (200, 0), (200, 0), (200, 0)]);
    assert_eq!(sent_by_sendfile(&s), before + 2);
    let read = |i: usize| std::fs::read(tmp.path().join(format!("b{i}"))).unwrap();
    assert_eq!(sha(&read(0)), sha(&s.lab.asset("vmlinuz-lts")));
    assert_eq!(read(1), s.lab.asset("initramfs-lts"));
    assert!(String::from_utf8_lossy(&read(2)).starts_with("#!ipxe"));
    assert_eq!(sha(&read(3)), sha(&s.lab.asset("vmlinuz-lts")));
    for _ in 0..4 {
        assert!(!s.outcome().kind.describe().is_empty());
    }
}

/// Reads one response with a Content-Length body; (head, body).
fn read_response(c: &mut TcpStream, pending: &mut Vec<u8>) -> (String, Vec<u8>) {
    let mut buf = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a response head");
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("content-length");
    while pending.len() < head_end + len {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed in a body");
        pending.extend_from_slice(&buf[..n]);
    }
    let body = pending[head_end..head_end + len].to_vec();
    pending.drain(..head_end + len);
    (head, body)
}

#[test]
fn pipelined_requests_after_a_sendfile_answer_reach_hyper_intact() {
    let Some(s) = server() else { return };
    let mut c = TcpStream::connect(("127.0.0.1", s.lab.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Three requests in one write: sendfile, then two for hyper (Range, script).
    c.write_all(
        format!(
            "GET /assets/initramfs-lts HTTP/1.1\r\nHost: x\r\n\r\n\
             GET /assets/initramfs-lts HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n\
             GET /boot.ipxe?mac={NODE1} HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let file = s.lab.asset("initramfs-lts");
    let mut pending = Vec::new();
    let (h, b) = read_response(&mut c, &mut pending);
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert_eq!(b, file);
    let (h, b) = read_response(&mut c, &mut pending);
    assert!(h.starts_with("HTTP/1.1 206"), "{h}");
    assert_eq!(b, file[10..20]);
    let (h, b) = read_response(&mut c, &mut pending);
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert!(b.starts_with(b"#!ipxe"));
    assert_eq!(sent_by_sendfile(&s), 1);
}

#[test]
fn range_head_and_refusals_stay_with_hyper() {
    let Some(mut s) = server() else { return };
    let base = s.lab.base();
    let kernel = s.lab.asset("vmlinuz-lts");
    let g = curl(&format!("{base}/assets/vmlinuz-lts"), &["-r", "100-199"]);
    assert_eq!((g.status, g.body.as_slice()), (206, &kernel[100..200]));
    s.outcome();
    let g = curl(&format!("{base}/assets/vmlinuz-lts"), &["-I"]);
    assert_eq!(g.status, 200);
    s.outcome();
    for (p, status) in [
        ("/assets/no-such-file", 404),
        ("/assets/unlisted.bin", 404),
        ("/assets/escape", 404),
        ("/assets/%2e%2e/secret.txt", 400),
    ] {
        let g = curl(&format!("{base}{p}"), &[]);
        assert_eq!(g.status, status, "{p}");
        assert!(!g.text().contains(SECRET), "{p}");
        assert!(
            matches!(s.outcome().kind, EventKind::Refused { .. }),
            "{p}: not refused"
        );
    }
    // vmlinuz-special is a node's kernel override and listed: served, by sendfile.
    assert_eq!(sent_by_sendfile(&s), 0);
    let g = curl(&format!("{base}/assets/vmlinuz-special"), &[]);
    assert_eq!(g.body, s.lab.asset("vmlinuz-special"));
    assert_eq!(sent_by_sendfile(&s), 1);
}

/// A connection from `from` asking for the 16 MiB modloop and then never reading.
fn stalled(from: [u8; 4], port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.bind(&SocketAddr::from((Ipv4Addr::from(from), 0)).into())
        .unwrap();
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut c: TcpStream = s.into();
    c.write_all(b"GET /assets/modloop-lts HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    c
}

#[test]
fn the_per_address_limit_holds_for_sendfile_downloads() {
    let Some(mut s) = server() else { return };
    let port = s.lab.port;
    let per = pxelab::http::conn::MAX_PER_CLIENT;
    let _held: Vec<TcpStream> = (0..per).map(|_| stalled([127, 0, 0, 2], port)).collect();
    let started = next_event(&mut s.rx, |k| matches!(k, EventKind::HttpStart { .. }));
    assert!(started.is_some());
    // Wait until all of them are being sent (one http-start each).
    let mut starts = 1;
    while starts < per {
        let ev = next_event(&mut s.rx, |k| matches!(k, EventKind::HttpStart { .. }));
        assert!(ev.is_some(), "only {starts} downloads started");
        starts += 1;
    }
    // One more from the same address is closed at once, unanswered.
    let mut over = {
        use socket2::{Domain, Socket, Type};
        let so = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        so.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
            .unwrap();
        so.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
            .unwrap();
        let t: TcpStream = so.into();
        t
    };
    over.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = over.write_all(b"GET /assets/vmlinuz-lts HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut b = [0u8; 64];
    match over.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("connection over the share was not closed: {other:?}"),
    }
    let cut = next_event(
        &mut s.rx,
        |k| matches!(k, EventKind::Refused { what, .. } if what == "connection"),
    )
    .expect("the cut is reported");
    assert!(cut.kind.describe().contains(&format!("more than {per}")));
    // Another machine is served meanwhile, in its usual time.
    let t = Instant::now();
    let g = curl(
        &format!("{}/assets/vmlinuz-lts", s.lab.base()),
        &["--interface", "127.0.0.3"],
    );
    assert_eq!(g.status, 200);
    assert_eq!(sha(&g.body), sha(&s.lab.asset("vmlinuz-lts")));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn a_client_that_stops_reading_is_cut_and_blocks_no_one() {
    if !common::require_program("curl") {
        return;
    }
    let lab = TempLab::new();
    let engine = pxelab::Engine::new(pxelab::app::load_lab(&lab.path).unwrap());
    let mut rx = engine.subscribe();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", lab.port)))
        .unwrap();
    let limits = pxelab::http::conn::Limits {
        rate_window: Duration::from_secs(1),
        idle: Duration::from_secs(2),
        ..Default::default()
    };
    rt.spawn(pxelab::http::serve_listener_with(
        engine.clone(),
        listener,
        cancel.clone(),
        limits,
    ));
    let t = Instant::now();
    let mut c = stalled([127, 0, 0, 2], lab.port);
    // Others are served while it stalls.
    let g = curl(&format!("{}/assets/vmlinuz-lts", lab.base()), &[]);
    assert_eq!(sha(&g.body), sha(&lab.asset("vmlinuz-lts")));
    let ev = next_event(&mut rx, |k| {
        matches!(k, EventKind::HttpFetch { status: 499, .. })
    })
    .expect("the stalled download was not cut within 10 s");
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "cut after {:?}",
        t.elapsed()
    );
    let EventKind::HttpFetch { bytes, path, .. } = &ev.kind else {
        unreachable!()
    };
    assert_eq!(path, "/assets/modloop-lts");
    assert!(*bytes < 16 << 20, "{bytes}");
    assert_eq!(engine.counters().http_sendfile.load(Ordering::Relaxed), 2);
    // Its connection is closed: reading drains what was buffered, then ends.
    let (ended, total) = common::drains_to_close(&mut c);
    assert!(ended, "connection still open after {total} bytes");
    cancel.cancel();
    rt.shutdown_timeout(Duration::from_secs(2));
}
