//! SSH watcher: follows each booted node's tiny-cloud phases and k3s join.
//!
//! ```text
//!  engine bus ──HttpFetch meta-data/user-data 2xx (client addr)──► supervisor
//!                                                         │ one task per MAC
//!                                                         ▼
//!   wait for TCP port (bounded backoff) → SSH (pinned host key, operator key)
//!     ├─ tail -F /var/log/messages ─► parse::messages_line ─► TinyCloud / CloudFailed
//!     ├─ tail -F /var/log/k3s.log  ─► parse::k3s_line      ─► K3s / NodeFailed
//!     ├─ poll /var/lib/cloud/.bootstrap-complete           ─► TinyCloudComplete
//!     ├─ k3s-server only: kubectl get nodes -o json        ─► K3s Ready / NotReady
//!     └─ ping every 2 s; no answer → SshLost, back to waiting
//! ```
//!
//! Every step has a timeout and every node has its own task, so one slow or hostile
//! node never holds up another or the engine.

pub mod conn;
pub mod gauge;
pub mod kubeconfig;
mod node;
pub mod parse;
pub mod reboot;
pub mod snapshot;
pub mod stall;
pub mod trust;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EventKind, FetchKind, NodeState};
use crate::mac::Mac;

/// What the watcher runs on nodes and how long it waits. The defaults fit a real
/// Alpine node; tests point the paths at a temporary node root.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// tiny-cloud's syslog file.
    pub messages_path: String,
    /// k3s's OpenRC log file.
    pub k3s_log_path: String,
    /// tiny-cloud's bootstrap marker.
    pub bootstrap_marker: String,
    /// The node-list command run on the k3s-server node.
    pub kubectl: String,
    /// Limit for one TCP connect + SSH handshake + login.
    pub connect_timeout: Duration,
    /// Longest pause between two probes of a node's SSH port.
    pub backoff_max: Duration,
    /// A node with no successful login for this long is given up (until it boots again).
    pub give_up_after: Duration,
    /// Liveness ping interval on a logged-in connection.
    pub ping_every: Duration,
    /// A ping unanswered this long means the node is gone.
    pub ping_timeout: Duration,
    /// Interval of the bootstrap-marker and kubectl polls.
    pub poll_every: Duration,
    /// Limit for one polled command.
    pub command_timeout: Duration,
    /// Logins refused this many times in a row stop the node's watch (until it boots again).
    pub max_auth_failures: u32,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            messages_path: "/var/log/messages".into(),
            k3s_log_path: "/var/log/k3s.log".into(),
            bootstrap_marker: "/var/lib/cloud/.bootstrap-complete".into(),
            kubectl: "k3s kubectl get nodes -o json".into(),
            connect_timeout: Duration::from_secs(10),
            backoff_max: Duration::from_secs(5),
            give_up_after: Duration::from_secs(20 * 60),
            ping_every: Duration::from_secs(2),
            ping_timeout: Duration::from_secs(4),
            poll_every: Duration::from_secs(3),
            command_timeout: Duration::from_secs(15),
            max_auth_failures: 5,
        }
    }
}

/// Where a node was last seen booting: its address and the engine's boot stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    addr: SocketAddr,
    boot: Option<u64>,
}

struct NodeTask {
    tx: tokio::sync::watch::Sender<Target>,
    join: tokio::task::JoinHandle<()>,
}

/// Watches nodes as they fetch their NoCloud data, until `cancel` fires.
pub async fn run(engine: Engine, cancel: CancellationToken) -> anyhow::Result<()> {
    run_with(engine, cancel, WatchOptions::default()).await
}

/// [`run`] with explicit options. Subscribes to the engine at once (before the returned
/// future is first polled), so no NoCloud fetch emitted after this call is missed.
pub fn run_with(
    engine: Engine,
    cancel: CancellationToken,
    opts: WatchOptions,
) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
    let rx = engine.subscribe();
    supervise(engine, rx, cancel, opts)
}

