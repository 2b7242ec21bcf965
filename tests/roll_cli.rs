//! `pxelab roll` as an operator runs it, against `pxelab demo` (the real binary, its
//! simulated nodes on loopback really rebooting): without a terminal and without
//! `--yes` it will not reboot the k3s server; with `--yes` it follows the roll's events
//! through the admin API to the end, the agents one by one and the server last, and
//! exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::ChildGuard;

fn pxelab(lab: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let bin = common::pxelab_bin();
    let out = Command::new("timeout")
        .arg("180")
        .arg(bin)
        .arg("-c")
        .arg(lab)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("pxelab");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn roll_from_the_command_line_follows_the_demo_lab_to_the_end() {
    if !common::require_program("timeout") {
        return;
    }
    let mut demo = Command::new(common::pxelab_bin())
        .args([
            "demo",
            "--no-tui",
            "--speed",
            "20",
            "--nodes",
            "3",
            "--duration",
            "300",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pxelab demo");
    let err = demo.stderr.take().unwrap();
    let _demo = ChildGuard(demo);
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let lab: PathBuf = common::wait_for(Duration::from_secs(30), Duration::from_millis(10), || {
        let l = lines.try_recv().ok()?;
        let rest = l.strip_prefix("pxelab demo: lab ")?;
        Some(PathBuf::from(rest.split(" with ").next()?))
    })
    .expect("the demo did not name its lab");

    // Every machine (node-0, node-1 and the held one, adopted by the demo) Ready.
    let ready = common::wait_for(Duration::from_secs(120), Duration::from_millis(500), || {
        let (code, out, _) = pxelab(&lab, &["nodes", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out)
            .ok()
            .filter(|_| code == Some(0))?;
        let nodes = v["nodes"].as_array()?;
        (nodes.len() == 3 && nodes.iter().all(|n| n["state"] == "ready")).then_some(())
    });
    assert!(
        ready.is_some(),
        "the demo lab never got Ready: {:?}",
        pxelab(&lab, &["nodes"])
    );

    // No terminal, no --yes: the server is not rebooted, and nothing is.
    let (code, _, err) = pxelab(&lab, &["roll"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("not confirmed") && err.contains("node-0"),
        "{err}"
    );

    let (code, out, err) = pxelab(&lab, &["roll", "--yes", "--node-timeout", "60"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let steps: Vec<&str> = out.lines().collect();
    assert_eq!(
        steps
            .first()
            .map(|s| s.starts_with("rolling reboot of 3 node(s): ")),
        Some(true),
        "{out}"
    );
    assert!(
        steps.first().unwrap().ends_with(", node-0"),
        "server last: {out}"
    );
    for n in 1..=3 {
        assert!(
            out.contains(&format!("rolling reboot {n}/3: rebooting")),
            "{out}"
        );
    }
    assert!(
        out.contains("node-0: rolling reboot 3/3: rebooting"),
        "{out}"
    );
    assert_eq!(
        steps
            .iter()
            .filter(|s| s.contains("Ready again after"))
            .count(),
        3,
        "{out}"
    );
    assert!(
        steps
            .last()
            .unwrap()
            .starts_with("rolling reboot done: 3 node(s) rebooted and Ready again in"),
        "{out}"
    );
}
