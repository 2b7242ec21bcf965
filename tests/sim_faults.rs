//! Fault injection: simulated nodes that stall or fail the ways real boards do, booted
//! against pxelab's real servers and watcher on loopback with test-short deadlines.
//! Each stall yields `node-stalled` with its hint within its deadline, each failure
//! class `node-failed` with its class and sentence; a healthy run yields neither.

use std::time::Duration;

use pxelab::engine::event::K3sFailure;
use pxelab::engine::{Event, EventKind, FetchKind, NodeState};
use pxelab::mac::Mac;
use pxelab::sim::{self, demo, Fault, Node, Outcome, Role};
use tokio_util::sync::CancellationToken;

struct Running {
    engine: pxelab::Engine,
    cancel: CancellationToken,
    events: tokio::sync::broadcast::Receiver<Event>,
    /// Every event received so far (nodes report in any order).
    seen: Vec<Event>,
    _dir: tempfile::TempDir,
}

/// A loopback lab of `n` nodes with the watcher on and short stage deadlines.
async fn start(n: usize, deadlines: &str) -> (Running, Vec<(Mac, std::net::Ipv4Addr)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = demo::plan(n + 1);
    plan.held = None;
    let ports = demo::DemoPorts::pick().unwrap();
    let tftp = demo::write_assets(dir.path()).unwrap();
    let text = demo::lab_yaml(&plan, &ports, &tftp);
    assert!(text.contains("ssh:\n  user: lab\n"));
    let text = text.replace(
        "ssh:\n  user: lab\n",
        &format!("ssh:\n  user: lab\n  deadlines: {deadlines}\n"),
    );
    let path = dir.path().join("lab.yaml");
    std::fs::write(&path, text).unwrap();
    let lab = pxelab::app::load_lab(&path).unwrap();
    let engine = pxelab::Engine::new(lab);
    let events = engine.subscribe();
    let mut starting = engine.subscribe();
    let cancel = CancellationToken::new();
    pxelab::app::start_servers(&engine, &cancel);
    let listeners = pxelab::app::listeners(&engine.lab());
    pxelab::app::wait_listening(&mut starting, &listeners, Duration::from_secs(20))
        .await
        .unwrap();
    let known = plan.known.iter().map(|k| (k.0, k.3)).collect();
    (
        Running {
            engine,
            cancel,
            events,
            seen: Vec::new(),
            _dir: dir,
        },
        known,
    )
}

/// Waits until `pred` holds for an event of `mac`, or panics with what was seen.
async fn expect(
    lab: &mut Running,
    mac: Mac,
    what: &str,
    within: Duration,
    pred: impl Fn(&EventKind) -> bool,
) -> Event {
    let deadline = tokio::time::Instant::now() + within;
    let mut from = 0;
    loop {
        if let Some(e) = lab.seen[from..]
            .iter()
            .find(|e| e.mac == Some(mac) && pred(&e.kind))
        {
            return e.clone();
        }
        from = lab.seen.len();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, lab.events.recv()).await {
            Ok(Ok(e)) => lab.seen.push(e),
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            _ => {
                let of: Vec<String> = lab
                    .seen
                    .iter()
                    .filter(|e| e.mac == Some(mac) && !matches!(e.kind, EventKind::LogLine { .. }))
                    .map(|e| e.kind.describe())
                    .collect();
                panic!("{mac}: no {what} within {within:?}; saw {of:#?}")
            }
        }
    }
}

