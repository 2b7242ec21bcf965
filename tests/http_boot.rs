//! The boot HTTP server driven by the real `curl`: per-node scripts, the hold loop and
//! its release by adoption, assets (full, Range, HEAD, cut short), NoCloud data (also
//! through a doubled slash), and refusals (traversal in several encodings, unknown and
//! malformed MACs), each with the event it must produce.

mod common;
mod http_lab;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;

use http_lab::{curl, Server, TempLab, NODE1, NODE2, SECRET};
use pxelab::engine::{EventKind, FetchKind, NodeState};
use pxelab::Mac;

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

fn server() -> Option<Server> {
    if !common::require_program("curl") {
        return None;
    }
    Some(Server::start(TempLab::new(), false))
}

/// Asserts an `http-fetch` event and returns (what, status, bytes).
fn fetched(ev: &pxelab::engine::Event, want_mac: Option<&str>) -> (FetchKind, u16, u64) {
    assert_eq!(ev.mac, want_mac.map(mac), "mac of {ev:?}");
    match &ev.kind {
        EventKind::HttpFetch {
            what,
            status,
            bytes,
            client,
            ..
        } => {
            assert_eq!(client.to_string(), "127.0.0.1");
            (*what, *status, *bytes)
        }
        other => panic!("expected http-fetch, got {other:?}"),
    }
}

fn refused(ev: &pxelab::engine::Event) -> String {
    match &ev.kind {
        EventKind::Refused { reason, .. } => reason.clone(),
        other => panic!("expected refused, got {other:?}"),
    }
}

#[test]
fn per_node_scripts_match_the_renderer() {
    let Some(mut s) = server() else { return };
    let lab = s.engine.lab();
    let n1 = lab.node_by_mac(&mac(NODE1)).unwrap().clone();
    let n2 = lab.node_by_mac(&mac(NODE2)).unwrap().clone();

    let g = curl(&format!("{}/boot.ipxe?mac={NODE1}", s.lab.base()), &[]);
    assert_eq!(g.status, 200);
    assert_eq!(g.text(), pxelab::render::ipxe_script(&lab, &n1).unwrap());
    assert!(g.text().starts_with("#!ipxe"));
    assert!(g.text().contains("/assets/vmlinuz-lts"));
    let ev = s.outcome();
    assert_eq!(
        fetched(&ev, Some(NODE1)),
        (FetchKind::Script, 200, g.body.len() as u64)
    );
    assert_eq!(ev.hostname.as_deref(), Some("node-1"));
    assert_eq!(
        s.engine.node(&mac(NODE1)).unwrap().state,
        NodeState::ScriptServed
    );

    // HEAD: the length, no body, and the node does not advance.
    let g = curl(&format!("{}/boot/{NODE2}.ipxe", s.lab.base()), &["-I"]);
    assert_eq!(g.status, 200);
    let want = pxelab::render::ipxe_script(&lab, &n2).unwrap();
    assert_eq!(g.header("content-length"), Some(want.len().to_string()));
    assert_eq!(
        fetched(&s.outcome(), Some(NODE2)),
        (FetchKind::Other, 200, 0)
    );
    assert_eq!(s.engine.node(&mac(NODE2)).unwrap().state, NodeState::Idle);

    // MAC in the path, other spellings; node-2's kernel override.
    for p in [
        "/boot/52-54-00-00-00-02.ipxe",
        "/boot/525400000002.ipxe",
        "/boot.ipxe?mac=52-54-00-00-00-02",
    ] {
        let g = curl(&format!("{}{p}", s.lab.base()), &[]);
        assert_eq!(g.status, 200, "{p}");
        assert_eq!(g.text(), pxelab::render::ipxe_script(&lab, &n2).unwrap());
        assert!(g.text().contains("/assets/vmlinuz-special"), "{p}");
        assert_eq!(fetched(&s.outcome(), Some(NODE2)).0, FetchKind::Script);
    }
    s.no_more_outcomes();
}

