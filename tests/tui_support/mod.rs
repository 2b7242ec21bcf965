//! Building console states for tests and screenshots: a temp lab, an Engine driven by
//! real events, and deterministic timestamps (the engine stamps events with the wall
//! clock, so times are rewritten to a fixed scale before drawing).
#![allow(dead_code)]

pub mod recording;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use pxelab::engine::event::{
    ActionStatus, CloudPhase, FetchKind, K3sFailure, K3sStep, TransferOutcome,
};
use pxelab::engine::snapshot::NodeView;
use pxelab::engine::{Engine, EventKind, NodeState, Snapshot, Source};
use pxelab::tui::app::{App, LabInfo};
use pxelab::tui::theme::Theme;
use pxelab::Mac;

/// "Now" for every screen: 2026-01-01 12:00:00 UTC.
pub const NOW: u64 = 1_767_268_800_000;

pub const LAB_HEAD: &str = "# pxelab test lab: comments must survive adoption.\nname: homelab\nserver_address: 10.0.0.1\ndhcp:\n  mode: proxy\n  port: 1067\n  pxe_port: 14011\ntftp:\n  enabled: true\n  port: 1069\nhttp:\n  port: 18080\n  admin_port: 17480\nboot:\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  cmdline: \"console=ttyS0 ip=dhcp\"\nssh:\n  user: lab\nadopt:\n  hostname_pattern: \"{prefix}-{hash}\"\nunknown: hold\n";

pub const NODES: &str = "nodes:\n  # the control plane\n  - mac: a0:1a:2c:c3:d4:e0\n    hostname: node-0\n    role: k3s-server\n    ip: 10.0.0.10\n  - mac: a0:1a:2c:c3:d4:e1\n    hostname: node-1\n    role: k3s-agent\n    ip: 10.0.0.11\n  - mac: a0:1a:2c:c3:d4:e2\n    hostname: node-2\n    role: k3s-agent\n    ip: 10.0.0.12\n  - mac: a0:1a:2c:c3:d4:e3\n    hostname: node-3\n    role: k3s-agent\n    ip: 10.0.0.13\n  - mac: a0:1a:2c:c3:d4:e4\n    hostname: node-4\n    role: k3s-agent\n    ip: 10.0.0.14\n  - mac: a0:1a:2c:c3:d4:e5\n    hostname: node-5\n    role: k3s-agent\n    ip: 10.0.0.15\n";

pub const HELD: &str = "52:54:00:12:34:56";

/// The demo lab's machines (tests/golden): node-i is `52:54:00:5e:00:0i`; the unknown one
/// is :06 and node-5 holds another cluster's token.
pub const DEMO_HELD: &str = "52:54:00:5e:00:06";
pub const DEMO_NODE5: &str = "52:54:00:5e:00:05";
pub const DEMO_NODE0: &str = "52:54:00:5e:00:00";
pub const DEMO_NODE3: &str = "52:54:00:5e:00:03";

/// A lab on disk, its engine and the engine service (on a runtime of its own, so the
/// console's commands run as in `pxelab up` while the test drives keys synchronously).
pub struct TestLab {
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub engine: Engine,
    pub rx: std::sync::Mutex<tokio::sync::broadcast::Receiver<pxelab::engine::Event>>,
    pub history: std::sync::Mutex<Vec<pxelab::engine::Event>>,
}

impl TestLab {
    pub fn new(text: &str) -> TestLab {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.yaml");
        std::fs::write(&path, text).unwrap();
        let lab = pxelab::app::load_lab(&path).unwrap();
        let engine = Engine::new(lab);
        let rx = std::sync::Mutex::new(engine.subscribe());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        {
            let _in = rt.enter();
            let cancel = tokio_util::sync::CancellationToken::new();
            pxelab::engine::service::start(
                &engine,
                cancel,
                std::sync::Arc::new(pxelab::engine::service::NoControl),
            );
        }
        TestLab {
            rt,
            dir,
            path,
            engine,
            rx,
            history: Default::default(),
        }
    }

    pub fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    pub fn emit(&self, mac: &str, kind: EventKind) {
        self.engine.emit(Some(Self::mac(mac)), kind);
    }

    pub fn servers_up(&self) {
        for (s, a) in [
            (Source::Dhcp, "0.0.0.0:1067"),
            (Source::Tftp, "0.0.0.0:1069"),
            (Source::Http, "10.0.0.1:18080"),
            (Source::Admin, "127.0.0.1:17480"),
            (Source::Ssh, "watching"),
        ] {
            self.engine.emit(
                None,
                EventKind::ServerUp {
                    source: s,
                    addr: a.into(),
                },
            );
        }
    }

