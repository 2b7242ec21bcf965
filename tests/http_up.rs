//! The real binary: `pxelab up --no-tui [--json]` on a temporary lab (DHCP off, TFTP off:
//! nothing privileged runs), driven by `curl`, then `pxelab adopt` and `pxelab nodes`
//! through its admin API; and both commands without a running instance.

mod common;
mod http_lab;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use http_lab::{curl, TempLab, NODE1};

/// A running `pxelab up` with its stdout lines on a channel.
struct Up {
    child: common::ChildGuard,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    fn start(lab: &TempLab, json: bool) -> Up {
        let mut cmd = Command::new(common::pxelab_bin());
        cmd.args(["up", "--no-tui"]);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .arg("-c")
            .arg(&lab.path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Up {
            child: common::ChildGuard(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 15 s) for a line matching `pred`; keeps every line seen.
    fn line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let found = common::wait_for(Duration::from_secs(15), Duration::from_millis(1), || {
            let l = self.lines.recv_timeout(Duration::from_millis(100)).ok()?;
            self.seen.push(l.clone());
            pred(&l).then_some(l)
        });
        found.unwrap_or_else(|| panic!("no {what} line; stdout so far:\n{}", self.seen.join("\n")))
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns the remaining lines.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.0.id().to_string();
        common::sh("kill", &["-TERM", &pid]);
        let status = common::wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            self.child.0.try_wait().ok().flatten()
        })
        .expect("pxelab up exits on SIGTERM");
        assert!(status.success(), "exit status {status}");
        let mut rest = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            rest.push(l);
        }
        rest
    }
}

fn pxelab(lab: &TempLab, args: &[&str]) -> std::process::Output {
    Command::new(common::pxelab_bin())
        .args(args)
        .arg("-c")
        .arg(&lab.path)
        .output()
        .unwrap()
}

fn as_json(l: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
    assert!(v.is_object(), "{l}");
    assert!(
        v["seq"].is_u64() && v["at_ms"].is_u64() && v["event"].is_string(),
        "{l}"
    );
    v
}

#[test]
fn up_json_lines_then_adopt_and_nodes_through_the_admin_api() {
    if !common::require_program("curl") {
        return;
    }
    let lab = TempLab::new();
    let mut up = Up::start(&lab, true);
    let http_up = format!("127.0.0.1:{}", lab.port);
    let admin_up = format!("127.0.0.1:{}", lab.admin_port);
    // The servers start concurrently: their `server-up` lines come in either order.
    let (mut http_seen, mut admin_seen) = (false, false);
    for _ in 0..8 {
        if http_seen && admin_seen {
            break;
        }
        let l = up.line("server-up http and admin", |l| l.contains("\"server-up\""));
        http_seen |= l.contains("\"http\"") && l.contains(&http_up);
        admin_seen |= l.contains("\"admin\"") && l.contains(&admin_up);
    }
    assert!(http_seen && admin_seen, "lines: {:?}", up.seen);

    let g = curl(&format!("{}/boot.ipxe?mac={NODE1}", lab.base()), &[]);
    assert_eq!(g.status, 200);
    let l = up.line("http-fetch", |l| l.contains("\"http-fetch\""));
    let v = as_json(&l);
    assert_eq!(v["mac"], NODE1);
    assert_eq!(v["hostname"], "node-1");
    assert_eq!(v["what"], "script");
    assert_eq!(v["status"], 200);
    assert_eq!(v["client"], "127.0.0.1");

    // A held machine, then `pxelab adopt` through the running instance.
    let held = "52:54:00:00:00:44";
    let g = curl(&format!("{}/boot/{held}.ipxe", lab.base()), &[]);
    assert!(g.text().contains(held));
    up.line("node-held", |l| l.contains("\"node-held\""));
    let out = pxelab(&lab, &["adopt", "52-54-00-00-00-44", "--role", "k3s-agent"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("through the running pxelab"), "{said}");
    assert!(said.contains(held), "{said}");
    let l = up.line("node-adopted", |l| l.contains("\"node-adopted\""));
    assert_eq!(as_json(&l)["mac"], held);
    assert!(http_lab::read(&lab.path).contains(held));
    let g = curl(&format!("{}/boot/{held}.ipxe", lab.base()), &[]);
    assert!(
        g.text().contains("/assets/vmlinuz-lts"),
        "released: {}",
        g.text()
    );

    // Errors from the running instance: exit 1 with its message.
    let out = pxelab(&lab, &["adopt", held, "--role", "k3s-agent"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already"));

    // `pxelab nodes --json`: live states, from the instance.
    let out = pxelab(&lab, &["nodes", "--json"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("live"));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = &reply["nodes"];
    let n1 = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["mac"] == NODE1)
        .unwrap();
    assert_eq!(n1["state"], "script-served");
    assert!(nodes
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["mac"] == held && n["known"] == true));
    let out = pxelab(&lab, &["nodes"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().next().unwrap().starts_with("MAC"));
    assert!(table.contains("script-served"), "{table}");

    // Every stdout line is one JSON event; a clean stop says server-down.
    let seen = up.seen.clone();
    let rest = up.stop();
    for l in seen.iter().chain(&rest) {
        as_json(l);
    }
    assert!(
        rest.iter().any(|l| l.contains("\"server-down\"")),
        "{rest:?}"
    );
}

#[test]
fn up_text_lines() {
    if !common::require_program("curl") {
        return;
    }
    let lab = TempLab::new();
    let mut up = Up::start(&lab, false);
    // HTTP and the admin API come up concurrently: wait for HTTP's own line.
    let http_up = format!("Http server listening on 127.0.0.1:{}", lab.port);
    let l = up.line("the HTTP server-up", |l| {
        l.contains("server-up") && l.contains(&http_up)
    });
    let b = l.as_bytes();
    assert!(
        b.len() > 14 && b[2] == b':' && b[5] == b':' && b[8] == b'.',
        "{l}"
    );
    assert_eq!(&l[12..14], "  ", "{l}");
    let got = curl(
        &format!("{}/assets/initramfs-lts?mac={NODE1}", lab.base()),
        &[],
    );
    assert_eq!(got.status, 200);
    let l = up.line("http-fetch", |l| l.contains("http-fetch"));
    let rest = &l[14..];
    assert!(rest.starts_with("node-1   "), "{l}");
    assert!(
        rest.contains("HTTP 200 Initrd /assets/initramfs-lts 40000 B in"),
        "{l}"
    );
    up.stop();
}

#[test]
fn adopt_and_nodes_without_a_running_instance_edit_lab_yaml() {
    let lab = TempLab::new();
    let out = pxelab(
        &lab,
        &[
            "adopt",
            "5254.0000.0066",
            "--role",
            "k3s-agent",
            "--hostname",
            "node-66",
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("no pxelab running"), "{said}");
    let text = http_lab::read(&lab.path);
    assert!(text.contains("52:54:00:00:00:66") && text.contains("node-66"));
    assert!(text.starts_with("# test lab"));

    let out = pxelab(&lab, &["nodes"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.contains("node-66"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("from lab.yaml"));

    let out = pxelab(&lab, &["adopt", "nonsense", "--role", "k3s-agent"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a MAC"));
}