#[test]
fn held_mac_waits_then_boots_once_adopted() {
    let Some(mut s) = server() else { return };
    let held = "52:54:00:00:00:99";
    let url = format!("{}/boot.ipxe?mac={held}", s.lab.base());
    let g = curl(&url, &[]);
    assert_eq!(g.status, 200);
    let lab = s.engine.lab();
    assert_eq!(g.text(), pxelab::render::hold_script(&lab, mac(held)));
    assert!(g.text().contains(held), "the wait script names the MAC");
    assert_eq!(fetched(&s.outcome(), Some(held)).0, FetchKind::HoldScript);
    assert_eq!(s.engine.node(&mac(held)).unwrap().state, NodeState::Held);

    // Asking again is still a hold (the loop).
    assert_eq!(curl(&url, &[]).text(), g.text());
    assert_eq!(fetched(&s.outcome(), Some(held)).0, FetchKind::HoldScript);

    let adopt = pxelab::engine::Command::Adopt {
        mac: mac(held),
        role: "k3s-agent".into(),
        hostname: Some("node-9".into()),
        ip: None,
    };
    let entry = s
        .engine
        .commands()
        .send_blocking(adopt)
        .unwrap()
        .node()
        .unwrap();
    assert!(http_lab::read(&s.lab.path).contains("node-9"));
    let g = curl(&url, &[]);
    assert_eq!(g.status, 200);
    let lab = s.engine.lab();
    assert_eq!(g.text(), pxelab::render::ipxe_script(&lab, &entry).unwrap());
    let ev = s.outcome();
    assert_eq!(fetched(&ev, Some(held)).0, FetchKind::Script);
    assert_eq!(ev.hostname.as_deref(), Some("node-9"));
}

#[test]
fn assets_full_range_head_and_attribution() {
    let Some(mut s) = server() else { return };
    let kernel = s.lab.asset("vmlinuz-lts");
    let url = format!("{}/assets/vmlinuz-lts?mac={NODE1}", s.lab.base());

    // Full body, with http-start (big file) before http-fetch at the end.
    let g = curl(&url, &[]);
    assert_eq!(g.status, 200);
    assert_eq!(g.body, kernel);
    assert_eq!(
        g.header("content-length").unwrap(),
        kernel.len().to_string()
    );
    assert_eq!(g.header("accept-ranges").as_deref(), Some("bytes"));
    let start = http_lab::next_event(&mut s.rx, |k| matches!(k, EventKind::HttpStart { .. }))
        .expect("http-start for a big asset");
    assert_eq!(start.mac, Some(mac(NODE1)));
    assert_eq!(
        fetched(&s.outcome(), Some(NODE1)),
        (FetchKind::Kernel, 200, kernel.len() as u64)
    );

    // One range: 206 and exactly those bytes.
    let g = curl(&url, &["-r", "1000-1999"]);
    assert_eq!(g.status, 206);
    assert_eq!(g.body, kernel[1000..2000]);
    assert_eq!(
        g.header("content-range").unwrap(),
        format!("bytes 1000-1999/{}", kernel.len())
    );
    assert_eq!(
        fetched(&s.outcome(), Some(NODE1)),
        (FetchKind::Kernel, 206, 1000)
    );
    let g = curl(&url, &["-r", "-10"]);
    assert_eq!(
        (g.status, g.body.as_slice()),
        (206, &kernel[kernel.len() - 10..])
    );
    s.outcome();

    // Past the end: 416.
    let g = curl(&url, &["-r", "99999999-"]);
    assert_eq!(g.status, 416);
    assert_eq!(
        g.header("content-range").unwrap(),
        format!("bytes */{}", kernel.len())
    );
    assert_eq!(fetched(&s.outcome(), Some(NODE1)).1, 416);

    // HEAD: the length, no body.
    let g = curl(&url, &["-I"]);
    assert_eq!(g.status, 200);
    assert!(g.body.is_empty() || g.text().starts_with("HTTP/"));
    assert_eq!(
        g.header("content-length").unwrap(),
        kernel.len().to_string()
    );
    assert_eq!(
        fetched(&s.outcome(), Some(NODE1)),
        (FetchKind::Other, 200, 0)
    );

    // Without ?mac=: attributed to the machine that fetched its script from this address.
    let g = curl(&format!("{}/boot/{NODE2}.ipxe", s.lab.base()), &[]);
    assert_eq!(g.status, 200);
    s.outcome();
    let g = curl(&format!("{}/assets/initramfs-lts", s.lab.base()), &[]);
    assert_eq!(g.body, s.lab.asset("initramfs-lts"));
    assert_eq!(
        fetched(&s.outcome(), Some(NODE2)),
        (FetchKind::Initrd, 200, 40_000)
    );
    // Per-node override and extras are served too.
    let g = curl(&format!("{}/assets/vmlinuz-special", s.lab.base()), &[]);
    assert_eq!(g.body, s.lab.asset("vmlinuz-special"));
    assert_eq!(fetched(&s.outcome(), Some(NODE2)).0, FetchKind::Kernel);
    let g = curl(&format!("{}/assets/node.apkovl.tar.gz", s.lab.base()), &[]);
    assert_eq!(g.body, s.lab.asset("node.apkovl.tar.gz"));
    assert_eq!(fetched(&s.outcome(), Some(NODE2)).0, FetchKind::Asset);
    assert_eq!(s.engine.node(&mac(NODE2)).unwrap().state, NodeState::Initrd);
    s.no_more_outcomes();
}

