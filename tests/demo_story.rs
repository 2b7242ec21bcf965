//! The whole demo story from the real binary's JSON lines: every known node reaches
//! Ready except the one with a wrong token, which fails with `token CA hash does not
//! match`; the unknown machine is held, then adopted (headless: automatically), then
//! boots to Ready too.

mod common;

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

#[test]
fn demo_tells_the_whole_story_headless() {
    let out = Command::new(common::pxelab_bin())
        .args([
            "demo",
            "--no-tui",
            "--json",
            // Ends when every machine is Ready or failed; the duration only bounds it
            // (and not finishing within it fails the run).
            "--until-done",
            "--duration",
            "180",
            "--speed",
            "10",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let story = || {
        events
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let of = |mac: &str, f: &dyn Fn(&Value) -> bool| -> Vec<(usize, Value)> {
        events
            .iter()
            .enumerate()
            .filter(|(_, e)| e["mac"] == mac && f(e))
            .map(|(i, e)| (i, e.clone()))
            .collect()
    };
    let ready = |e: &Value| e["event"] == "k3s" && e["step"] == "ready";
    // Seven machines as in the seed lab: 52:54:00:5e:00:00 .. :06; :06 is unknown.
    let macs: Vec<String> = (0..7).map(|i| format!("52:54:00:5e:00:{i:02x}")).collect();
    let mut failed_by_token = 0;
    let mut hostnames = HashMap::new();
    for mac in &macs[..6] {
        for step in ["dhcp-reply", "http-fetch", "ssh-up", "tiny-cloud-complete"] {
            assert!(
                !of(mac, &|e| e["event"] == step).is_empty(),
                "{mac}: no {step}\n{}",
                story()
            );
        }
        let token_fail = of(mac, &|e| {
            e["event"] == "node-failed" && e["reason"] == "token-mismatch"
        });
        if token_fail.is_empty() {
            assert!(
                !of(mac, &ready).is_empty(),
                "{mac} never Ready\n{}",
                story()
            );
        } else {
            failed_by_token += 1;
            let line = token_fail[0].1["line"].as_str().unwrap_or("");
            assert!(line.contains("token CA hash does not match"), "{line}");
            assert!(of(mac, &ready).is_empty());
        }
        if let Some((_, e)) = of(mac, &|e| e["hostname"].is_string()).first() {
            hostnames.insert(
                mac.clone(),
                e["hostname"].as_str().unwrap_or("").to_string(),
            );
        }
    }
    assert_eq!(
        failed_by_token,
        1,
        "exactly one node fails by design\n{}",
        story()
    );
    // The unknown machine: held, then adopted, then Ready.
    let held = &macs[6];
    let first_held = of(held, &|e| e["event"] == "node-held");
    let adopted = of(held, &|e| e["event"] == "node-adopted");
    let held_ready = of(held, &ready);
    assert!(!first_held.is_empty(), "never held\n{}", story());
    assert_eq!(adopted.len(), 1, "{}", story());
    assert!(first_held[0].0 < adopted[0].0);
    assert!(
        !held_ready.is_empty(),
        "adopted node never Ready\n{}",
        story()
    );
    assert!(adopted[0].0 < held_ready[0].0);
    assert!(
        stderr.contains("auto-adopting held machine 52:54:00:5e:00:06"),
        "{stderr}"
    );
    // No secret ever reaches the event stream.
    assert!(!stdout.contains("PRIVATE KEY"));
}
