//! `pxelab demo --no-tui --json` as the real binary: it starts, writes JSON lines only on
//! stdout, stops at --duration and cleans up its temporary lab; `--until-done` cut short
//! by --duration is a failure.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_json_lines_parse_and_duration_ends_it() {
    let start = Instant::now();
    let out = Command::new(common::pxelab_bin())
        .args([
            "demo",
            "--no-tui",
            "--json",
            "--duration",
            "3",
            "--speed",
            "10",
            "--nodes",
            "4",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}");
    // Bounded: --duration ends it (generous margin for shutdown on a loaded machine).
    assert!(start.elapsed() < Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(events.iter().all(|e| e["event"].is_string()));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "config-loaded" && e["nodes"] == 3),
        "{stdout}"
    );
    // The temporary lab is gone after the run.
    let lab = stderr
        .split_whitespace()
        .find(|w| w.ends_with("/lab.yaml"))
        .expect("demo names its lab.yaml on stderr");
    assert!(!std::path::Path::new(lab).exists(), "{lab} left behind");
}

#[test]
fn until_done_cut_short_by_duration_fails_and_names_each_state() {
    // One second at normal speed: no machine can be Ready yet.
    let out = Command::new(common::pxelab_bin())
        .args([
            "demo",
            "--no-tui",
            "--until-done",
            "--duration",
            "1",
            "--nodes",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the demo stopped before every machine was Ready or failed: node-0 "),
        "{stderr}"
    );
}
