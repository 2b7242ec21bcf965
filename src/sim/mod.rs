//! Simulated nodes that boot over the real protocols, for `pxelab demo`, tests and
//! boot-storm benchmarks.
//!
//! A simulated node is a client of pxelab's real servers on loopback: it sends DHCP as a
//! PXE ROM and as iPXE (unicast from its own 127.x address; pxelab answers to the
//! source address on loopback), fetches the iPXE binary over TFTP, its script, kernel,
//! initrds and NoCloud data over HTTP, then runs an sshd (russh) with the host key and
//! authorised keys its user-data gave it, writing tiny-cloud and k3s log lines in their
//! real formats as it "boots".
//!
//! ```ignore
//! # async fn f(lab: std::sync::Arc<pxelab::config::Lab>) {
//! use pxelab::sim::{Lab, Node, Role};
//! let sim = Lab::for_lab(lab).speed(20.0).concurrency(64);
//! let nodes = vec![Node::new("52:54:00:00:00:01".parse().unwrap(), "127.1.0.10".parse().unwrap()).role(Role::Server)];
//! let results = sim.run(nodes).await;
//! # }
//! ```
//!
//! Each node gets its own loopback address (127.1.x.y) so that pxelab sees one client
//! per node, exactly as on a LAN, and its sshd listens on `ssh.port` of that address.

pub mod cluster;
pub mod demo;
pub mod dhcp;
pub mod faults;
pub mod http;
pub mod ipxe;
pub mod logs;
pub mod node;
pub mod ssh;
pub mod tftp;
pub mod userdata;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use cluster::Cluster;
pub use node::{Fault, Node, NodeResult, Outcome, Role, Step, StepResult};

/// Everything a simulated node needs to know about the lab it boots in.
#[derive(Clone)]
pub struct Env {
    /// pxelab's address.
    pub server: Ipv4Addr,
    /// DHCP port.
    pub dhcp_port: u16,
    /// PXE boot-server port.
    pub pxe_port: u16,
    /// TFTP port.
    pub tftp_port: u16,
    /// Port the nodes' sshd listens on (0: any).
    pub ssh_port: u16,
    /// Login user on the nodes.
    pub ssh_user: String,
    /// Whether nodes run their sshd (benchmarks may skip it).
    pub serve_ssh: bool,
    /// Speed factor: delays are divided by it.
    pub speed: f64,
    /// Limit on each network step.
    pub step_timeout: Duration,
    /// Wait per DHCP attempt.
    pub dhcp_wait: Duration,
    /// DHCP attempts per message.
    pub dhcp_tries: u32,
    /// How long a held node waits to be adopted.
    pub hold_timeout: Duration,
    /// At most this many rounds of the wait loop (boot-script fetches) while held; past
    /// them the node gives up as when [`Env::hold_timeout`] runs out. `None`: no count.
    pub hold_rounds: Option<u32>,
    /// How long an agent waits for the k3s server.
    pub k3s_timeout: Duration,
    /// The shared k3s cluster.
    pub cluster: Cluster,
    /// The lab, for secrets when user-data does not carry them.
    pub lab: Option<Arc<crate::config::Lab>>,
    /// Stops every node (and their sshd).
    pub cancel: CancellationToken,
}

impl Env {
    /// A duration divided by the speed factor.
    pub fn scaled(&self, d: Duration) -> Duration {
        if self.speed.is_finite() && self.speed > 0.0 {
            d.div_f64(self.speed)
        } else {
            d
        }
    }