    /// Drives a node along the boot chain up to (and including) `until`.
    pub fn boot(&self, mac: &str, ip: &str, until: NodeState) {
        let ip: IpAddr = ip.parse().unwrap();
        let chain: Vec<(NodeState, EventKind)> = vec![
            (NodeState::Discovered, discover()),
            (
                NodeState::Offered,
                EventKind::DhcpReply {
                    msg: "offer".into(),
                    yiaddr: None,
                    boot_file: Some("undionly.kpxe".into()),
                    proxy: true,
                },
            ),
            (
                NodeState::IpxeLoaded,
                EventKind::TftpEnd {
                    file: "undionly.kpxe".into(),
                    client: SocketAddr::new(ip, 2070),
                    bytes: 70_000,
                    ms: 180,
                    outcome: TransferOutcome::Complete,
                    detail: None,
                },
            ),
            (
                NodeState::ScriptServed,
                fetch(ip, FetchKind::Script, "/boot.ipxe", 412),
            ),
            (
                NodeState::Kernel,
                fetch(ip, FetchKind::Kernel, "/assets/vmlinuz-lts", 12_000_000),
            ),
            (
                NodeState::Initrd,
                fetch(ip, FetchKind::Initrd, "/assets/initramfs-lts", 9_000_000),
            ),
            (
                NodeState::ConfigFetched,
                fetch(ip, FetchKind::UserData, "/nocloud/user-data", 2_100),
            ),
            (
                NodeState::SshUp,
                EventKind::SshUp {
                    addr: SocketAddr::new(ip, 22),
                },
            ),
            (
                NodeState::TinyCloud,
                EventKind::TinyCloud {
                    phase: CloudPhase::Main,
                    action: "set_hostname".into(),
                    status: ActionStatus::Done,
                },
            ),
            (NodeState::Bootstrapped, EventKind::TinyCloudComplete),
            (
                NodeState::K3sStarting,
                EventKind::K3s {
                    step: K3sStep::Starting {
                        version: "v1.31.4+k3s1".into(),
                    },
                },
            ),
            (
                NodeState::Joined,
                EventKind::K3s {
                    step: K3sStep::Joined,
                },
            ),
            (
                NodeState::Ready,
                EventKind::K3s {
                    step: K3sStep::Ready,
                },
            ),
        ];
        for (st, ev) in chain {
            if st > until {
                break;
            }
            self.emit(mac, ev);
        }
    }

    /// The seven-node lab in every interesting state.
    pub fn booting() -> TestLab {
        let t = TestLab::new(&format!("{LAB_HEAD}{NODES}"));
        t.servers_up();
        t.boot("a0:1a:2c:c3:d4:e0", "10.0.0.10", NodeState::Ready);
        t.boot("a0:1a:2c:c3:d4:e1", "10.0.0.11", NodeState::Joined);
        t.boot("a0:1a:2c:c3:d4:e2", "10.0.0.12", NodeState::Kernel);
        t.boot("a0:1a:2c:c3:d4:e3", "10.0.0.13", NodeState::TinyCloud);
        t.emit(
            "a0:1a:2c:c3:d4:e3",
            EventKind::LogLine {
                file: "messages".into(),
                line: "tiny-cloud main: set_hostname: done".into(),
            },
        );
        t.emit(
            "a0:1a:2c:c3:d4:e3",
            EventKind::LogLine {
                file: "messages".into(),
                line: "tiny-cloud main: create_default_user: done".into(),
            },
        );
        t.boot("a0:1a:2c:c3:d4:e4", "10.0.0.14", NodeState::K3sStarting);
        t.emit(
            "a0:1a:2c:c3:d4:e4",
            EventKind::NodeFailed {
                reason: K3sFailure::TokenMismatch,
                line: "token CA hash does not match the Cluster CA certificate hash".into(),
                summary: K3sFailure::TokenMismatch.summary(""),
                msg: "token CA hash does not match the Cluster CA certificate hash".into(),
            },
        );
        t.emit(HELD, discover());
        t.engine.decide(Self::mac(HELD));
        t
    }

    /// The demo lab as it really ran (tests/golden, see [`recording`]), replayed up to and
    /// including the first event `until` accepts (all of it when none does).
    pub fn recorded(until: impl Fn(&pxelab::engine::Event) -> bool) -> TestLab {
        let (lab, events) = recording::load();
        let t = TestLab::new(&lab);
        let end = events
            .iter()
            .position(until)
            .map_or(events.len(), |i| i + 1);
        recording::replay(&t.engine, &events[..end]);
        t
    }

