//! The loopback admin API driven by the real `curl`: nodes, one node, adoption (lab.yaml
//! gains the node, comments kept), errors as JSON with 4xx, the Host check, the bearer
//! token (a request without it or with a wrong one is refused), broadcast MACs refused,
//! and the Server-Sent Events stream.

mod common;
mod http_lab;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use http_lab::{curl, Server, TempLab, NODE1};

fn server() -> Option<Server> {
    if !common::require_program("curl") {
        return None;
    }
    Some(Server::start(TempLab::new(), true))
}

fn json(g: &http_lab::Got) -> serde_json::Value {
    serde_json::from_slice(&g.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", g.text()))
}

/// `Authorization: Bearer <token>` with the token the running admin API wrote.
fn auth(s: &Server) -> String {
    format!("Authorization: Bearer {}", s.lab.admin_token())
}

/// curl to the admin API with the token.
fn acurl(s: &Server, path: &str, args: &[&str]) -> http_lab::Got {
    let a = auth(s);
    let mut all = vec!["-H", a.as_str()];
    all.extend_from_slice(args);
    curl(&format!("{}{path}", s.lab.admin()), &all)
}

fn post(s: &Server, path: &str, body: &str) -> http_lab::Got {
    acurl(
        s,
        path,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ],
    )
}

#[test]
fn nodes_and_one_node() {
    let Some(s) = server() else { return };
    let g = acurl(&s, "/api/lab", &[]);
    assert_eq!(g.status, 200);
    let v = json(&g);
    assert_eq!(v["name"], "httptest");
    assert_eq!(
        v["path"].as_str().unwrap(),
        s.engine.lab().path.to_str().unwrap()
    );

    let g = acurl(&s, "/api/nodes", &[]);
    assert_eq!(g.status, 200);
    assert_eq!(
        g.header("content-type").as_deref(),
        Some("application/json")
    );
    let v = json(&g);
    assert_eq!(v["lab_name"], "httptest");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["hostname"], "node-1");
    assert_eq!(nodes[0]["state"], "idle");

    // A boot script fetched shows up in the node's record.
    assert_eq!(
        curl(&format!("{}/boot.ipxe?mac={NODE1}", s.lab.base()), &[]).status,
        200
    );
    for key in ["node-1", NODE1, "52-54-00-00-00-01"] {
        let g = acurl(&s, &format!("/api/nodes/{key}"), &[]);
        assert_eq!(g.status, 200, "{key}");
        let v = json(&g);
        assert_eq!(v["mac"], NODE1);
        assert_eq!(v["state"], "script-served");
        assert!(!v["timeline"].as_array().unwrap().is_empty());
    }
    let g = acurl(&s, "/api/nodes/nope", &[]);
    assert_eq!(g.status, 404);
    assert!(json(&g)["error"].as_str().unwrap().contains("nope"));
    let g = acurl(&s, "/api/nothing", &[]);
    assert_eq!(g.status, 404);
    assert!(json(&g)["error"].is_string());
}

#[test]
fn adopt_writes_lab_yaml_and_errors_are_json() {
    let Some(s) = server() else { return };
    let g = post(
        &s,
        "/api/adopt",
        r#"{"mac":"52-54-00-00-00-33","role":"k3s-agent","hostname":"node-33"}"#,
    );
    assert_eq!(g.status, 200, "{}", g.text());
    let v = json(&g);
    assert_eq!(
        (
            v["mac"].as_str(),
            v["hostname"].as_str(),
            v["role"].as_str()
        ),
        (
            Some("52:54:00:00:00:33"),
            Some("node-33"),
            Some("k3s-agent")
        )
    );
    let text = http_lab::read(&s.lab.path);
    assert!(text.contains("52:54:00:00:00:33") && text.contains("node-33"));
    assert!(text.starts_with("# test lab"), "comments kept");
    assert!(s
        .engine
        .lab()
        .node_by_mac(&"52:54:00:00:00:33".parse().unwrap())
        .is_some());
    // It now boots.
    let g = curl(
        &format!("{}/boot.ipxe?mac=52:54:00:00:00:33", s.lab.base()),
        &[],
    );
    assert!(g.text().contains("/assets/vmlinuz-lts"));

    // Without a hostname: one is suggested.
    let g = post(
        &s,
        "/api/adopt",
        r#"{"mac":"52:54:00:00:00:34","role":"k3s-agent"}"#,
    );
    assert_eq!(g.status, 200, "{}", g.text());
    assert!(!json(&g)["hostname"].as_str().unwrap().is_empty());

    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "/api/adopt",
            r#"{"mac":"52:54:00:00:00:35","role":"k3s-banana"}"#,
            400,
            "unknown role",
        ),
        (
            "/api/adopt",
            r#"{"mac":"52:54:00:00:00:33","role":"k3s-agent"}"#,
            409,
            "already",
        ),
        (
            "/api/adopt",
            r#"{"mac":"52:54:00:zz","role":"k3s-agent"}"#,
            400,
            "not a MAC",
        ),
        ("/api/adopt", r#"{"mac": "#, 400, ""),
        (
            "/api/adopt",
            r#"{"mac":"52:54:00:00:00:36","role":"k3s-agent","colour":"red"}"#,
            400,
            "colour",
        ),
        (
            "/api/forget",
            r#"{"mac":"52:54:00:00:00:99"}"#,
            404,
            "not in the lab",
        ),
        (
            "/api/change",
            r#"{"mac":"52:54:00:00:00:01"}"#,
            400,
            "nothing",
        ),
        (
            "/api/change",
            r#"{"mac":"52:54:00:00:00:99","role":"k3s-agent"}"#,
            404,
            "not in the lab",
        ),
    ];
    for (path, body, status, words) in cases {
        let g = post(&s, path, body);
        assert_eq!(g.status, *status, "{path} {body}: {}", g.text());
        let v = json(&g);
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(words), "{path} {body}: {msg}");
        assert_eq!(v["status"], *status);
    }
    // Not JSON at all (no content type): refused, lab.yaml untouched.
    let before = http_lab::read(&s.lab.path);
    let g = acurl(
        &s,
        "/api/adopt",
        &["-X", "POST", "-d", "mac=52:54:00:00:00:37&role=k3s-agent"],
    );
    assert_eq!(g.status, 400);
    assert_eq!(http_lab::read(&s.lab.path), before);
}