    /// Sleeps `d / speed`.
    pub async fn pause(&self, d: Duration) {
        let d = self.scaled(d);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// Sleeps `ms / speed` milliseconds.
    pub async fn pause_ms(&self, ms: u64) {
        self.pause(Duration::from_millis(ms)).await;
    }
}

/// A simulated lab: where the servers are, how fast, how many at once.
#[derive(Clone)]
pub struct Lab {
    env: Env,
    concurrency: usize,
}

impl Lab {
    /// Simulated nodes for a loaded lab.yaml (ports, server address, SSH user and port).
    pub fn for_lab(lab: Arc<crate::config::Lab>) -> Lab {
        let f = &lab.file;
        Lab {
            env: Env {
                server: lab.server_address,
                dhcp_port: f.dhcp.port,
                pxe_port: f.dhcp.pxe_port,
                tftp_port: f.tftp.port,
                ssh_port: f.ssh.port,
                ssh_user: f.ssh.user.clone(),
                serve_ssh: true,
                speed: 1.0,
                step_timeout: Duration::from_secs(30),
                dhcp_wait: Duration::from_secs(2),
                dhcp_tries: 4,
                hold_timeout: Duration::from_secs(600),
                hold_rounds: None,
                k3s_timeout: Duration::from_secs(300),
                cluster: Cluster::new(),
                lab: Some(lab.clone()),
                cancel: CancellationToken::new(),
            },
            concurrency: 256,
        }
    }

    /// Speed factor (2 = twice as fast).
    pub fn speed(mut self, s: f64) -> Lab {
        self.env.speed = if s.is_finite() && s > 0.0 { s } else { 1.0 };
        self
    }

    /// At most this many nodes booting at once.
    pub fn concurrency(mut self, n: usize) -> Lab {
        self.concurrency = n.max(1);
        self
    }

    /// Limit on each network step.
    pub fn step_timeout(mut self, d: Duration) -> Lab {
        self.env.step_timeout = d;
        self
    }

    /// How long a held node waits to be adopted.
    pub fn hold_timeout(mut self, d: Duration) -> Lab {
        self.env.hold_timeout = d;
        self
    }

    /// At most `n` rounds of the wait loop while held (a benchmark filling held
    /// machines' histories to a known depth).
    pub fn hold_rounds(mut self, n: u32) -> Lab {
        self.env.hold_rounds = Some(n);
        self
    }

    /// How long agents wait for the k3s server.
    pub fn k3s_timeout(mut self, d: Duration) -> Lab {
        self.env.k3s_timeout = d;
        self
    }

    /// Whether nodes run their sshd after booting.
    pub fn serve_ssh(mut self, on: bool) -> Lab {
        self.env.serve_ssh = on;
        self
    }

    /// Stops the nodes (and their sshd) when this token fires.
    pub fn cancel_on(mut self, cancel: CancellationToken) -> Lab {
        self.env.cancel = cancel;
        self
    }

    /// The environment nodes run in.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The shared k3s cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.env.cluster
    }

    /// Boots every node (at most `concurrency` at once) and returns their results in
    /// input order. Their sshd keep running until the cancel token fires.
    pub async fn run(&self, nodes: Vec<Node>) -> Vec<NodeResult> {
        let sem = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut set = tokio::task::JoinSet::new();
        // Permits are taken here, in order, k3s servers first: taken inside the tasks,
        // their order was the scheduler's, and agents holding every permit while they
        // waited for a server still queued for one stalled the lab until k3s_timeout.
        let mut order: Vec<(usize, Node)> = nodes.into_iter().enumerate().collect();
        order.sort_by_key(|(i, n)| (n.role != Role::Server, *i));
        for (i, n) in order {
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let env = self.env.clone();
            set.spawn(async move {
                let _permit = permit;
                (i, node::boot(&env, &n).await)
            });
        }
        let mut out: Vec<Option<NodeResult>> = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok((i, res)) = r {
                if out.len() <= i {
                    out.resize(i + 1, None);
                }
                out[i] = Some(res);
            }
        }
        out.into_iter().flatten().collect()
    }
}

/// The loopback address of simulated node `i` (127.1.0.10 upwards, 250 per /24).
pub fn node_address(i: usize) -> Ipv4Addr {
    let i = i as u32;
    let third = (i / 240) as u8;
    let fourth = (10 + i % 240) as u8;
    Ipv4Addr::new(127, 1, third, fourth)
}

/// A MAC for simulated node `i` in QEMU's 52:54:00 range.
pub fn node_mac(i: usize) -> crate::mac::Mac {
    let i = i as u32;
    crate::mac::Mac::from_slice(&[0x52, 0x54, 0x00, 0x5e, (i >> 8) as u8, i as u8])
        .unwrap_or_default()
}
