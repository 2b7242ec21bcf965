//! TFTP against real clients on loopback with an unprivileged port (no namespace
//! needed): tftp-hpa, curl and atftp (windowsize) fetch iPXE byte-identical; traversal,
//! absolute paths and writes are refused; a client that vanishes is timed out. Each
//! transfer is checked on pxelab's own JSON event stream.

mod common;
mod dhcp_support;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use dhcp_support::{free_tcp_port, free_udp_port, write_lab, Pxelab};

const ROOT: &str = "/usr/lib/ipxe";
const FILE: &str = "undionly.kpxe";

fn start(dir: &std::path::Path) -> (Pxelab, u16) {
    let port = free_udp_port();
    let lab = write_lab(
        dir,
        &format!(
            "name: tftp-test\nserver_address: 127.0.0.1\ndhcp: {{mode: off}}\n\
             tftp: {{root: {ROOT}, port: {port}}}\n\
             http: {{bind: 127.0.0.1, port: {}, admin_port: {}}}\n\
             ssh: {{watch: false}}\nboot: {{kernel: vmlinuz, initrds: [initrd]}}\n",
            free_tcp_port(),
            free_tcp_port()
        ),
    );
    (Pxelab::start(Command::new("env"), &lab, &["tftp"]), port)
}

fn original() -> Vec<u8> {
    std::fs::read(format!("{ROOT}/{FILE}")).unwrap()
}

fn tftp_end(
    p: &Pxelab,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    p.wait(Duration::from_secs(20), what, |e| {
        e["event"] == "tftp-end" && pred(e)
    })
}

