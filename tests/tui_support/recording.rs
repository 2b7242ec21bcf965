//! The simulated lab as it really ran: `pxelab demo`'s seven machines (node-0 the k3s
//! server, node-1..4 agents, node-5 an agent holding another cluster's token, and one
//! machine lab.yaml does not list) booted by pxelab's real servers on loopback and
//! followed by its real SSH watcher, every event of the bus (log lines included) kept
//! as JSON lines in `tests/golden/demo-lab.jsonl`, beside the lab.yaml of that run.
//!
//! The screen snapshots and screenshots replay that recording into an engine, so they
//! show what the product produces, not hand-made events. `tests/tui_record.rs` checks
//! that a fresh run still produces the same story, and rewrites the recording with
//! `PXELAB_RECORD_GOLDEN=1`.

use std::path::{Path, PathBuf};

use std::time::Duration;

use pxelab::engine::{Engine, Event, EventKind, NodeState};
use pxelab::sim::demo;
use pxelab::Mac;

/// Where the recording lives.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The demo's machines in power-on order; the last one is the unknown one.
pub fn demo_macs() -> Vec<Mac> {
    (0..7).map(pxelab::sim::node_mac).collect()
}

/// The recorded lab.yaml and events.
pub fn load() -> (String, Vec<Event>) {
    let dir = golden_dir();
    let lab =
        std::fs::read_to_string(dir.join("demo-lab.yaml")).expect("tests/golden/demo-lab.yaml");
    let events = std::fs::read_to_string(dir.join("demo-lab.jsonl"))
        .expect("tests/golden/demo-lab.jsonl")
        .lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("demo-lab.jsonl:{}: {e}", i + 1))
        })
        .collect();
    (lab, events)
}

/// Whether every known machine is Ready or failed and the unknown one is held.
fn settled(engine: &Engine, macs: &[Mac]) -> bool {
    let (known, held) = macs.split_at(macs.len() - 1);
    known.iter().all(|m| {
        engine
            .node(m)
            .is_some_and(|r| matches!(r.state, NodeState::Ready | NodeState::Failed))
    }) && engine
        .node(&held[0])
        .is_some_and(|r| r.state == NodeState::Held)
}

/// Runs the demo lab once, in this process, the way `pxelab demo` does (real DHCP, TFTP,
/// HTTP servers and SSH watcher on loopback, simulated machines at `speed`), until it
/// settles or `limit` passes; returns the lab.yaml text (with the temporary TFTP root
/// written as `tftp`) and every event.
pub fn run_demo_lab(speed: f64, limit: Duration) -> (String, Vec<Event>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let plan = demo::plan(7);
        let ports = demo::DemoPorts::pick().unwrap();
        let tftp_root = demo::write_assets(dir.path()).unwrap();
        let text = demo::lab_yaml(&plan, &ports, &tftp_root);
        let lab_path = dir.path().join("lab.yaml");
        std::fs::write(&lab_path, &text).unwrap();
        let engine = Engine::new(pxelab::app::load_lab(&lab_path).unwrap());
        let mut rx = engine.subscribe();
        let mut starting = engine.subscribe();
        let cancel = tokio_util::sync::CancellationToken::new();
        let n = engine.lab().file.nodes.len();
        engine.emit(None, EventKind::ConfigLoaded { nodes: n });
        let _tasks = pxelab::app::start_servers(&engine, &cancel);
        let listeners = pxelab::app::listeners(&engine.lab());
        pxelab::app::wait_listening(&mut starting, &listeners, Duration::from_secs(10))
            .await
            .unwrap();
        let sim = pxelab::sim::Lab::for_lab(engine.lab())
            .speed(speed)
            .cancel_on(cancel.clone());
        let nodes = plan.nodes.clone();
        tokio::spawn(async move { sim.run(nodes).await });
        let macs = demo_macs();
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        let mut quiet_since: Option<tokio::time::Instant> = None;
        loop {
            match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                Ok(Ok(e)) => events.push(e),
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => {
                    panic!("the recording lost {n} events")
                }
                Ok(Err(_)) => break,
                Err(_) => {}
            }
            let now = tokio::time::Instant::now();
            if now > deadline {
                break;
            }
            // Settled, then a second more for the last log lines.
            if settled(&engine, &macs) {
                let since = *quiet_since.get_or_insert(now);
                if now - since > Duration::from_secs(1) {
                    break;
                }
            }
        }
        cancel.cancel();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let text = text.replace(&tftp_root.display().to_string(), "tftp");
        (text, events)
    })
}

/// Writes a recording (the golden files).
pub fn save(lab: &str, events: &[Event]) {
    let dir = golden_dir();
    std::fs::write(dir.join("demo-lab.yaml"), lab).unwrap();
    let lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    std::fs::write(dir.join("demo-lab.jsonl"), lines.join("\n") + "\n").unwrap();
}

/// Feeds events into a fresh engine for `lab`, as the wire servers and the watcher
/// did: the engine recomputes every state from them.
pub fn replay(engine: &Engine, events: &[Event]) {
    for e in events {
        engine.emit(e.mac, e.kind.clone());
    }
}

/// States the SSH watcher sees only if a poll lands while the node is in them: a fast
/// node can pass tiny-cloud or k3s-starting between two polls, so a story that names
/// them would differ between two good runs.
const POLL_TIMED: [&str; 4] = ["tiny-cloud", "bootstrapped", "k3s-starting", "joined"];

/// What a run says about each machine, without times, ports, hashes or counts that vary
/// from run to run: the states the wire servers saw it reach, its final state, and its
/// failure as class and sentence (the `msg=` text carries the run's own CA hash).
pub fn stories(engine: &Engine) -> Vec<String> {
    demo_macs()
        .into_iter()
        .map(|mac| match engine.node(&mac) {
            None => format!("{mac}: never seen"),
            Some(r) => {
                let reached: Vec<&str> = r
                    .reached_ms
                    .keys()
                    .map(|s| s.name())
                    .filter(|name| !POLL_TIMED.contains(name))
                    .collect();
                let failure = r
                    .failure_reason
                    .as_ref()
                    .map(|f| format!("{}: {}", f.class, f.summary));
                format!(
                    "{mac} {}: reached [{}], now {}, failure {:?}",
                    r.label(),
                    reached.join(" "),
                    r.state.name(),
                    failure
                )
            }
        })
        .collect()
}
