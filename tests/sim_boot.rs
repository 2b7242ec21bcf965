//! The simulator as a library against pxelab's real servers on loopback: many nodes at
//! once, every one served at every step, in DHCP server mode and in proxy mode.

use std::collections::HashSet;
use std::time::Duration;

use pxelab::engine::{Event, EventKind, FetchKind};
use pxelab::mac::Mac;
use pxelab::sim::{self, demo, Node, Outcome, Role, Step};
use tokio_util::sync::CancellationToken;

struct Running {
    engine: pxelab::Engine,
    cancel: CancellationToken,
    events: tokio::sync::broadcast::Receiver<Event>,
    _dir: tempfile::TempDir,
}

/// A loopback lab listing `n` nodes, with its servers started.
async fn start(n: usize, proxy: bool, watch: bool) -> (Running, Vec<(Mac, std::net::Ipv4Addr)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = demo::plan(n + 1);
    plan.held = None;
    let ports = demo::DemoPorts::pick().unwrap();
    let tftp = demo::write_assets(dir.path()).unwrap();
    let mut text = demo::lab_yaml(&plan, &ports, &tftp);
    if proxy {
        text = text.replace("  mode: server\n", "  mode: proxy\n");
    }
    if !watch {
        text = text.replace("ssh:\n  user: lab\n", "ssh:\n  user: lab\n  watch: false\n");
    }
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
            _dir: dir,
        },
        known,
    )
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

/// The lab's nodes as simulated machines: the first the k3s server, agents after it.
fn server_then_agents(known: &[(Mac, std::net::Ipv4Addr)]) -> Vec<Node> {
    known
        .iter()
        .enumerate()
        .map(|(i, (mac, ip))| {
            Node::new(*mac, *ip).role(if i == 0 { Role::Server } else { Role::Agent })
        })
        .collect()
}

/// Every machine joined; else names each that did not, with its last step, and shows
/// the k3s server's whole record (the usual culprit).
fn assert_all_joined(results: &[sim::NodeResult]) {
    let not_joined: Vec<String> = results
        .iter()
        .filter(|r| r.outcome != Outcome::Joined)
        .map(|r| format!("{} {:?} {:?}", r.mac, r.outcome, r.steps.last()))
        .collect();
    assert!(
        not_joined.is_empty(),
        "not joined: {not_joined:#?}\nnode-0: {:#?}",
        results.first()
    );
}

/// The simulator at 50x speed with `slots` machines booting at once.
fn fast_sim(lab: &Running, slots: usize, k3s_timeout: Duration) -> sim::Lab {
    sim::Lab::for_lab(lab.engine.lab())
        .speed(50.0)
        .concurrency(slots)
        .step_timeout(Duration::from_secs(20))
        .k3s_timeout(k3s_timeout)
        .cancel_on(lab.cancel.clone())
}

fn fetched(events: &[Event], what: FetchKind) -> HashSet<Mac> {
    events
        .iter()
        .filter(
            |e| matches!(&e.kind, EventKind::HttpFetch { what: w, status: 200, .. } if *w == what),
        )
        .filter_map(|e| e.mac)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_boot_in_server_mode() {
    let n = 50;
    let (mut lab, known) = start(n, false, false).await;
    let nodes = server_then_agents(&known);
    let sim = fast_sim(&lab, 25, Duration::from_secs(60));
    let results = tokio::time::timeout(Duration::from_secs(240), sim.run(nodes))
        .await
        .expect("50 nodes did not finish in 240 s");
    assert_eq!(results.len(), n);
    assert_all_joined(&results);
    for r in &results {
        assert_eq!(r.outcome, Outcome::Joined, "{r:#?}");
        for s in [
            Step::DhcpPxe,
            Step::Tftp,
            Step::DhcpIpxe,
            Step::Script,
            Step::Kernel,
            Step::Initrd,
            Step::DhcpInitramfs,
            Step::NoCloud,
            Step::Ssh,
            Step::K3s,
        ] {
            assert!(r.ok(s), "{} step {s:?}: {r:#?}", r.mac);
        }
        // The modloop is fetched when the command line names an http one.
        assert!(r.step(Step::Modloop).is_none_or(|s| s.ok), "{r:#?}");
        // Server mode: the node used its reserved address throughout.
        assert_eq!(
            Some(r.address),
            known.iter().find(|k| k.0 == r.mac).map(|k| k.1)
        );
        assert!(r.hostname.is_some());
    }
    // pxelab's own record: every node got its kernel, initrd and NoCloud data.
    let events = drain(&mut lab.events);
    let macs: HashSet<Mac> = known.iter().map(|k| k.0).collect();
    for what in [
        FetchKind::Script,
        FetchKind::Kernel,
        FetchKind::Initrd,
        FetchKind::MetaData,
        FetchKind::UserData,
    ] {
        let got = fetched(&events, what);
        assert_eq!(got, macs, "{what:?} not served to every node");
    }
    let acked: HashSet<Mac> = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::DhcpReply { msg, .. } if msg == "ack"))
        .filter_map(|e| e.mac)
        .collect();
    assert_eq!(acked, macs);
    assert_eq!(sim.cluster().members().len(), n);
    lab.cancel.cancel();
}

/// Fewer boot slots than agents, the k3s server listed last: the server still gets a
/// slot first, so the agents holding the others are not left waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_boots_first_when_slots_are_few() {
    let (lab, known) = start(4, false, false).await;
    let mut nodes = server_then_agents(&known);
    nodes.rotate_left(1);
    let sim = fast_sim(&lab, 2, Duration::from_secs(20));
    let results = tokio::time::timeout(Duration::from_secs(120), sim.run(nodes))
        .await
        .expect("4 nodes did not finish in 120 s");
    assert_eq!(results.len(), 4);
    assert_all_joined(&results);
    lab.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_nodes_keep_their_own_address_and_are_watched() {
    let n = 4;
    let (mut lab, known) = start(n, true, true).await;
    let nodes: Vec<Node> = known
        .iter()
        .enumerate()
        .map(|(i, (mac, ip))| {
            Node::new(*mac, *ip).role(if i == 0 { Role::Server } else { Role::Agent })
        })
        .collect();
    let sim = sim::Lab::for_lab(lab.engine.lab())
        .speed(20.0)
        .cancel_on(lab.cancel.clone());
    let results = tokio::time::timeout(Duration::from_secs(120), sim.run(nodes))
        .await
        .expect("nodes did not finish");
    assert_all_joined(&results);
    for r in &results {
        assert_eq!(r.outcome, Outcome::Joined, "{r:#?}");
        // No address from a proxy, no initramfs DHCP answered by it.
        assert!(r.step(Step::DhcpInitramfs).is_none());
        assert!(
            r.step(Step::DhcpPxe).unwrap().detail.starts_with("proxy"),
            "{r:#?}"
        );
    }
    // The watcher (real, over SSH) sees every node Ready from the server's kubectl.
    let macs: HashSet<Mac> = known.iter().map(|k| k.0).collect();
    let mut ready = HashSet::new();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while ready != macs && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(500), lab.events.recv()).await
        {
            if matches!(
                &e.kind,
                EventKind::K3s {
                    step: pxelab::engine::event::K3sStep::Ready
                }
            ) {
                ready.extend(e.mac);
            }
            seen.push(e);
        }
    }
    assert_eq!(
        ready,
        macs,
        "not all Ready: {:#?}",
        seen.iter().map(|e| e.kind.describe()).collect::<Vec<_>>()
    );
    lab.cancel.cancel();
}
