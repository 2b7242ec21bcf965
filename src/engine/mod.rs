//! The engine: inventory, node state machine, boot policy, event bus and commands.
//!
//! The core (this module, inventory, state, snapshot) is synchronous and touches no
//! files or sockets: wire servers call [`Engine::decide`] ("what does this MAC get?")
//! and [`Engine::emit`] (what happened) on their receive paths. The event record
//! (`--record`) is one more subscriber of the bus ([`crate::record`]). Faces call
//! [`Engine::snapshot`] and [`Engine::subscribe`], and send commands through
//! [`Engine::commands`] to the [`service`], the one task that owns lab.yaml.
//!
//! Locking: one `Mutex` around the inventory, held only for map updates (never across
//! I/O or `.await`). lab.yaml is behind an `RwLock<Arc<Lab>>` swapped whole on reload, so
//! readers take a cheap `Arc` clone. A `version` counter tells faces whether anything
//! changed since their last frame.

mod describe;
pub mod event;
pub mod failure;
mod firmware;
pub mod inventory;
mod mirror;
pub mod roll;
pub mod service;
pub mod snapshot;
pub mod state;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

pub use event::{ApkTally, Event, EventKind, FetchKind, Source};
pub use inventory::{Inventory, NodeRecord};
pub use service::{Command, CommandError, Commands, Reply};
pub use snapshot::{ServerStatus, Snapshot};
pub use state::NodeState;

use crate::config::{ConfigError, Lab, NodeEntry, UnknownPolicy};
use crate::mac::Mac;

/// Capacity of the broadcast bus; a face that falls further behind re-reads the snapshot.
pub const BUS_CAPACITY: usize = 16_384;
/// Events kept for a face that starts late ([`Engine::recent_events`]).
pub const RECENT_CAP: usize = 500;

/// Errors from engine commands.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// lab.yaml could not be read, validated or written.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The role does not exist.
    #[error("unknown role `{role}` for {mac} (roles: {known})")]
    UnknownRole {
        /// The MAC.
        mac: Mac,
        /// The role asked for.
        role: String,
        /// The roles that exist.
        known: String,
    },
    /// A broadcast or multicast MAC: no machine has one.
    #[error("{mac} is a broadcast or multicast address, not a machine's")]
    GroupMac {
        /// The MAC.
        mac: Mac,
    },
    /// The MAC is not in the lab.
    #[error("{mac} is not in the lab")]
    NotInLab {
        /// The MAC.
        mac: Mac,
    },
    /// The hostname is taken or malformed.
    #[error("hostname `{hostname}` for {mac}: {reason}")]
    BadHostname {
        /// The MAC.
        mac: Mac,
        /// The hostname.
        hostname: String,
        /// Why.
        reason: String,
    },
}

/// What a MAC gets when it asks to boot.
#[derive(Debug, Clone, PartialEq)]
pub enum BootDecision {
    /// Boot it as this node.
    Boot(NodeEntry),
    /// Unknown: keep it in the iPXE wait loop.
    Hold,
    /// Unknown and the policy says ignore: do not answer.
    Ignore,
}

/// Counters of things dropped or refused (never answered), and of bodies sent by sendfile.
#[derive(Debug, Default)]
pub struct Counters {
    /// DHCP packets dropped (malformed, not PXE in proxy mode, …).
    pub dhcp_dropped: AtomicU64,
    /// HTTP requests refused (traversal, unknown MAC, wrong client).
    pub http_refused: AtomicU64,
    /// TFTP requests refused.
    pub tftp_refused: AtomicU64,
    /// Events emitted.
    pub events: AtomicU64,
    /// Records of machines not in lab.yaml forgotten to stay within
    /// [`inventory::UNKNOWN_CAP`].
    pub unknown_forgotten: AtomicU64,
    /// Package cache answers served without an upstream fetch (stale indexes included).
    pub apk_hits: AtomicU64,
    /// Package cache files fetched from upstream.
    pub apk_fetched: AtomicU64,
    /// Package cache requests that failed (upstream unreachable, damaged file).
    pub apk_failed: AtomicU64,
    /// HTTP asset bodies the boot server's front sent by sendfile (not through hyper).
    pub http_sendfile: AtomicU64,
}