#[test]
fn requests_for_other_host_names_are_refused() {
    let Some(s) = server() else { return };
    let g = acurl(&s, "/api/nodes", &["-H", "Host: attacker.example"]);
    assert_eq!(g.status, 403);
    assert!(json(&g)["error"].as_str().unwrap().contains("127.0.0.1"));
    let g = acurl(&s, "/api/nodes", &["-H", "Host: localhost"]);
    assert_eq!(g.status, 200);
}

#[test]
fn admin_listens_on_loopback_only() {
    if !common::require_program("ss") {
        return;
    }
    // Read the port after start: a start that could not bind retries on new ports.
    let s = Server::start(TempLab::new(), true);
    let port = s.lab.admin_port;
    let out = common::sh("ss", &["-Hltn"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    let ours: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(&format!(":{port} ")))
        .collect();
    assert!(!ours.is_empty(), "admin port not listed:\n{listing}");
    for l in ours {
        assert!(l.contains(&format!("127.0.0.1:{port}")), "{l}");
    }
}

#[test]
fn server_sent_events_carry_the_bus() {
    let Some(s) = server() else { return };
    let mut child = common::ChildGuard(
        Command::new("curl")
            .args(["-sN", "--max-time", "30", "-H", &auth(&s)])
            .arg(format!("{}/api/events", s.lab.admin()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Until the stream is attached, events go unseen: poke until one arrives (bounded).
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got_fetch = false;
    while !got_fetch && Instant::now() < deadline {
        curl(&format!("{}/boot.ipxe?mac={NODE1}", s.lab.base()), &[]);
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(300)) {
            got_fetch |= l == "event: http-fetch";
            seen.push(l);
        }
    }
    assert!(got_fetch, "no http-fetch frame; got {seen:?}");
    let data: Vec<serde_json::Value> = seen
        .iter()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let fetch = data.iter().find(|v| v["event"] == "http-fetch").unwrap();
    assert_eq!(fetch["mac"], NODE1);
    assert_eq!(fetch["hostname"], "node-1");
    assert_eq!(fetch["what"], "script");
    assert!(seen.iter().any(|l| l.starts_with("id: ")));

    // An adoption through the API appears on the stream as well.
    let g = post(
        &s,
        "/api/adopt",
        r#"{"mac":"52:54:00:00:00:55","role":"k3s-agent","hostname":"node-55"}"#,
    );
    assert_eq!(g.status, 200, "{}", g.text());
    let adopted = common::wait_for(Duration::from_secs(10), Duration::from_millis(1), || {
        let l = rx.recv_timeout(Duration::from_millis(100)).ok()?;
        let v: serde_json::Value = serde_json::from_str(l.strip_prefix("data: ")?).ok()?;
        (v["event"] == "node-adopted").then_some(v)
    })
    .expect("node-adopted on the SSE stream");
    assert_eq!(adopted["mac"], "52:54:00:00:00:55");
    assert_eq!(adopted["hostname"], "node-55");
}

#[test]
fn requests_without_the_token_or_with_a_wrong_one_are_refused() {
    let Some(s) = server() else { return };
    let mut rx = s.engine.subscribe();
    let token_file = s.lab.dir.path().join(".pxelab/admin-token");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let token = s.lab.admin_token();
    let before = http_lab::read(&s.lab.path);
    for (what, args) in [
        ("no token", vec![]),
        (
            "wrong token",
            vec!["-H", "Authorization: Bearer 0123456789abcdef"],
        ),
        (
            "not bearer",
            vec!["-H", "Authorization: Basic YWRtaW46YWRtaW4="],
        ),
    ] {
        for path in ["/api/lab", "/api/nodes", "/api/events"] {
            let mut a = vec!["--max-time", "5"];
            a.extend_from_slice(&args);
            let g = curl(&format!("{}{path}", s.lab.admin()), &a);
            assert_eq!(g.status, 401, "{what} {path}: {}", g.text());
            let v = json(&g);
            assert!(v["error"].as_str().unwrap().contains("admin-token"), "{v}");
            assert!(!g.text().contains(&token), "the token leaked in a refusal");
        }
        let mut a = vec![
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"mac":"52:54:00:00:00:66","role":"k3s-agent"}"#,
        ];
        a.extend_from_slice(&args);
        let g = curl(&format!("{}/api/adopt", s.lab.admin()), &a);
        assert_eq!(g.status, 401, "{what} adopt: {}", g.text());
    }
    assert_eq!(http_lab::read(&s.lab.path), before, "lab.yaml changed");
    // Each refusal is an event, and none carries the token.
    let refused = http_lab::next_event(&mut rx, |k| {
        matches!(
            k,
            pxelab::engine::EventKind::Refused {
                source: pxelab::engine::Source::Admin,
                ..
            }
        )
    })
    .expect("a refused event for the admin API");
    assert!(!format!("{refused:?}").contains(&token));
    // With it: fine.
    assert_eq!(acurl(&s, "/api/nodes", &[]).status, 200);
}

#[test]
fn broadcast_and_multicast_macs_cannot_be_adopted() {
    let Some(s) = server() else { return };
    let before = http_lab::read(&s.lab.path);
    for mac in [
        "ff:ff:ff:ff:ff:ff",
        "01:00:5e:00:00:fb",
        "33:33:00:00:00:01",
    ] {
        let g = post(
            &s,
            "/api/adopt",
            &format!(r#"{{"mac":"{mac}","role":"k3s-agent"}}"#),
        );
        assert_eq!(g.status, 400, "{mac}: {}", g.text());
        assert!(json(&g)["error"]
            .as_str()
            .unwrap()
            .contains("broadcast or multicast"));
    }
    assert_eq!(http_lab::read(&s.lab.path), before);
}

/// Power and roll through the API: a node's `cmd` driver runs in the lab's folder with
/// its placeholders filled in; a failing command answers 502 with its status and stderr
/// but never the command line; the default `wol` without `interface:` says what is
/// missing; a roll with no Ready node is 409; a stop with none under way says so.
#[test]
fn power_and_roll_go_through_the_command_surface() {
    let Some(s) = server() else { return };
    let text = std::fs::read_to_string(&s.lab.path).unwrap();
    let text = text.replace(
        "    kernel: vmlinuz-special\n",
        "    kernel: vmlinuz-special\n    power:\n      cmd:\n        on: \"echo on {hostname} {mac} > power-{hostname}.txt; echo plug answered\"\n        off: \"echo relay stuck >&2; exit 4\"\n        timeout: 10s\n",
    );
    std::fs::write(&s.lab.path, text).unwrap();
    let g = post(&s, "/api/reload", "{}");
    assert_eq!(
        (g.status, json(&g)["reloaded"].as_bool()),
        (200, Some(true)),
        "{}",
        g.text()
    );

    let g = post(&s, "/api/nodes/node-2/power", r#"{"action":"on"}"#);
    assert_eq!(g.status, 200, "{}", g.text());
    let v = json(&g);
    assert_eq!(v["action"], "on");
    assert_eq!(v["detail"], "power.cmd.on done: plug answered");
    let wrote = std::fs::read_to_string(s.lab.dir.path().join("power-node-2.txt")).unwrap();
    assert_eq!(wrote.trim(), "on node-2 52:54:00:00:00:02");

    let g = post(&s, "/api/nodes/node-2/power", r#"{"action":"off"}"#);
    assert_eq!(g.status, 502, "{}", g.text());
    let err = json(&g)["error"].as_str().unwrap().to_string();
    assert!(err.contains("exited with status 4: relay stuck"), "{err}");
    assert!(!err.contains("echo"), "the command line leaked: {err}");

    let g = post(&s, "/api/nodes/node-1/power", r#"{"action":"on"}"#);
    assert_eq!(g.status, 502, "{}", g.text());
    assert!(
        json(&g)["error"].as_str().unwrap().contains("`interface:`"),
        "{}",
        g.text()
    );
    assert_eq!(
        post(&s, "/api/nodes/node-9/power", r#"{"action":"on"}"#).status,
        404
    );
    assert_eq!(
        post(&s, "/api/nodes/node-2/power", r#"{"action":"sideways"}"#).status,
        400
    );

    // The power actions are on the node's timeline.
    let g = acurl(&s, "/api/nodes/node-2", &[]);
    let timeline = json(&g)["timeline"].to_string();
    assert!(
        timeline.contains("power on (cmd) done: power.cmd.on done: plug answered"),
        "{timeline}"
    );
    assert!(timeline.contains("power off (cmd) failed"), "{timeline}");

    let g = post(&s, "/api/roll", "{}");
    assert_eq!(g.status, 409, "{}", g.text());
    assert!(
        json(&g)["error"]
            .as_str()
            .unwrap()
            .contains("no node is Ready"),
        "{}",
        g.text()
    );
    let g = post(&s, "/api/roll/stop", "{}");
    assert_eq!(
        (g.status, json(&g)["stopped"].as_bool()),
        (200, Some(false))
    );
}
