//! The rolling reboot against simulated nodes on pxelab's real servers (loopback, no
//! root): the nodes really reboot (their sshd runs `reboot`, k3s leaves the cluster,
//! the firmware boots again over DHCP/TFTP/HTTP), and the simulated cluster records
//! when each node was down, so "never two agents down at once" is checked on the
//! nodes' side, not on the roll's own say-so.

use std::time::{Duration, Instant};

use pxelab::engine::roll::{RollOptions, RollStep, ServerTurn};
use pxelab::engine::{Command, CommandError, Event, EventKind, NodeState, Reply};
use pxelab::sim::{self, cluster::Outage, demo, Node, Role};
use tokio_util::sync::CancellationToken;

struct Running {
    engine: pxelab::Engine,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A loopback lab of `n` known nodes (node-0 the k3s server), its servers and a
/// watcher that polls every 300 ms, and the simulated machines booted to Ready.
async fn ready_lab(n: usize, hangs: Option<usize>) -> (Running, sim::Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = demo::plan(n + 1);
    plan.held = None;
    let ports = demo::DemoPorts::pick().unwrap();
    let tftp = demo::write_assets(dir.path()).unwrap();
    let text = demo::lab_yaml(&plan, &ports, &tftp);
    let path = dir.path().join("lab.yaml");
    // Servers started without their watcher; the lab then says `watch: true` for the
    // one started here, which polls every 300 ms instead of 3 s.
    std::fs::write(
        &path,
        text.replace("ssh:\n  user: lab\n", "ssh:\n  user: lab\n  watch: false\n"),
    )
    .unwrap();
    let engine = pxelab::Engine::new(pxelab::app::load_lab(&path).unwrap());
    let mut starting = engine.subscribe();
    let cancel = CancellationToken::new();
    pxelab::app::start_servers(&engine, &cancel);
    let listeners = pxelab::app::listeners(&engine.lab());
    pxelab::app::wait_listening(&mut starting, &listeners, Duration::from_secs(20))
        .await
        .unwrap();
    std::fs::write(&path, &text).unwrap();
    engine.replace_lab(pxelab::app::load_lab(&path).unwrap());
    let opts = pxelab::watch::WatchOptions {
        poll_every: Duration::from_millis(300),
        backoff_max: Duration::from_millis(300),
        ..Default::default()
    };
    tokio::spawn(pxelab::watch::run_with(
        engine.clone(),
        cancel.clone(),
        opts,
    ));
    let nodes: Vec<Node> = plan
        .known
        .iter()
        .enumerate()
        .map(|(i, (mac, _, _, ip))| {
            let node = Node::new(*mac, *ip).role(if i == 0 { Role::Server } else { Role::Agent });
            if Some(i) == hangs {
                node.hangs_on_reboot()
            } else {
                node
            }
        })
        .collect();
    let sim = sim::Lab::for_lab(engine.lab())
        .speed(50.0)
        .concurrency(n)
        .step_timeout(Duration::from_secs(20))
        .k3s_timeout(Duration::from_secs(60))
        .cancel_on(cancel.clone());
    let cluster = sim.cluster().clone();
    tokio::spawn(async move { sim.run(nodes).await });
    let lab = Running {
        engine,
        cancel,
        _dir: dir,
    };
    let t0 = Instant::now();
    loop {
        let snap = lab.engine.snapshot();
        let ready = snap
            .nodes
            .iter()
            .filter(|v| v.state == NodeState::Ready)
            .count();
        if ready == n {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "only {ready} of {n} nodes Ready after 120 s: {:?}",
            snap.nodes
                .iter()
                .map(|v| (v.hostname.clone(), v.state))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (lab, cluster)
}

/// Waits (at most `limit`) for the roll's last event: done or stopped.
async fn roll_end(rx: &mut tokio::sync::broadcast::Receiver<Event>, limit: Duration) -> RollStep {
    let t0 = Instant::now();
    loop {
        let left = limit
            .checked_sub(t0.elapsed())
            .expect("the roll did not end in time");
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Ok(Event {
                kind: EventKind::Roll { step },
                ..
            })) if matches!(step, RollStep::Done { .. } | RollStep::Stopped { .. }) => return step,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event bus: {e}"),
            Err(_) => panic!("the roll did not end within {limit:?}"),
        }
    }
}

fn overlap(a: &Outage, b: &Outage) -> bool {
    let end = |o: &Outage| o.up.expect("closed outage");
    a.down < end(b) && b.down < end(a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_nodes_roll_one_agent_at_a_time_server_last_all_ready() {
    let n = 20;
    let (lab, cluster) = ready_lab(n, None).await;
    let commands = lab.engine.commands();
    let roll = |server, confirm_server| {
        Command::Roll(RollOptions {
            server,
            confirm_server,
            node_timeout: Duration::from_secs(60),
        })
    };
    // The server is not rebooted without a confirmation.
    let refused = commands.send(roll(ServerTurn::Last, false)).await;
    assert!(
        matches!(&refused, Err(CommandError::Refused { reason, .. }) if reason.contains("node-0")),
        "{refused:?}"
    );
    let mut rx = lab.engine.subscribe();
    let t0 = Instant::now();
    let started = commands.send(roll(ServerTurn::Last, true)).await.unwrap();
    let Reply::RollStarted { order, left_out } = started else {
        panic!("{started:?}")
    };
    assert_eq!(order.len(), n);
    assert_eq!(order.last().map(String::as_str), Some("node-0"));
    assert!(left_out.is_empty(), "{left_out:?}");
    // One roll at a time.
    let again = commands.send(roll(ServerTurn::Skip, false)).await;
    assert!(
        matches!(&again, Err(CommandError::Refused { reason, .. }) if reason.contains("already")),
        "{again:?}"
    );
    let end = roll_end(&mut rx, Duration::from_secs(600)).await;
    let took = t0.elapsed();
    assert!(matches!(end, RollStep::Done { nodes: 20, .. }), "{end:?}");

    let outages = cluster.outages();
    assert_eq!(outages.len(), n, "{outages:#?}");
    assert!(outages.iter().all(|o| o.up.is_some()), "{outages:#?}");
    let (server, agents): (Vec<&Outage>, Vec<&Outage>) = outages.iter().partition(|o| o.server);
    let mut names: Vec<&str> = agents.iter().map(|o| o.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n - 1, "each agent rebooted once: {names:?}");
    for (i, a) in agents.iter().enumerate() {
        for b in &agents[i + 1..] {
            assert!(
                !overlap(a, b),
                "{} and {} were down at once",
                a.name,
                b.name
            );
        }
    }
    let last_agent_up = agents.iter().filter_map(|o| o.up).max().unwrap();
    assert_eq!(server.len(), 1);
    assert!(
        server[0].down >= last_agent_up,
        "the server went down before the last agent was back"
    );
    let snap = lab.engine.snapshot();
    let not_ready: Vec<_> = snap
        .nodes
        .iter()
        .filter(|v| v.state != NodeState::Ready || v.boot < 2)
        .map(|v| (v.hostname.clone(), v.state, v.boot))
        .collect();
    assert!(
        not_ready.is_empty(),
        "not Ready in a new boot at the end: {not_ready:?}"
    );
    // The server's snapshot step says plainly that none was taken.
    let longest = agents.iter().map(|o| o.up.unwrap() - o.down).max().unwrap();
    eprintln!(
        "roll of {n} nodes: {:.1} s, longest agent outage {:.2} s, never more than one agent down",
        took.as_secs_f64(),
        longest.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_returns_stops_the_roll_naming_it() {
    let n = 6;
    let (lab, cluster) = ready_lab(n, Some(3)).await;
    let commands = lab.engine.commands();
    let mut rx = lab.engine.subscribe();
    let started = commands
        .send(Command::Roll(RollOptions {
            server: ServerTurn::First,
            confirm_server: true,
            node_timeout: Duration::from_secs(8),
        }))
        .await
        .unwrap();
    assert!(
        matches!(&started, Reply::RollStarted { order, .. } if order[0] == "node-0"),
        "{started:?}"
    );
    let mut snapshot_note = None;
    let end = loop {
        let ev = tokio::time::timeout(Duration::from_secs(180), rx.recv())
            .await
            .expect("the roll did not end in 180 s")
            .unwrap();
        match ev.kind {
            EventKind::Roll {
                step: RollStep::Snapshot { note },
            } => snapshot_note = Some(note),
            EventKind::Roll {
                step: s @ RollStep::Stopped { .. },
            } => break s,
            EventKind::Roll {
                step: s @ RollStep::Done { .. },
            } => panic!("{s:?}"),
            _ => {}
        }
    };
    let RollStep::Stopped { reason } = end else {
        unreachable!()
    };
    assert!(reason.contains("node-3"), "{reason}");
    assert!(reason.contains("no new boot seen"), "{reason}");
    assert!(
        snapshot_note
            .as_deref()
            .is_some_and(|n| n.contains("snapshots its datastore")),
        "{snapshot_note:?}"
    );
    // node-0 (first), node-1, node-2 and node-3 went down; node-4 and node-5 never did.
    let mut down: Vec<String> = cluster.outages().into_iter().map(|o| o.name).collect();
    down.sort();
    assert_eq!(down, ["node-0", "node-1", "node-2", "node-3"]);
    // The slot is free again: a new roll (without the hung node) may start.
    let again = commands
        .send(Command::Roll(RollOptions {
            server: ServerTurn::Skip,
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(
        matches!(&again, Reply::RollStarted { left_out, .. } if left_out.iter().any(|l| l.starts_with("node-3"))),
        "{again:?}"
    );
    assert_eq!(
        commands.send(Command::RollStop).await.unwrap(),
        Reply::RollStopped { was_running: true }
    );
}

/// The default driver's `off` and `cycle` go over SSH to the node itself (the simulated
/// sshd runs `poweroff` / `reboot` as a real node would): cycle brings it back Ready in
/// a new boot, off leaves it down; `on` needs `interface:`, which a loopback lab lacks,
/// and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wol_nodes_cycle_and_power_off_over_ssh() {
    use pxelab::engine::service::PowerAction;
    let (lab, cluster) = ready_lab(3, None).await;
    let commands = lab.engine.commands();
    let mac = |h: &str| lab.engine.resolve_node(h).unwrap();
    let power = |m, action| Command::Power { mac: m, action };
    let cycled = commands
        .send(power(mac("node-2"), PowerAction::Cycle))
        .await
        .unwrap();
    assert!(
        matches!(&cycled, Reply::Powered { detail, .. } if detail.starts_with("`reboot` sent over SSH to 127.1.")),
        "{cycled:?}"
    );
    let t0 = Instant::now();
    loop {
        let r = lab.engine.node(&mac("node-2")).unwrap();
        if r.boot >= 2 && r.state == NodeState::Ready {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "node-2 not back: {:?}",
            r.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let off = commands
        .send(power(mac("node-1"), PowerAction::Off))
        .await
        .unwrap();
    assert!(
        matches!(&off, Reply::Powered { detail, .. } if detail.starts_with("`poweroff` sent over SSH")),
        "{off:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outages = cluster.outages();
    let node1 = outages
        .iter()
        .find(|o| o.name == "node-1")
        .expect("node-1 went down");
    assert!(node1.up.is_none(), "node-1 came back after poweroff");
    assert_eq!(lab.engine.node(&mac("node-1")).unwrap().boot, 1);
    let on = commands.send(power(mac("node-1"), PowerAction::On)).await;
    assert!(
        matches!(&on, Err(CommandError::Node { reason, .. }) if reason.contains("`interface:`")),
        "{on:?}"
    );
}
