//! One command surface: the console (its effects) and the admin API send the same
//! `Command` for adopt, forget, change and reboot, and both get the service's reply; a
//! real engine service on a temporary lab.yaml carries out what either face sends; and
//! the boot policy under `unknown: adopt` only queues the adoption (lab.yaml is untouched
//! until the service runs it, then written with its comments kept).

mod tui_support;

use std::time::{Duration, Instant};

use pxelab::engine::service::{self, CommandQueue, Commands, NoControl, Pending};
use pxelab::engine::{BootDecision, Command, CommandError, Reply};
use pxelab::http::client;
use pxelab::tui::app::{Effect, Level};
use pxelab::tui::effects::perform;
use pxelab::Mac;
use tokio_util::sync::CancellationToken;
use tui_support::{TestLab, HELD, LAB_HEAD, NODES};

/// The admin token of the API each test serves.
const TOKEN: &str = "command-surface-test-token";
/// A known node of the test lab (hostname node-1).
const NODE1: &str = "a0:1a:2c:c3:d4:e1";

/// Serves the admin API of `lab`'s engine on a free loopback port; returns the port.
fn serve_admin(lab: &TestLab) -> u16 {
    let router =
        pxelab::http::admin::router(lab.engine.clone(), CancellationToken::new(), TOKEN.into());
    let listener = lab
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    lab.rt
        .spawn(async move { axum::serve(listener, router).await });
    port
}

/// One API request, waited for.
fn api(lab: &TestLab, port: u16, path: &str, body: Option<serde_json::Value>) -> client::Reply {
    let body = body.map(|b| b.to_string());
    lab.rt
        .block_on(client::request(
            port,
            "POST",
            path,
            body.as_deref(),
            Some(TOKEN),
        ))
        .unwrap()
}

/// The console carrying out `fx`: the job it returns, run as the run loop does.
fn console(lab: &TestLab, fx: Effect) -> (Level, String) {
    let (mut app, _) = lab.app("dark");
    let job = perform(&lab.engine, &mut app, fx).expect("a command runs as a job");
    job()
}

/// The next command on a recording queue (at most 5 s).
fn next(lab: &TestLab, queue: &mut CommandQueue) -> Pending {
    lab.rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), queue.recv()).await })
        .expect("a command within 5 s")
        .expect("the queue is open")
}

/// What a service would answer `c`, made from the lab's own entries.
fn reply_for(lab: &TestLab, c: &Command) -> Reply {
    let node = |mac: Mac, hostname: &str| {
        let mut n = lab
            .engine
            .lab()
            .node_by_mac(&TestLab::mac(NODE1))
            .cloned()
            .unwrap();
        n.mac = mac;
        n.hostname = hostname.to_string();
        Reply::Node(n)
    };
    match c {
        Command::Adopt { mac, .. } => node(*mac, "from-the-service"),
        Command::Change { mac, .. } => node(*mac, "changed-by-the-service"),
        Command::Forget { mac } => Reply::Forgotten(*mac),
        Command::Reboot { mac } => Reply::Rebooting {
            mac: *mac,
            addr: "10.0.0.11:22".into(),
        },
        other => panic!("not a face command here: {other:?}"),
    }
}

