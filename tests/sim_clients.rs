//! The simulator's protocol clients and its sshd against real peers on loopback:
//! tftp-hpa's `in.tftpd` (TFTP), Python's `http.server` (HTTP) and OpenSSH's `ssh` (SSH).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use pxelab::sim::logs::NodeLogs;
use pxelab::sim::ssh::{self, SshdState};
use pxelab::sim::{http, tftp, Cluster};

fn free_udp() -> u16 {
    common::free_port()
}
fn free_tcp() -> u16 {
    common::free_port()
}

#[tokio::test]
async fn tftp_client_reads_from_in_tftpd() {
    if !common::require_program("in.tftpd") || !common::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 3 full 1432-byte blocks and a short one; and an exact multiple (needs a last empty block).
    let data: Vec<u8> = (0..(1432 * 3 + 100)).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("undionly.kpxe"), &data).unwrap();
    let exact: Vec<u8> = vec![0x5a; 512 * 4];
    std::fs::write(dir.path().join("exact.bin"), &exact).unwrap();
    let port = free_udp();
    let _d = common::ChildGuard(
        Command::new(common::which("in.tftpd").unwrap())
            .args(["-L", "-s"])
            .arg(dir.path())
            .args(["-a", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // From a node's own loopback address, as the simulator does.
    let sock = tokio::net::UdpSocket::bind("127.1.0.77:0").await.unwrap();
    let got = tftp::read(
        &sock,
        server,
        "undionly.kpxe",
        &tftp::TftpOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(got.data, data);
    assert_eq!(got.blksize, 1432);
    assert_eq!(got.tsize, Some(data.len() as u64));
    let opts = tftp::TftpOptions {
        blksize: 512,
        ..Default::default()
    };
    let sock = tokio::net::UdpSocket::bind("127.1.0.77:0").await.unwrap();
    let got = tftp::read(&sock, server, "exact.bin", &opts).await.unwrap();
    assert_eq!(got.data, exact);
    let sock = tokio::net::UdpSocket::bind("127.1.0.77:0").await.unwrap();
    let err = tftp::read(&sock, server, "missing.efi", &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, tftp::TftpError::Remote { code: 1, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn http_client_gets_from_python_http_server() {
    if !common::require_program("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("vmlinuz-lts"), &big).unwrap();
    std::fs::write(dir.path().join("boot.ipxe"), "#!ipxe\nboot\n").unwrap();
    let port = free_tcp();
    let log = dir.path().join("access.log");
    let _d = common::ChildGuard(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let from = std::net::IpAddr::V4(Ipv4Addr::new(127, 1, 0, 78));
    let base = format!("http://127.0.0.1:{port}");
    let mut ok = None;
    for _ in 0..50 {
        if let Ok(r) = http::get(
            from,
            &format!("{base}/boot.ipxe"),
            true,
            Duration::from_secs(15),
        )
        .await
        {
            ok = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = ok.expect("python http.server did not come up");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "#!ipxe\nboot\n");
    let r = http::get(
        from,
        &format!("{base}/vmlinuz-lts"),
        false,
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.bytes, r.body.len()),
        (200, big.len() as u64, 0)
    );
    let r = http::get(
        from,
        &format!("{base}/vmlinuz-lts"),
        true,
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    assert_eq!(r.body, big);
    let r = http::get(from, &format!("{base}/nope"), true, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    // The server saw the node's own address.
    let seen = common::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        t.contains("127.1.0.78").then_some(())
    });
    assert!(
        seen.is_some(),
        "python did not log 127.1.0.78: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn keygen(dir: &std::path::Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    common::sh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            name,
            "-f",
            path.to_str().unwrap(),
        ],
    );
    (
        std::fs::read_to_string(&path).unwrap(),
        std::fs::read_to_string(path.with_extension("pub")).unwrap(),
    )
}

fn ssh_cmd(dir: &std::path::Path, key: &str, port: u16, cmd: &str) -> std::process::Output {
    Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(dir.join(key))
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            dir.join("known_hosts").display()
        ))
        .args([
            "-o",
            "ConnectTimeout=5",
            "-p",
            &port.to_string(),
            "lab@127.1.0.79",
            cmd,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_serves_logs_and_kubectl_to_openssh() {
    if !common::require_program("ssh") || !common::require_program("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (host_priv, host_pub) = keygen(dir.path(), "host");
    let (_, op_pub) = keygen(dir.path(), "operator");
    keygen(dir.path(), "stranger");
    let port = free_tcp();
    // Pinned: the only host key the client accepts is the one the node was given.
    std::fs::write(
        dir.path().join("known_hosts"),
        format!("[127.1.0.79]:{port} {host_pub}"),
    )
    .unwrap();
    let logs = NodeLogs::new();
    logs.tiny_cloud("boot", 2201, "expand_root", "skipped");
    logs.set_hostname("node-0");
    logs.tiny_cloud("main", 2301, "set_hostname", "done");
    let cluster = Cluster::new();
    cluster.claim_server(Ipv4Addr::new(127, 1, 0, 79), None);
    let cancel = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(("127.1.0.79", port))
        .await
        .unwrap();
    ssh::spawn(
        listener,
        russh::keys::PrivateKey::from_openssh(&host_priv).unwrap(),
        SshdState {
            logs: logs.clone(),
            cluster: cluster.clone(),
            k3s_server: true,
            authorized: vec![russh::keys::PublicKey::from_openssh(op_pub.trim()).unwrap()],
            user: "lab".to_string(),
            machine: None,
        },
        cancel.clone(),
    );
    let d = dir.path().to_path_buf();
    let run = move |key: &'static str, cmd: &'static str| {
        let d = d.clone();
        tokio::task::spawn_blocking(move || ssh_cmd(&d, key, port, cmd))
    };
    let o = run("operator", "tail -n +1 /var/log/messages")
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(" localhost local7.info tiny-cloud/boot[2201]: expand_root: skipped"),
        "{text}"
    );
    assert!(
        text.contains(" node-0 local7.info tiny-cloud/main[2301]: set_hostname: done"),
        "{text}"
    );
    // kubectl before the API is up fails like the real one.
    let o = run("operator", "k3s kubectl get nodes -o json")
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    cluster.api_up();
    cluster.join("node-0", Ipv4Addr::new(127, 1, 0, 79), true, Duration::ZERO);
    let o = run("operator", "sudo k3s kubectl get nodes -o json")
        .await
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["items"][0]["metadata"]["name"], "node-0");
    let o = run("operator", "tiny-cloud --bootstrap status")
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "incomplete\n");
    let o = run("operator", "nosuchcommand").await.unwrap();
    assert_eq!(o.status.code(), Some(127));
    // A key that is not authorised is refused.
    let o = run("stranger", "hostname").await.unwrap();
    assert_eq!(
        o.status.code(),
        Some(255),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"));
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_tail_follows_growing_files() {
    if !common::require_program("ssh") || !common::require_program("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (host_priv, host_pub) = keygen(dir.path(), "host");
    let (_, op_pub) = keygen(dir.path(), "operator");
    let port = free_tcp();
    std::fs::write(
        dir.path().join("known_hosts"),
        format!("[127.1.0.79]:{port} {host_pub}"),
    )
    .unwrap();
    let logs = NodeLogs::new();
    logs.tiny_cloud("boot", 1, "expand_root", "skipped");
    let cancel = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(("127.1.0.79", port))
        .await
        .unwrap();
    ssh::spawn(
        listener,
        russh::keys::PrivateKey::from_openssh(&host_priv).unwrap(),
        SshdState {
            logs: logs.clone(),
            cluster: Cluster::new(),
            k3s_server: false,
            authorized: vec![russh::keys::PublicKey::from_openssh(op_pub.trim()).unwrap()],
            user: "lab".to_string(),
            machine: None,
        },
        cancel.clone(),
    );
    let mut child = common::ChildGuard(
        Command::new("ssh")
            .args(["-F", "/dev/null", "-i"])
            .arg(dir.path().join("operator"))
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
            ])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                dir.path().join("known_hosts").display()
            ))
            .args([
                "-p",
                &port.to_string(),
                "lab@127.1.0.79",
                "tail -n +1 -F /var/log/messages /var/log/k3s.log",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wrote = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
        if !wrote && seen.iter().any(|l| l.contains("expand_root: skipped")) {
            logs.k3s("info", "Starting k3s agent v1.31.4+k3s1 (a562d090)", "");
            wrote = true;
        }
        if seen.iter().any(|l| l.contains("Starting k3s agent")) {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l == "==> /var/log/messages <=="),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|l| l == "==> /var/log/k3s.log <=="),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("level=info msg=\"Starting k3s agent")),
        "{seen:?}"
    );
    cancel.cancel();
}