#[test]
fn tftp_hpa_curl_and_atftp_fetch_byte_identical() {
    if !common::require_program("tftp")
        || !common::require_program("curl")
        || !common::require_program("atftp")
    {
        return;
    }
    if !common::require(
        std::path::Path::new(ROOT).join(FILE).is_file(),
        "the ipxe package",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (p, port) = start(dir.path());
    let want = original();

    // tftp-hpa, plain RFC 1350 (512-byte blocks, no options).
    let out = dir.path().join("hpa.kpxe");
    let o = Command::new("tftp")
        .args([
            "-v",
            "-m",
            "binary",
            "127.0.0.1",
            &port.to_string(),
            "-c",
            "get",
            FILE,
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "tftp-hpa: {o:?}");
    assert_eq!(std::fs::read(&out).unwrap(), want, "tftp-hpa copy differs");
    let e = tftp_end(&p, "tftp-hpa transfer", |e| e["outcome"] == "complete");
    assert_eq!(e["bytes"], want.len() as u64);
    let s = p.wait(Duration::from_secs(15), "tftp-start", |e| {
        e["event"] == "tftp-start"
    });
    assert_eq!(s["blksize"], 512);
    assert_eq!(s["file"], FILE);

    // curl with blksize 1468 (RFC 2348) and tsize.
    let out = dir.path().join("curl.kpxe");
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--tftp-blksize", "1468", "-o"])
        .arg(&out)
        .arg(format!("tftp://127.0.0.1:{port}/{FILE}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "curl: {o:?}");
    assert_eq!(std::fs::read(&out).unwrap(), want, "curl copy differs");
    p.wait(
        Duration::from_secs(15),
        "tftp-start with blksize 1468",
        |e| e["event"] == "tftp-start" && e["blksize"] == 1468,
    );
    let n = p
        .matching(|e| e["event"] == "tftp-end" && e["outcome"] == "complete")
        .len();
    common::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        (p.matching(|e| e["event"] == "tftp-end" && e["outcome"] == "complete")
            .len()
            >= 2)
            .then_some(())
    })
    .unwrap_or_else(|| p.fail(&format!("second complete transfer (had {n})")));

    // atftp with windowsize 8 (RFC 7440) and blksize 1024.
    let out = dir.path().join("atftp.kpxe");
    let o = Command::new("timeout")
        .args([
            "30",
            "atftp",
            "--option",
            "windowsize 8",
            "--option",
            "blksize 1024",
            "-g",
            "-r",
            FILE,
            "-l",
        ])
        .arg(&out)
        .args(["127.0.0.1", &port.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "atftp: {o:?}");
    assert_eq!(std::fs::read(&out).unwrap(), want, "atftp copy differs");
    p.wait(
        Duration::from_secs(15),
        "tftp-start with windowsize 8",
        |e| e["event"] == "tftp-start" && e["windowsize"] == 8 && e["blksize"] == 1024,
    );
    common::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        (p.matching(|e| e["event"] == "tftp-end" && e["outcome"] == "complete")
            .len()
            >= 3)
            .then_some(())
    })
    .unwrap_or_else(|| p.fail("third complete transfer"));
    p.stop();
}

#[test]
fn traversal_absolute_and_writes_are_refused() {
    if !common::require_program("tftp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (p, port) = start(dir.path());
    for bad in [
        "../../../etc/passwd",
        "/etc/passwd",
        "qemu/../../../etc/passwd",
    ] {
        let out = dir.path().join("stolen");
        let _ = std::fs::remove_file(&out);
        let o = Command::new("timeout")
            .args([
                "20",
                "tftp",
                "-m",
                "binary",
                "127.0.0.1",
                &port.to_string(),
                "-c",
                "get",
                bad,
            ])
            .arg(&out)
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(
            std::fs::read(&out).map(|b| b.is_empty()).unwrap_or(true),
            "{bad} was served: {text}"
        );
        tftp_end(&p, &format!("refusal of {bad}"), |e| {
            e["outcome"] == "refused" && e["file"] == bad
        });
    }
    // A write request.
    let src = dir.path().join("upload.bin");
    std::fs::write(&src, b"not welcome").unwrap();
    let o = Command::new("timeout")
        .args([
            "20",
            "tftp",
            "-m",
            "binary",
            "127.0.0.1",
            &port.to_string(),
            "-c",
            "put",
        ])
        .arg(&src)
        .arg("upload.bin")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        text.to_lowercase().contains("read-only") || !o.status.success(),
        "put: {text}"
    );
    assert!(!std::path::Path::new(ROOT).join("upload.bin").exists());
    tftp_end(&p, "refused write", |e| {
        e["outcome"] == "refused" && e["file"] == "upload.bin"
    });
    p.stop();
}

/// A raw client that asks, takes the first block and disappears: the transfer must end
/// as `timeout`, bounded by the retransmission budget. Also an aborted size probe
/// (OVMF's error 8 after the OACK) ends as `error`.
#[test]
fn vanished_and_aborting_clients_are_released() {
    let dir = tempfile::tempdir().unwrap();
    let (p, port) = start(dir.path());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(FILE.as_bytes());
    rrq.extend_from_slice(b"\0octet\0timeout\x001\0");
    sock.send_to(&rrq, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..2], &[0, 6], "expected an OACK, got {:?}", &buf[..n]);
    // Vanish: never ACK.
    let e = tftp_end(&p, "timeout of a vanished client", |e| {
        e["outcome"] == "timeout"
    });
    assert_eq!(e["bytes"], 0);

    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(FILE.as_bytes());
    rrq.extend_from_slice(b"\0octet\0tsize\x000\0");
    probe.send_to(&rrq, ("127.0.0.1", port)).unwrap();
    let (n, from) = probe.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..2], &[0, 6]);
    let oack = String::from_utf8_lossy(&buf[2..n]).to_string();
    assert!(
        oack.contains(&format!("tsize\0{}", original().len())),
        "{oack:?}"
    );
    probe
        .send_to(b"\x00\x05\x00\x08size probe done\x00", from)
        .unwrap();
    let e = tftp_end(&p, "aborted probe", |e| e["outcome"] == "error");
    assert!(e["detail"].as_str().unwrap().contains("error 8"), "{e}");
    p.stop();
}