#[test]
fn console_and_api_send_the_same_command_and_pass_on_the_same_reply() {
    let lab = TestLab::new(&format!("{LAB_HEAD}{NODES}"));
    let port = serve_admin(&lab);
    let (commands, mut queue) = Commands::channel();
    lab.engine.attach_commands(commands);
    let (held, node1) = (TestLab::mac(HELD), TestLab::mac(NODE1));
    let cases = [
        (
            Effect::Adopt {
                mac: held,
                role: "k3s-agent".into(),
                hostname: "web-1".into(),
                ip: Some("10.0.0.50".parse().unwrap()),
            },
            "/api/adopt".to_string(),
            Some(
                serde_json::json!({"mac": HELD, "role": "k3s-agent", "hostname": "web-1", "ip": "10.0.0.50"}),
            ),
            "from-the-service",
        ),
        (
            Effect::Forget(node1),
            "/api/forget".to_string(),
            Some(serde_json::json!({ "mac": NODE1 })),
            NODE1,
        ),
        (
            Effect::Change {
                mac: node1,
                role: "k3s-server".into(),
                hostname: "node-x".into(),
            },
            "/api/change".to_string(),
            Some(serde_json::json!({"mac": NODE1, "role": "k3s-server", "hostname": "node-x"})),
            "changed-by-the-service",
        ),
        // The API names the node by hostname; it reaches the same MAC.
        (
            Effect::Reboot(node1),
            "/api/nodes/node-1/reboot".to_string(),
            None,
            "10.0.0.11:22",
        ),
    ];
    for (fx, path, body, said) in cases {
        let (mut app, _) = lab.app("dark");
        let job = perform(&lab.engine, &mut app, fx).expect("a command runs as a job");
        let waiting = std::thread::spawn(job);
        let from_console = next(&lab, &mut queue);
        let sent = from_console.command.clone();
        from_console.answer(Ok(reply_for(&lab, &sent)));
        let (level, flash) = waiting.join().unwrap();
        assert_eq!(level, Level::Info, "{path}: {flash}");
        assert!(flash.contains(said), "{path}: the console says {flash:?}");

        let (p2, b2) = (path.clone(), body.clone().map(|b| b.to_string()));
        let request = lab.rt.spawn(async move {
            client::request(port, "POST", &p2, b2.as_deref(), Some(TOKEN)).await
        });
        let from_api = next(&lab, &mut queue);
        assert_eq!(
            from_api.command, sent,
            "{path}: the API sent another command"
        );
        from_api.answer(Ok(reply_for(&lab, &sent)));
        let got = lab.rt.block_on(request).unwrap().unwrap();
        assert_eq!(got.status, 200, "{path}: {}", got.body);
        assert!(got.body.contains(said), "{path}: the API says {}", got.body);
    }
    // A refusal reaches both faces as the same words.
    let job = {
        let (mut app, _) = lab.app("dark");
        perform(&lab.engine, &mut app, Effect::Forget(held)).unwrap()
    };
    let waiting = std::thread::spawn(job);
    let refusal = || CommandError::NotSupported {
        what: "forgetting in this test".into(),
    };
    next(&lab, &mut queue).answer(Err(refusal()));
    let (level, flash) = waiting.join().unwrap();
    let request = lab.rt.spawn(async move {
        let body = serde_json::json!({ "mac": HELD }).to_string();
        client::request(port, "POST", "/api/forget", Some(&body), Some(TOKEN)).await
    });
    next(&lab, &mut queue).answer(Err(refusal()));
    let got = lab.rt.block_on(request).unwrap().unwrap();
    assert_eq!(level, Level::Error);
    assert!(flash.contains(&refusal().to_string()), "{flash}");
    assert_eq!(got.status, 501, "{}", got.body);
    assert_eq!(got.error_message(), refusal().to_string());
    assert!(queue.try_recv().is_none(), "one command per request");
}

#[test]
fn a_real_service_carries_out_what_either_face_sends() {
    let lab = TestLab::new(&format!("{LAB_HEAD}{NODES}"));
    let port = serve_admin(&lab);
    let read = || std::fs::read_to_string(&lab.path).unwrap();
    let held = TestLab::mac(HELD);

    // The console adopts: lab.yaml gains the node, comments kept.
    let (level, flash) = console(
        &lab,
        Effect::Adopt {
            mac: held,
            role: "k3s-agent".into(),
            hostname: "web-1".into(),
            ip: None,
        },
    );
    assert_eq!(level, Level::Info, "{flash}");
    let text = read();
    assert!(text.contains("hostname: web-1"), "{text}");
    assert!(text.contains("# the control plane"), "{text}");
    assert!(text.contains("# pxelab test lab"), "{text}");

    // The API changes it: the same lab, the same service.
    let got = api(
        &lab,
        port,
        "/api/change",
        Some(serde_json::json!({"mac": HELD, "hostname": "web-2"})),
    );
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(read().contains("hostname: web-2") && !read().contains("web-1"));
    assert_eq!(
        lab.engine.lab().node_by_mac(&held).unwrap().hostname,
        "web-2"
    );

    // The API forgets it; the console then refuses as the API does.
    let got = api(
        &lab,
        port,
        "/api/forget",
        Some(serde_json::json!({ "mac": HELD })),
    );
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(!read().contains("web-2"));
    let (level, flash) = console(&lab, Effect::Forget(held));
    let again = api(
        &lab,
        port,
        "/api/forget",
        Some(serde_json::json!({ "mac": HELD })),
    );
    assert_eq!(level, Level::Error);
    assert_eq!(again.status, 404, "{}", again.body);
    assert!(flash.contains(&again.error_message()), "{flash}");

    // Reboot: no way to reach machines in this test, and both faces say so alike.
    let (level, flash) = console(&lab, Effect::Reboot(TestLab::mac(NODE1)));
    let got = api(&lab, port, "/api/nodes/node-1/reboot", None);
    assert_eq!(level, Level::Error);
    assert_eq!(got.status, 502, "{}", got.body);
    assert!(
        flash.contains(&got.error_message()),
        "{flash} vs {}",
        got.body
    );
    assert_eq!(
        api(&lab, port, "/api/nodes/no-such-node/reboot", None).status,
        404
    );

    // Reload: an operator's edit is in force once the API says so.
    let edited = read().replace(
        "nodes:\n",
        "nodes:\n  # added by hand\n  - {mac: 52:54:00:99:99:99, hostname: by-hand, role: k3s-agent}\n",
    );
    std::fs::write(&lab.path, edited).unwrap();
    let got = api(&lab, port, "/api/reload", None);
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(lab.engine.lab().node_by_hostname("by-hand").is_some());
}