fn stalled_with(kind: &EventKind, step: &str, hint: &str) -> bool {
    matches!(kind, EventKind::NodeStalled { stall } if stall.step == step && stall.hint.contains(hint))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stall_and_failure_class_is_reported_with_its_reason() {
    let classes = [
        K3sFailure::CertNotValid,
        K3sFailure::DiskFull,
        K3sFailure::OutOfMemory,
        K3sFailure::ApkFetch,
        K3sFailure::DuplicateHostname,
    ];
    let stalls = [Fault::StallAfterInitrd, Fault::NoSshd, Fault::K3sSilent];
    let faults: Vec<Fault> = stalls
        .iter()
        .copied()
        .chain([Fault::CloudActionFails])
        .chain(classes.iter().map(|c| Fault::Logs(*c)))
        .collect();
    let (mut lab, known) = start(
        faults.len(),
        "{nocloud: 3, ssh: 3, bootstrap: 20, k3s_start: 20, k3s_join: 3, ready: 60}",
    )
    .await;
    let nodes: Vec<Node> = known
        .iter()
        .zip(&faults)
        .map(|((mac, ip), f)| Node::new(*mac, *ip).role(Role::Agent).fault(*f))
        .collect();
    let sim = sim::Lab::for_lab(lab.engine.lab())
        .speed(20.0)
        .concurrency(16)
        .k3s_timeout(Duration::from_secs(30))
        .cancel_on(lab.cancel.clone());
    let results = tokio::time::timeout(Duration::from_secs(120), sim.run(nodes))
        .await
        .expect("simulated nodes did not finish");
    for r in &results {
        assert!(
            matches!(r.outcome, Outcome::ExpectedFailure { .. }),
            "{r:#?}"
        );
    }
    let mac_of = |f: Fault| known[faults.iter().position(|x| *x == f).unwrap()].0;
    let budget = Duration::from_secs(60);
    // Stalls: each with the hint for its step, once its 3 s deadline has passed.
    let ev = expect(
        &mut lab,
        mac_of(Fault::StallAfterInitrd),
        "initrd stall",
        budget,
        |k| stalled_with(k, "initrd", "no network in the initramfs"),
    )
    .await;
    let EventKind::NodeStalled { stall } = &ev.kind else {
        unreachable!()
    };
    assert!(stall.waited_s >= 3 && stall.waited_s < 10, "{stall:?}");
    assert!(stall.last_seen.contains("Initrd"), "{stall:?}");
    let port = lab.engine.lab().file.ssh.port;
    expect(
        &mut lab,
        mac_of(Fault::NoSshd),
        "no-sshd stall",
        budget,
        |k| {
            stalled_with(
                k,
                "config-fetched",
                &format!("SSH never answered on port {port}"),
            )
        },
    )
    .await;
    expect(
        &mut lab,
        mac_of(Fault::K3sSilent),
        "k3s silent stall",
        budget,
        |k| stalled_with(k, "k3s-starting", "went silent"),
    )
    .await;
    // A failed tiny-cloud action names the action.
    expect(&mut lab, mac_of(Fault::CloudActionFails), "cloud-failed", budget, |k| {
        matches!(k, EventKind::CloudFailed { summary, .. } if summary.contains("main/userdata_packages failed"))
    })
    .await;
    // Each failure class from the logs, with its sentence on the record and the row.
    for c in classes {
        let mac = mac_of(Fault::Logs(c));
        expect(
            &mut lab,
            mac,
            c.class(),
            budget,
            |k| matches!(k, EventKind::NodeFailed { reason, .. } if *reason == c),
        )
        .await;
        let rec = lab.engine.node(&mac).unwrap();
        assert_eq!(rec.state, NodeState::Failed);
        let row = lab
            .engine
            .snapshot()
            .nodes
            .into_iter()
            .find(|n| n.mac == mac)
            .unwrap();
        assert_eq!(row.failure_class.as_deref(), Some(c.class()));
        assert_eq!(row.failure_reason, rec.failure_reason.map(|w| w.summary));
    }
    lab.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_clears_when_the_node_moves_on() {
    let (mut lab, known) = start(1, "{nocloud: 1}").await;
    let (mac, _) = known[0];
    let fetch = |what, path: &str| EventKind::HttpFetch {
        path: path.into(),
        client: "127.0.0.1".parse().unwrap(),
        what,
        status: 200,
        bytes: 1,
        ms: 1,
    };
    lab.engine
        .emit(Some(mac), fetch(FetchKind::Script, "/boot.ipxe"));
    lab.engine
        .emit(Some(mac), fetch(FetchKind::Kernel, "/assets/vmlinuz-lts"));
    lab.engine
        .emit(Some(mac), fetch(FetchKind::Initrd, "/assets/initramfs-lts"));
    expect(&mut lab, mac, "stall", Duration::from_secs(5), |k| {
        stalled_with(k, "initrd", "initramfs")
    })
    .await;
    let row = |lab: &Running| {
        lab.engine
            .snapshot()
            .nodes
            .into_iter()
            .find(|n| n.mac == mac)
            .unwrap()
    };
    assert!(row(&lab)
        .stall
        .is_some_and(|s| s.contains("no network in the initramfs")));
    lab.engine.emit(
        Some(mac),
        fetch(FetchKind::MetaData, "/nocloud/x/meta-data"),
    );
    expect(&mut lab, mac, "stall-cleared", Duration::from_secs(5), |k| {
        matches!(k, EventKind::StallCleared { step, now } if step == "initrd" && now == "config-fetched")
    })
    .await;
    assert_eq!(row(&lab).stall, None);
    lab.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_fifty_node_run_raises_no_failure_and_no_stall() {
    let n = 50;
    let (mut lab, known) = start(
        n,
        // Short enough to fire in this run (it takes a few seconds at 50x) if a healthy
        // node were taken for a stalled one (at 1 s they do fire), long enough for a
        // loaded 2-core machine.
        "{nocloud: 4, ssh: 4, bootstrap: 4, k3s_start: 4, k3s_join: 8, ready: 8}",
    )
    .await;
    let nodes: Vec<Node> = known
        .iter()
        .enumerate()
        .map(|(i, (mac, ip))| {
            let n = Node::new(*mac, *ip).role(if i == 0 { Role::Server } else { Role::Agent });
            // One board short of memory: warned about, not failed.
            if i == 7 {
                n.fault(Fault::LowMemory)
            } else {
                n
            }
        })
        .collect();
    let sim = sim::Lab::for_lab(lab.engine.lab())
        .speed(50.0)
        .concurrency(25)
        .step_timeout(Duration::from_secs(20))
        .k3s_timeout(Duration::from_secs(60))
        .cancel_on(lab.cancel.clone());
    let results = tokio::time::timeout(Duration::from_secs(240), sim.run(nodes))
        .await
        .expect("50 nodes did not finish");
    for r in &results {
        assert_eq!(r.outcome, Outcome::Joined, "{r:#?}");
    }
    // The watcher follows every node to Ready (from the server's node list).
    for (mac, _) in &known {
        expect(&mut lab, *mac, "Ready", Duration::from_secs(120), |k| {
            matches!(
                k,
                EventKind::K3s {
                    step: pxelab::engine::event::K3sStep::Ready
                }
            )
        })
        .await;
    }
    let bad: Vec<String> = lab
        .seen
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::NodeFailed { .. } | EventKind::NodeStalled { .. }
            )
        })
        .map(|e| format!("{:?} {}", e.mac, e.kind.describe()))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    // Every node's memory and root gauge is read over SSH; the short one is warned about.
    // (5 % of it, rounded down.)
    for (what, pct) in [("memory", 4), ("root", 4)] {
        expect(&mut lab, known[7].0, "resources-low", Duration::from_secs(30), |k| {
            matches!(k, EventKind::ResourcesLow { what: w, free_pct, .. } if w == what && *free_pct == pct)
        })
        .await;
    }
    let low: Vec<_> = lab
        .seen
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ResourcesLow { .. }))
        .map(|e| e.mac)
        .collect();
    assert_eq!(
        low,
        vec![Some(known[7].0); 2],
        "once per kind, only the short node"
    );
    let g = lab
        .engine
        .node(&known[3].0)
        .unwrap()
        .resources
        .expect("gauge read");
    // The simulated board: 2 GB, 70 % available (69 % once rounded down).
    assert_eq!(g.mem_total_kb, 2_009_876);
    assert_eq!(g.mem_avail_kb * 100 / g.mem_total_kb, 69);
    assert_eq!(g.root_avail_kb * 100 / g.root_total_kb, 69);
    assert!(lab
        .engine
        .snapshot()
        .nodes
        .iter()
        .all(|n| n.state == NodeState::Ready));
    lab.cancel.cancel();
}