async fn supervise(
    engine: Engine,
    mut rx: tokio::sync::broadcast::Receiver<crate::engine::Event>,
    cancel: CancellationToken,
    opts: WatchOptions,
) -> anyhow::Result<()> {
    engine.emit(
        None,
        EventKind::ServerUp {
            source: crate::engine::Source::Ssh,
            addr: format!("following nodes on port {}", engine.lab().file.ssh.port),
        },
    );
    let mut sup = Supervisor {
        engine: engine.clone(),
        tasks: HashMap::new(),
        children: cancel.child_token(),
        opts,
    };
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => break,
            ev = rx.recv() => ev,
        };
        let ev = match ev {
            Ok(ev) => ev,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!("SSH watcher missed {n} events; catching up from the inventory");
                sup.catch_up();
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        let (
            Some(mac),
            EventKind::HttpFetch {
                what,
                status,
                client,
                ..
            },
        ) = (ev.mac, &ev.kind)
        else {
            continue;
        };
        if matches!(what, FetchKind::MetaData | FetchKind::UserData) && (200..300).contains(status)
        {
            sup.follow(mac, *client);
        }
    }
    sup.children.cancel();
    for (_, t) in sup.tasks {
        let abort = t.join.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), t.join)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    Ok(())
}

/// The per-node tasks.
struct Supervisor {
    engine: Engine,
    tasks: HashMap<Mac, NodeTask>,
    children: CancellationToken,
    opts: WatchOptions,
}

impl Supervisor {
    /// Starts (or re-points) the watch of `mac`, which fetched its NoCloud data from
    /// `client`.
    fn follow(&mut self, mac: Mac, client: std::net::IpAddr) {
        let lab = self.engine.lab();
        // Only the address the node booted from is followed: anyone may fetch
        // meta-data, and a fetch from elsewhere must not point the watcher at another
        // host (it would at best be refused, and mark the node failed).
        if !lab.file.ssh.watch
            || lab.node_by_mac(&mac).is_none()
            || crate::http::userdata_gate::check(&self.engine, mac, client).is_err()
        {
            return;
        }
        let target = Target {
            addr: SocketAddr::new(client, lab.file.ssh.port),
            boot: self.engine.node(&mac).and_then(|r| r.boot_started_ms),
        };
        self.tasks.retain(|_, t| !t.join.is_finished());
        match self.tasks.get(&mac) {
            Some(t) => {
                t.tx.send_if_modified(|cur| {
                    let changed = *cur != target;
                    *cur = target;
                    changed
                });
            }
            None => {
                let (tx, trx) = tokio::sync::watch::channel(target);
                let join = tokio::spawn(node::watch_node(
                    self.engine.clone(),
                    mac,
                    trx,
                    self.children.clone(),
                    self.opts.clone(),
                ));
                self.tasks.insert(mac, NodeTask { tx, join });
            }
        }
    }

    /// After missed events: follows every lab node that got its NoCloud data this boot
    /// and is not followed yet.
    fn catch_up(&mut self) {
        self.tasks.retain(|_, t| !t.join.is_finished());
        for n in &self.engine.lab().file.nodes {
            if self.tasks.contains_key(&n.mac) {
                continue;
            }
            let Some(rec) = self.engine.node(&n.mac) else {
                continue;
            };
            if let (true, Some(ip)) = (
                rec.reached_ms.contains_key(&NodeState::ConfigFetched),
                rec.seen_ip,
            ) {
                self.follow(n.mac, ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_watcher_that_fell_behind_catches_up() {
        let d = tempfile::tempdir().unwrap();
        let text = "name: t\nssh:\n  port: 1\nboot:\n  kernel: k\nnodes:\n  - mac: 52:54:00:00:00:01\n    hostname: a\n    role: k3s-agent\n";
        let lab = crate::config::Lab::parse(&d.path().join("lab.yaml"), text).unwrap();
        let engine = Engine::new(lab);
        let mac: Mac = "52:54:00:00:00:01".parse().unwrap();
        let mut rx = engine.subscribe();
        let cancel = CancellationToken::new();
        // Subscribed now; it runs only when this test awaits (one thread).
        let watcher = tokio::spawn(run_with(
            engine.clone(),
            cancel.clone(),
            WatchOptions::default(),
        ));
        for what in [FetchKind::Script, FetchKind::UserData] {
            engine.emit(
                Some(mac),
                EventKind::HttpFetch {
                    path: "/x".into(),
                    client: "127.0.0.1".parse().unwrap(),
                    what,
                    status: 200,
                    bytes: 1,
                    ms: 1,
                },
            );
        }
        // Bury the fetch under more events than the bus holds.
        for _ in 0..crate::engine::BUS_CAPACITY + 10 {
            engine.emit(None, EventKind::ConfigLoaded { nodes: 1 });
        }
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match rx.recv().await {
                    Ok(ev) if matches!(ev.kind, EventKind::SshConnecting { .. }) => return ev,
                    _ => continue,
                }
            }
        })
        .await
        .expect("the watcher never caught up");
        assert_eq!(found.mac, Some(mac));
        cancel.cancel();
        let _ = watcher.await;
    }
}