#[test]
fn decide_under_adopt_queues_the_adoption_and_writes_nothing_itself() {
    let text =
        format!("{LAB_HEAD}{NODES}").replace("unknown: hold\n", "unknown: {adopt: k3s-agent}\n");
    let lab = TestLab::new(&text);
    let before = std::fs::read(&lab.path).unwrap();
    // A queue nobody reads yet: whatever decide() does, it cannot be the service's work.
    let (commands, queue) = Commands::channel();
    lab.engine.attach_commands(commands);
    let mut rx = lab.engine.subscribe();
    let held = TestLab::mac(HELD);
    for _ in 0..3 {
        assert_eq!(lab.engine.decide(held), BootDecision::Hold);
    }
    assert_eq!(
        std::fs::read(&lab.path).unwrap(),
        before,
        "decide() wrote lab.yaml"
    );
    assert!(lab.engine.lab().node_by_mac(&held).is_none());

    // Now the service runs: the queued adoption (one, for three asks) is written.
    let cancel = CancellationToken::new();
    lab.rt.spawn(service::run(
        lab.engine.clone(),
        queue,
        cancel.clone(),
        std::sync::Arc::new(NoControl),
    ));
    let start = Instant::now();
    while lab.engine.lab().node_by_mac(&held).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the queued adoption did not land"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cancel.cancel();
    let after = std::fs::read_to_string(&lab.path).unwrap();
    assert!(after.contains(&HELD.to_string()), "{after}");
    assert!(after.contains("# pxelab test lab") && after.contains("# the control plane"));
    match lab.engine.decide(held) {
        BootDecision::Boot(n) => assert_eq!(n.role, "k3s-agent"),
        other => panic!("an adopted machine boots, got {other:?}"),
    }
    let mut adopted = 0;
    while let Ok(ev) = rx.try_recv() {
        adopted += usize::from(matches!(
            ev.kind,
            pxelab::engine::EventKind::NodeAdopted { .. }
        ));
    }
    assert_eq!(adopted, 1, "one adoption for three asks");
}

/// Runs the pxelab binary on `lab`.
fn cli(lab: &TestLab, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pxelab"))
        .args(args)
        .arg("-c")
        .arg(&lab.path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn the_cli_sends_forget_reboot_and_reload_through_the_running_instance() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text =
        format!("{LAB_HEAD}{NODES}").replace("admin_port: 17480", &format!("admin_port: {port}"));
    let lab = TestLab::new(&text);
    let mut rx = lab.engine.subscribe();
    let cancel = CancellationToken::new();
    let plan = lab.engine.lab().plan().unwrap().admin;
    lab.rt.spawn(pxelab::http::admin::serve(
        lab.engine.clone(),
        plan,
        cancel.clone(),
    ));
    lab.rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !matches!(
                rx.recv().await.unwrap().kind,
                pxelab::engine::EventKind::ServerUp { .. }
            ) {}
        })
        .await
        .expect("the admin API is up within 10 s")
    });

    let (ok, said) = cli(&lab, &["forget", NODE1]);
    assert!(ok, "{said}");
    assert!(said.contains("forgot") && said.contains(NODE1), "{said}");
    assert!(!std::fs::read_to_string(&lab.path).unwrap().contains(NODE1));
    let (ok, said) = cli(&lab, &["reboot", "node-2"]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("refused") && said.contains("reboot of"),
        "{said}"
    );
    let (ok, said) = cli(&lab, &["reload"]);
    assert!(
        ok && said.contains(&lab.path.display().to_string()),
        "{said}"
    );
    let (ok, said) = cli(&lab, &["reboot", "../api/reload"]);
    assert!(
        !ok && said.contains("not a MAC address or hostname"),
        "{said}"
    );

    // No instance: forget edits lab.yaml itself; reboot and reload need one.
    cancel.cancel();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "admin API still up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, said) = cli(&lab, &["reload"]);
    assert!(!ok && said.contains("no pxelab is running"), "{said}");
    let (ok, said) = cli(&lab, &["forget", "a0:1a:2c:c3:d4:e2"]);
    assert!(ok && said.contains("edited"), "{said}");
    assert!(!std::fs::read_to_string(&lab.path)
        .unwrap()
        .contains("a0:1a:2c:c3:d4:e2"));
}
