//! What `/ipxe/` and TFTP may serve from `tftp.root`, with real clients on loopback
//! (curl, tftp-hpa; no root needed): regular files whose real path stays inside the
//! root, a symlink to a file inside it (Debian's layout), and nothing else: no
//! symlink out of the root, no `.pxelab/`, `.git/` or hidden file.

mod common;
mod dhcp_support;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dhcp_support::{free_tcp_port, free_udp_port, write_lab, Pxelab};

const SECRET: &str = "LAB-SECRET-MUST-NOT-LEAVE";
const ROM: &[u8] = b"an option ROM inside the root";

/// The lab folder: lab.yaml, `secret.txt` beside it, and `root/` with the files.
fn lab(dir: &Path) -> (std::path::PathBuf, u16, u16) {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("qemu")).unwrap();
    std::fs::create_dir_all(root.join(".pxelab")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join("undionly.kpxe"), vec![7u8; 70_000]).unwrap();
    std::fs::write(root.join("qemu/pxe-e1000.rom"), ROM).unwrap();
    std::fs::write(root.join(".pxelab/lab-secret"), SECRET).unwrap();
    std::fs::write(root.join(".git/config"), SECRET).unwrap();
    std::fs::write(root.join(".hidden.efi"), SECRET).unwrap();
    std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
    // Debian's layout: a relative link, and an absolute one, to a file inside the root.
    symlink("qemu/pxe-e1000.rom", root.join("82540em.rom")).unwrap();
    symlink(root.join("qemu/pxe-e1000.rom"), root.join("abs.rom")).unwrap();
    // Ways out.
    symlink("/etc/passwd", root.join("passwd")).unwrap();
    symlink("../secret.txt", root.join("escape")).unwrap();
    symlink("..", root.join("up")).unwrap();
    symlink(".pxelab/lab-secret", root.join("innocent.efi")).unwrap();
    let (tftp, http) = (free_udp_port(), free_tcp_port());
    let path = write_lab(
        dir,
        &format!(
            "name: roots\nserver_address: 127.0.0.1\ndhcp: {{mode: off}}\n\
             tftp: {{root: root, port: {tftp}}}\n\
             http: {{bind: 127.0.0.1, port: {http}, admin_port: {}}}\n\
             ssh: {{watch: false}}\nboot: {{kernel: vmlinuz, initrds: [initrd]}}\n",
            free_tcp_port()
        ),
    );
    (path, tftp, http)
}

/// The names that must never be served, and what each is.
const REFUSED: [&str; 8] = [
    "passwd",
    "escape",
    "up/secret.txt",
    "innocent.efi",
    ".pxelab/lab-secret",
    ".git/config",
    ".hidden.efi",
    "qemu/../.pxelab/lab-secret",
];

fn leaked(body: &[u8]) -> bool {
    let t = String::from_utf8_lossy(body);
    t.contains(SECRET) || t.contains("root:x:0")
}

#[test]
fn only_files_inside_the_root_over_http_and_tftp() {
    if !common::require_program("curl") || !common::require_program("tftp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, tftp, http) = lab(dir.path());
    let p = Pxelab::start(Command::new("env"), &path, &["tftp", "http"]);

    // HTTP: links to files inside the root work; the rest is refused, with an event.
    let get = |name: &str| {
        let out = Command::new("curl")
            .args([
                "-s",
                "--path-as-is",
                "--max-time",
                "20",
                "-w",
                "\n%{http_code}",
            ])
            .arg(format!("http://127.0.0.1:{http}/ipxe/{name}"))
            .output()
            .unwrap();
        let mut body = out.stdout;
        let pos = body.iter().rposition(|b| *b == b'\n').unwrap();
        let status: u16 = String::from_utf8_lossy(&body[pos + 1..]).parse().unwrap();
        body.truncate(pos);
        (status, body)
    };
    for name in ["82540em.rom", "abs.rom", "qemu/pxe-e1000.rom"] {
        assert_eq!(get(name), (200, ROM.to_vec()), "{name}");
    }
    for name in REFUSED {
        let (status, body) = get(name);
        assert!(!leaked(&body), "/ipxe/{name} leaked");
        assert!(matches!(status, 400 | 403 | 404), "/ipxe/{name}: {status}");
        if !name.contains("..") {
            p.wait(
                Duration::from_secs(10),
                &format!("refusal of {name}"),
                |e| {
                    e["event"] == "refused"
                        && e["source"] == "http"
                        && e["what"] == format!("/ipxe/{name}").as_str()
                },
            );
        }
    }

    // TFTP, tftp-hpa: the same rule.
    let fetch = |name: &str| {
        let out = dir.path().join("got");
        let _ = std::fs::remove_file(&out);
        let o = Command::new("timeout")
            .args(["20", "tftp", "-m", "binary", "127.0.0.1", &tftp.to_string()])
            .args(["-c", "get", name])
            .arg(&out)
            .output()
            .unwrap();
        (o, std::fs::read(&out).unwrap_or_default())
    };
    let (o, got) = fetch("82540em.rom");
    assert_eq!(got, ROM, "tftp-hpa 82540em.rom: {o:?}");
    for name in REFUSED {
        let (_, got) = fetch(name);
        assert!(got.is_empty() && !leaked(&got), "tftp {name} was served");
        p.wait(
            Duration::from_secs(15),
            &format!("tftp refusal of {name}"),
            |e| e["event"] == "tftp-end" && e["outcome"] == "refused" && e["file"] == name,
        );
    }
    // curl's TFTP client too.
    let o = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .arg(format!("tftp://127.0.0.1:{tftp}/.pxelab/lab-secret"))
        .output()
        .unwrap();
    assert!(
        !o.status.success() && !leaked(&o.stdout),
        "curl tftp: {o:?}"
    );
    p.stop();
}