#[test]
fn a_transfer_cut_short_is_reported_with_the_bytes_sent() {
    let Some(mut s) = server() else { return };
    let len = s.lab.asset("modloop-lts").len() as u64;
    // A client with a tiny receive window that reads a little, then hangs up.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", s.lab.port).parse().unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut tcp: std::net::TcpStream = sock.into();
    write!(
        tcp,
        "GET /assets/modloop-lts?mac={NODE1} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 8192];
    let n = tcp.read(&mut buf).unwrap();
    assert!(n > 0);
    drop(tcp);
    let ev = s.outcome();
    let (what, status, bytes) = fetched(&ev, Some(NODE1));
    assert_eq!(
        (what, status),
        (FetchKind::Modloop, pxelab::http::CLIENT_CLOSED)
    );
    assert!(bytes < len, "{bytes} of {len}");
}

#[test]
fn nocloud_data_plain_and_doubled_slash() {
    let Some(mut s) = server() else { return };
    let lab = s.engine.lab();
    let n1 = lab.node_by_mac(&mac(NODE1)).unwrap().clone();
    let meta = pxelab::render::meta_data(&lab, &n1).unwrap();
    for p in [
        format!("/nocloud/{NODE1}/meta-data"),
        format!("/nocloud/{NODE1}//meta-data"),
        "/nocloud/52-54-00-00-00-01/meta-data".to_string(),
    ] {
        let g = curl(&format!("{}{p}", s.lab.base()), &["--path-as-is"]);
        assert_eq!(g.status, 200, "{p}");
        assert_eq!(g.text(), meta);
        assert_eq!(fetched(&s.outcome(), Some(NODE1)).0, FetchKind::MetaData);
    }
    assert!(meta.contains("node-1"));

    // user-data (secrets) only after the node fetched its boot script from here.
    let g = curl(&format!("{}/nocloud/{NODE1}/user-data", s.lab.base()), &[]);
    assert_eq!(g.status, 403, "user-data before boot");
    assert!(refused(&s.outcome()).contains("not booted"));
    curl(&format!("{}/boot.ipxe?mac={NODE1}", s.lab.base()), &[]);
    assert_eq!(fetched(&s.outcome(), Some(NODE1)).0, FetchKind::Script);
    let secrets = pxelab::secrets::for_node(&lab, n1.mac).unwrap();
    let user = pxelab::render::user_data(&lab, &n1, &secrets).unwrap();
    let g = curl(
        &format!("{}/nocloud/{NODE1}//user-data", s.lab.base()),
        &["--path-as-is"],
    );
    assert_eq!((g.status, g.text()), (200, user));
    assert_eq!(fetched(&s.outcome(), Some(NODE1)).0, FetchKind::UserData);
    assert_eq!(
        s.engine.node(&mac(NODE1)).unwrap().state,
        NodeState::ConfigFetched
    );

    // vendor-data and network-config: what the renderer gives; still an event.
    let n1v = pxelab::render::vendor_data(&lab, &n1);
    let n1n = pxelab::render::network_config(&lab, &n1);
    for (f, kind, want) in [
        ("vendor-data", FetchKind::VendorData, n1v),
        ("network-config", FetchKind::NetworkConfig, n1n),
    ] {
        let g = curl(
            &format!("{}/nocloud/{NODE1}//{f}", s.lab.base()),
            &["--path-as-is"],
        );
        assert_eq!((g.status, g.text()), (200, want.clone()), "{f}");
        assert_eq!(
            fetched(&s.outcome(), Some(NODE1)),
            (kind, 200, want.len() as u64)
        );
    }
    s.no_more_outcomes();
}

#[test]
fn user_data_goes_only_to_the_address_that_booted() {
    let Some(mut s) = server() else { return };
    let g = curl(&format!("{}/boot.ipxe?mac={NODE1}", s.lab.base()), &[]);
    assert_eq!(g.status, 200);
    s.outcome();
    let url = format!("{}/nocloud/{NODE1}/user-data", s.lab.base());
    // Another loopback address is another client; fetching meta-data from there
    // (anyone may) must not make it the node's address.
    let g = curl(
        &format!("{}/nocloud/{NODE1}/meta-data", s.lab.base()),
        &["--interface", "127.0.0.2"],
    );
    assert_eq!(g.status, 200);
    s.outcome();
    let g = curl(&url, &["--interface", "127.0.0.2"]);
    assert_eq!(g.status, 403);
    assert!(g.body.len() < 40, "no user-data in a refusal");
    let ev = s.outcome();
    assert_eq!(ev.mac, Some(mac(NODE1)));
    assert!(refused(&ev).contains("127.0.0.2"));
    let g = curl(&url, &[]);
    assert_eq!(g.status, 200);
    assert_eq!(fetched(&s.outcome(), Some(NODE1)).0, FetchKind::UserData);
}

#[test]
fn refusals_traversal_unknown_and_malformed() {
    let Some(mut s) = server() else { return };
    let before = s.engine.counters().http_refused.load(Ordering::Relaxed);
    let cases: &[(&str, u16)] = &[
        ("/assets/../lab.yaml", 400),
        ("/assets/../secret.txt", 400),
        ("/assets/%2e%2e/secret.txt", 400),
        ("/assets/%2E%2E%2Fsecret.txt", 400),
        ("/assets/..%2f..%2f..%2fetc%2fpasswd", 400),
        ("/assets/.%2e/secret.txt", 400),
        ("/assets/..\\secret.txt", 400),
        ("/assets/%5c..%5csecret.txt", 400),
        ("/../secret.txt", 400),
        ("/assets/%00vmlinuz-lts", 400),
        ("/assets/%zz", 400),
        ("/assets//etc/passwd", 404),
        ("/assets/%2fetc%2fpasswd", 404),
        ("/assets/%252e%252e/secret.txt", 404),
        ("/assets/unlisted.bin", 404),
        ("/assets/escape", 404),
        ("/assets/lab.yaml", 404),
        ("/secret.txt", 404),
        ("/etc/passwd", 404),
        ("/boot.ipxe", 400),
        ("/boot.ipxe?mac=52:54:00:zz:00:01", 400),
        ("/boot/52:54:00.ipxe", 400),
        ("/nocloud/not-a-mac/meta-data", 400),
        ("/nocloud/52:54:00:00:00:77/meta-data", 404),
        ("/nocloud/52:54:00:00:00:77/user-data", 404),
        ("/nocloud/52:54:00:00:00:01/../../secret.txt", 400),
        ("/nocloud/52:54:00:00:00:01/passwd", 404),
    ];
    for (p, want) in cases {
        let g = curl(&format!("{}{p}", s.lab.base()), &["--path-as-is"]);
        assert_eq!(g.status, *want, "{p}");
        assert!(!g.text().contains(SECRET), "{p} leaked");
        assert!(!g.text().contains("name: httptest"), "{p} leaked lab.yaml");
        let ev = s.outcome();
        assert!(
            matches!(&ev.kind, EventKind::Refused { what, .. } if !what.is_empty()),
            "{p}: {ev:?}"
        );
        assert_eq!(ev.mac, None, "{p}: refusals of unknown input carry no MAC");
    }
    let g = curl(
        &format!("{}/boot.ipxe?mac={NODE1}", s.lab.base()),
        &["-X", "POST"],
    );
    assert_eq!(g.status, 405);
    s.outcome();
    let after = s.engine.counters().http_refused.load(Ordering::Relaxed);
    assert_eq!(after - before, cases.len() as u64 + 1);
    s.no_more_outcomes();
}

#[test]
fn ignore_policy_answers_404() {
    if !common::require_program("curl") {
        return;
    }
    let lab = TempLab::new();
    let text = http_lab::read(&lab.path).replace("unknown: hold", "unknown: ignore");
    std::fs::write(&lab.path, text).unwrap();
    let mut s = Server::start(lab, false);
    let g = curl(
        &format!("{}/boot.ipxe?mac=52:54:00:00:00:42", s.lab.base()),
        &[],
    );
    assert_eq!(g.status, 404);
    assert!(refused(&s.outcome()).contains("52:54:00:00:00:42"));
    assert!(s.engine.node(&mac("52:54:00:00:00:42")).is_none());
}

#[test]
fn idle_connections_are_closed_and_free_their_slot() {
    if !common::require_program("curl") {
        return;
    }
    let lab = TempLab::new();
    let engine = pxelab::Engine::new(pxelab::app::load_lab(&lab.path).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", lab.port)))
        .unwrap();
    let limits = pxelab::http::conn::Limits {
        idle: std::time::Duration::from_millis(300),
        max_connections: 1,
        ..Default::default()
    };
    rt.spawn(pxelab::http::serve_listener_with(
        engine.clone(),
        listener,
        cancel.clone(),
        limits,
    ));
    // A client that connects and says nothing holds the only slot until it is cut off.
    let mut quiet = std::net::TcpStream::connect(("127.0.0.1", lab.port)).unwrap();
    quiet
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    // A real request waits for the slot and is then served.
    let g = curl(&format!("{}/boot.ipxe?mac={NODE1}", lab.base()), &[]);
    assert_eq!(g.status, 200);
    let mut buf = [0u8; 16];
    match quiet.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("idle connection not closed by the server: {other:?}"),
    }
    cancel.cancel();
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
}

#[test]
fn busybox_wget_fetches_nocloud_as_tiny_cloud_does() {
    if !common::require_program("busybox") {
        return;
    }
    let Some(mut s) = server() else { return };
    curl(&format!("{}/boot.ipxe?mac={NODE1}", s.lab.base()), &[]);
    s.outcome();
    // tiny-cloud builds "$s/$file" and the kernel command line's s= ends in `/`.
    let seed = format!("{}/nocloud/{NODE1}/", s.lab.base());
    let lab = s.engine.lab();
    let n1 = lab.node_by_mac(&mac(NODE1)).unwrap().clone();
    for (file, kind) in [
        ("meta-data", FetchKind::MetaData),
        ("user-data", FetchKind::UserData),
    ] {
        let out = std::process::Command::new("busybox")
            .args(["wget", "-q", "-O", "-"])
            .arg(format!("{seed}/{file}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {out:?}");
        let want = match kind {
            FetchKind::MetaData => pxelab::render::meta_data(&lab, &n1).unwrap(),
            _ => {
                let sec = pxelab::secrets::for_node(&lab, n1.mac).unwrap();
                pxelab::render::user_data(&lab, &n1, &sec).unwrap()
            }
        };
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{file}");
        let ev = s.outcome();
        assert_eq!(fetched(&ev, Some(NODE1)).0, kind);
        assert!(
            matches!(&ev.kind, EventKind::HttpFetch { path, .. } if path.contains("//")),
            "the doubled slash reached the server: {ev:?}"
        );
    }
}

#[test]
fn uefi_http_boot_gets_the_ipxe_binary_from_the_tftp_root() {
    let Some(mut s) = server() else { return };
    let lab = s.engine.lab();
    // The URL DHCP hands an x64 UEFI HTTP-boot client (option 93 = 16).
    let bin = pxelab::dhcp::boot::binary_for_arch(&lab, 16).expect("x64 UEFI has a binary");
    let url = format!("{}/ipxe/{bin}", lab.http_base());
    let want = s.lab.tftp_file("ipxe.efi");

    let g = curl(&url, &[]);
    assert_eq!(g.status, 200, "{url}");
    assert_eq!(g.body, want);
    assert_eq!(g.header("content-length").unwrap(), want.len().to_string());
    assert_eq!(
        fetched(&s.outcome(), None),
        (FetchKind::Ipxe, 200, want.len() as u64)
    );

    // Firmware that resumes: one range.
    let g = curl(&url, &["-r", "4096-8191"]);
    assert_eq!((g.status, g.body.as_slice()), (206, &want[4096..8192]));
    assert_eq!(fetched(&s.outcome(), None), (FetchKind::Ipxe, 206, 4096));

    // Once a machine fetched its script from this address, the binary is its.
    let g = curl(&format!("{}/boot/{NODE1}.ipxe", s.lab.base()), &[]);
    assert_eq!(g.status, 200);
    s.outcome();
    let g = curl(&format!("{}/ipxe/undionly.kpxe", s.lab.base()), &[]);
    assert_eq!(g.body, s.lab.tftp_file("undionly.kpxe"));
    assert_eq!(
        fetched(&s.outcome(), Some(NODE1)),
        (FetchKind::Ipxe, 200, 70_000)
    );

    // Only files of the TFTP root, nothing outside it, nothing that is not a file.
    for (p, want) in [
        ("/ipxe/nope.efi", 404),
        ("/ipxe/../lab.yaml", 400),
        ("/ipxe/%2e%2e/secret.txt", 400),
        ("/ipxe/..%2fassets%2fvmlinuz-lts", 400),
        ("/ipxe/%2fetc%2fpasswd", 404),
        ("/ipxe/", 404),
        ("/ipxe", 404),
    ] {
        let g = curl(&format!("{}{p}", s.lab.base()), &["--path-as-is"]);
        assert_eq!(g.status, want, "{p}");
        assert!(!g.text().contains(SECRET), "{p} leaked");
        let ev = s.outcome();
        assert!(matches!(&ev.kind, EventKind::Refused { .. }), "{p}: {ev:?}");
    }
    s.no_more_outcomes();
}