    /// The recorded demo lab at the moment node-5 failed: node-0..4 on their way, the
    /// unknown machine held.
    pub fn recorded_booting() -> TestLab {
        TestLab::recorded(|e| matches!(e.kind, EventKind::NodeFailed { .. }))
    }

    /// The recorded demo lab once it settled: five Ready, node-5 failed, one held.
    pub fn recorded_settled() -> TestLab {
        TestLab::recorded(|_| false)
    }

    /// A console state in this lab, with deterministic times.
    pub fn app(&self, theme: &str) -> (App, Snapshot) {
        let theme = Theme::builtin(theme).unwrap().unwrap();
        let mut app = App::new(theme, LabInfo::from_lab(&self.engine.lab()));
        app.now_ms = NOW;
        app.lab.dir.clone_from(&self.dir.path().to_path_buf());
        let mut h = self.history.lock().unwrap();
        let mut rx = self.rx.lock().unwrap();
        while let Ok(e) = rx.try_recv() {
            h.push(e);
        }
        fill_events(&mut app, self, &h);
        (app, self.snapshot())
    }

    /// The engine snapshot with times rewritten: node i powered on (30 + 40 i) s ago,
    /// each state reached 1.5 s after the previous one.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.engine.snapshot();
        for (i, n) in s.nodes.iter_mut().enumerate() {
            retime_view(n, i);
        }
        s
    }
}

pub fn fake_start(i: usize) -> u64 {
    NOW - 30_000 - 40_000 * i as u64
}

fn retime_view(n: &mut NodeView, i: usize) {
    if n.boot_started_ms.is_some() {
        let start = fake_start(i);
        n.boot_started_ms = Some(start);
        n.last_event_ms = Some(start + 1_500 * (n.state as u64).min(16));
    } else if n.last_event_ms.is_some() {
        n.last_event_ms = Some(NOW - 4_000);
    }
}

/// Rewrites a record's times the same way (for the detail screen).
pub fn retime_record(r: &mut pxelab::engine::NodeRecord, i: usize) {
    if r.boot_started_ms.is_some() {
        let start = fake_start(i);
        r.boot_started_ms = Some(start);
        for (st, at) in r.reached_ms.iter_mut() {
            *at = start + 1_500 * (*st as u64);
        }
    }
    let n = r.timeline.len() as u64;
    for (k, e) in r.timeline.iter_mut().enumerate() {
        e.at_ms = NOW - 1_000 * (n - k as u64);
    }
}

/// Fills the event pane from a lab's history, one second apart ending at NOW.
pub fn fill_events(app: &mut App, lab: &TestLab, events: &[pxelab::engine::Event]) {
    let _ = lab;
    let n = events.len() as u64;
    for (k, e) in events.iter().enumerate() {
        let mut e = e.clone();
        e.at_ms = NOW - 1_000 * (n - k as u64);
        app.push_event(&e);
    }
}

pub fn discover() -> EventKind {
    EventKind::DhcpDiscover {
        msg: "discover".into(),
        arch: Some(0),
        vendor_class: Some("PXEClient:Arch:00000:UNDI:002001".into()),
        uuid: None,
        relay: None,
        ipxe: false,
        pxe_port: false,
    }
}

pub fn fetch(ip: IpAddr, what: FetchKind, path: &str, bytes: u64) -> EventKind {
    EventKind::HttpFetch {
        path: path.into(),
        client: ip,
        what,
        status: 200,
        bytes,
        ms: 40,
    }
}

pub fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

pub fn key(c: char) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char(c),
        crossterm::event::KeyModifiers::NONE,
    )
}

pub fn code(c: crossterm::event::KeyCode) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(c, crossterm::event::KeyModifiers::NONE)
}

/// Presses keys, carrying out effects synchronously (jobs run inline), then syncs the
/// app once more; returns the effects the keys asked for.
pub fn press(
    lab: &TestLab,
    app: &mut App,
    snap: &Snapshot,
    keys: &[crossterm::event::KeyEvent],
) -> Vec<pxelab::tui::app::Effect> {
    let mut all = Vec::new();
    for k in keys {
        app.sync(snap);
        for fx in app.on_key(k) {
            all.push(fx.clone());
            if let Some(job) = pxelab::tui::effects::perform(&lab.engine, app, fx) {
                let (lvl, msg) = job();
                app.flash(lvl, msg);
            }
        }
    }
    app.sync(snap);
    all
}