struct Inner {
    lab: RwLock<Arc<Lab>>,
    inventory: Mutex<Inventory>,
    servers: Mutex<Vec<ServerStatus>>,
    bus: broadcast::Sender<Event>,
    seq: AtomicU64,
    version: AtomicU64,
    counters: Counters,
    /// Where commands go: the running service's queue, or detached.
    commands: Mutex<Commands>,
    /// Machines whose adoption (`unknown: adopt`) is queued for this lab: asked once,
    /// not at every packet; cleared when a new lab is put in force.
    adopt_queued: Mutex<HashSet<Mac>>,
    /// The last [`RECENT_CAP`] events (node-local ones aside), for a face that starts
    /// after them (a console attached later, see [`Engine::recent_events`]).
    recent: Mutex<std::collections::VecDeque<Event>>,
}

/// The engine handle: cheap to clone, shared by every server and face.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Wall-clock time, ms since the Unix epoch (as events are stamped).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Engine {
    /// An engine for a loaded lab.
    pub fn new(lab: Lab) -> Engine {
        let (bus, _) = broadcast::channel(BUS_CAPACITY);
        let mut inv = Inventory::new();
        inv.sync_with(&lab.file.nodes);
        Engine {
            inner: Arc::new(Inner {
                lab: RwLock::new(Arc::new(lab)),
                inventory: Mutex::new(inv),
                servers: Mutex::new(Vec::new()),
                bus,
                seq: AtomicU64::new(0),
                version: AtomicU64::new(1),
                counters: Counters::default(),
                commands: Mutex::new(Commands::detached()),
                adopt_queued: Mutex::new(HashSet::new()),
                recent: Mutex::new(std::collections::VecDeque::new()),
            }),
        }
    }

    /// The lab as currently loaded.
    pub fn lab(&self) -> Arc<Lab> {
        match self.inner.lab.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// A new receiver of every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.bus.subscribe()
    }

    /// Counters of dropped and refused requests.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Increments whenever the inventory, servers or lab change.
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.inner.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Records that something happened: updates the node, the recorder and the bus.
    pub fn emit(&self, mac: Option<Mac>, kind: EventKind) -> Event {
        let ev = Event {
            seq: 0,
            at_ms: now_ms(),
            mac,
            hostname: None,
            kind,
        };
        self.publish(ev, true)
    }

    /// Applies `ev` to its node, the servers' states and the bus. With `stamp` it is
    /// given the next sequence number and the node's hostname (an event that happened
    /// here); without, it keeps the ones it came with ([`Engine::ingest`]). The number is
    /// taken under the inventory lock, so every event up to a number read under that
    /// lock has been applied ([`Engine::records_at`]).
    fn publish(&self, mut ev: Event, stamp: bool) -> Event {
        self.inner.counters.events.fetch_add(1, Ordering::Relaxed);
        {
            let mut inv = lock(&self.inner.inventory);
            if stamp {
                ev.seq = self.inner.seq.fetch_add(1, Ordering::AcqRel) + 1;
            } else {
                self.inner.seq.fetch_max(ev.seq, Ordering::AcqRel);
            }
            if let Some(m) = ev.mac {
                let rec = inv.entry(m);
                rec.apply(&ev);
                if stamp {
                    ev.hostname = rec.hostname.clone();
                }
                self.inner
                    .counters
                    .unknown_forgotten
                    .store(inv.forgotten(), Ordering::Relaxed);
            }
        }
        if let EventKind::ServerUp { source, addr } = &ev.kind {
            self.set_server(*source, true, addr.clone());
        }
        if let EventKind::ServerDown { source, reason } = &ev.kind {
            self.set_server(*source, false, reason.clone());
        }
        self.bump();
        // Kept and sent under one lock, so a face's history and its subscription
        // neither overlap nor leave a gap ([`Engine::subscribe_with_recent`]).
        let mut recent = lock(&self.inner.recent);
        if !ev.kind.is_node_local() {
            if recent.len() == RECENT_CAP {
                recent.pop_front();
            }
            recent.push_back(ev.clone());
        }
        let _ = self.inner.bus.send(ev.clone());
        ev
    }

    fn set_server(&self, source: Source, up: bool, detail: String) {
        let mut s = lock(&self.inner.servers);
        if let Some(st) = s.iter_mut().find(|x| x.source == source) {
            st.up = up;
            st.detail = detail;
        } else {
            s.push(ServerStatus { source, up, detail });
        }
    }

    /// The boot policy: what a MAC gets. Unknown MACs under `hold` are marked held
    /// (once per boot); under `adopt: ROLE` they are held too and their adoption is
    /// queued to the service (once per lab): this runs on a wire server's receive path
    /// and never writes lab.yaml itself. The machine boots at its next ask after.
    pub fn decide(&self, mac: Mac) -> BootDecision {
        let lab = self.lab();
        if let Some(n) = lab.node_by_mac(&mac) {
            let inv = lock(&self.inner.inventory);
            return BootDecision::Boot(firmware::with_observed_arch(&lab, &inv, n));
        }
        match &lab.file.unknown {
            UnknownPolicy::Ignore => BootDecision::Ignore,
            UnknownPolicy::Hold => {
                self.hold(mac);
                BootDecision::Hold
            }
            UnknownPolicy::Adopt(role) => {
                self.hold(mac);
                if !mac.is_group() && lock(&self.inner.adopt_queued).insert(mac) {
                    let queued = self.commands().queue(Command::Adopt {
                        mac,
                        role: role.clone(),
                        hostname: None,
                        ip: None,
                    });
                    if !queued {
                        tracing::warn!("auto-adopt of {mac} into {role}: no engine service");
                        lock(&self.inner.adopt_queued).remove(&mac);
                    }
                }
                BootDecision::Hold
            }
        }
    }

    /// Marks an unknown MAC held, announcing it once per boot.
    fn hold(&self, mac: Mac) {
        let held = lock(&self.inner.inventory)
            .get(&mac)
            .map(|r| r.state == NodeState::Held)
            .unwrap_or(false);
        if !held {
            self.emit(Some(mac), EventKind::NodeHeld);
        }
    }

    /// The command surface every face sends through (detached until a service runs).
    pub fn commands(&self) -> Commands {
        lock(&self.inner.commands).clone()
    }

    /// Sends this engine's commands to `commands` from now on (the service at start, or
    /// a test's recording queue).
    pub fn attach_commands(&self, commands: Commands) {
        *lock(&self.inner.commands) = commands;
    }

    /// The current state of everything, for faces.
    pub fn snapshot(&self) -> Snapshot {
        let lab = self.lab();
        let nodes = {
            let inv = lock(&self.inner.inventory);
            inv.iter().map(snapshot::NodeView::from).collect()
        };
        Snapshot::new(
            &lab,
            nodes,
            lock(&self.inner.servers).clone(),
            &self.inner.counters,
            self.version(),
        )
    }

    /// One node's full record (timeline and log tail included).
    pub fn node(&self, mac: &Mac) -> Option<NodeRecord> {
        lock(&self.inner.inventory).get(mac).cloned()
    }

    /// The machine an address belongs to: its configured address, the address it
    /// booted from, or the one pxelab's DHCP server leased it (in that order).
    pub fn mac_by_ip(&self, ip: IpAddr) -> Option<Mac> {
        let inv = lock(&self.inner.inventory);
        let by = |f: &dyn Fn(&NodeRecord) -> bool| inv.iter().find(|r| f(r)).map(|r| r.mac);
        by(&|r| r.ip.map(IpAddr::V4) == Some(ip))
            .or_else(|| by(&|r| r.seen_ip == Some(ip)))
            .or_else(|| by(&|r| r.leased_ip.map(IpAddr::V4) == Some(ip)))
    }

    /// Finds a MAC by MAC text or hostname.
    pub fn resolve_node(&self, key: &str) -> Option<Mac> {
        if let Ok(m) = key.parse::<Mac>() {
            return Some(m);
        }
        self.lab().node_by_hostname(key).map(|n| n.mac)
    }

    /// Replaces the lab in memory (after a reload or write-back) and re-syncs the inventory.
    pub fn replace_lab(&self, lab: Lab) {
        let n = lab.file.nodes.len();
        self.put_lab(lab);
        self.emit(None, EventKind::ConfigLoaded { nodes: n });
    }

    /// Puts `lab` in force and re-syncs the inventory, announcing nothing.
    fn put_lab(&self, lab: Lab) {
        lock(&self.inner.inventory).sync_with(&lab.file.nodes);
        lock(&self.inner.adopt_queued).clear();
        match self.inner.lab.write() {
            Ok(mut g) => *g = Arc::new(lab),
            Err(p) => *p.into_inner() = Arc::new(lab),
        }
    }

    /// Reports lab.yaml text that did not validate; the lab in force stays, and this text
    /// is remembered so the same bad file is reported once.
    pub fn lab_rejected(&self, text: String, error: String) {
        self.emit(None, EventKind::ConfigRejected { error });
        let mut stale = (*self.lab()).clone();
        stale.source = text;
        match self.inner.lab.write() {
            Ok(mut g) => *g = Arc::new(stale),
            Err(p) => *p.into_inner() = Arc::new(stale),
        }
    }

    /// Suggests a hostname for a MAC adopted into `role`, from the lab's pattern.
    pub fn suggest_hostname(&self, mac: Mac, role: &str) -> String {
        crate::config::suggest_hostname(&self.lab(), mac, role)
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn reply(msg: &str, ip: [u8; 4], proxy: bool) -> EventKind {
        EventKind::DhcpReply {
            msg: msg.to_string(),
            yiaddr: Some(Ipv4Addr::from(ip)),
            boot_file: None,
            proxy,
        }
    }

    #[test]
    fn an_address_names_its_machine_configured_booted_or_leased() {
        let text = "name: t\nboot: {kernel: k}\nnodes:\n  - {mac: 52:54:00:00:00:01, hostname: a, role: k3s-server, ip: 10.0.0.11}\n";
        let lab = Lab::parse(std::path::Path::new("/tmp/lab.yaml"), text).unwrap();
        let engine = Engine::new(lab);
        let known: Mac = "52:54:00:00:00:01".parse().unwrap();
        let held: Mac = "52:54:00:00:00:99".parse().unwrap();
        let ip = |a: [u8; 4]| IpAddr::from(a);
        assert_eq!(engine.mac_by_ip(ip([10, 0, 0, 11])), Some(known));
        // An offer is not a lease, and a proxy reply gives no address.
        engine.emit(Some(held), reply("offer", [10, 0, 0, 120], false));
        engine.emit(Some(held), reply("ack", [10, 0, 0, 121], true));
        assert_eq!(engine.mac_by_ip(ip([10, 0, 0, 120])), None);
        assert_eq!(engine.mac_by_ip(ip([10, 0, 0, 121])), None);
        engine.emit(Some(held), reply("ack", [10, 0, 0, 120], false));
        assert_eq!(engine.mac_by_ip(ip([10, 0, 0, 120])), Some(held));
        // A lease unlocks nothing: the address a node booted from stays unset.
        assert_eq!(engine.node(&held).unwrap().seen_ip, None);
        assert_eq!(engine.mac_by_ip(ip([10, 0, 0, 7])), None);
    }

    pub(super) fn pxe_discover(ipxe: bool) -> EventKind {
        EventKind::DhcpDiscover {
            msg: "discover".into(),
            arch: Some(0),
            vendor_class: Some("PXEClient:Arch:00000:UNDI:002001".into()),
            uuid: None,
            relay: None,
            ipxe,
            pxe_port: false,
        }
    }

    #[test]
    fn a_held_mac_is_announced_once_and_stays_held_until_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.yaml");
        let text = "name: t\nboot: {kernel: k}\nunknown: hold\nnodes: []\n";
        std::fs::write(&path, text).unwrap();
        let engine = Engine::new(Lab::parse(&path, text).unwrap());
        let mut rx = engine.subscribe();
        let mac: Mac = "52:54:00:00:00:99".parse().unwrap();
        let offer = EventKind::DhcpReply {
            msg: "offer".into(),
            yiaddr: None,
            boot_file: Some("undionly.kpxe".into()),
            proxy: true,
        };
        // Two boots' worth of rounds: PXE ROM, offer, iPXE, each asking the policy.
        for _ in 0..2 {
            for kind in [pxe_discover(false), offer.clone(), pxe_discover(true)] {
                engine.emit(Some(mac), kind);
                assert_eq!(engine.decide(mac), BootDecision::Hold);
                assert_eq!(engine.node(&mac).unwrap().state, NodeState::Held);
            }
        }
        let mut held = 0;
        while let Ok(ev) = rx.try_recv() {
            held += usize::from(matches!(ev.kind, EventKind::NodeHeld));
        }
        assert_eq!(held, 1, "node-held is announced once");
        // The rounds stay in its timeline.
        assert!(engine.node(&mac).unwrap().timeline.len() >= 7);
        engine.emit(
            Some(mac),
            EventKind::NodeAdopted {
                role: "k3s-agent".into(),
                hostname: "n".into(),
            },
        );
        assert_eq!(engine.node(&mac).unwrap().state, NodeState::Adopted);
        engine.emit(Some(mac), offer);
        assert_eq!(engine.node(&mac).unwrap().state, NodeState::Offered);
    }
}
