//! One simulated machine's boot, step by step over the real protocols:
//! PXE ROM DHCP → TFTP iPXE binary → iPXE DHCP → boot script (waiting while held) →
//! kernel and initrds → initramfs DHCP and modloop → NoCloud data → sshd → tiny-cloud
//! phases → k3s. Every network step has a timeout; every step is timed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::UdpSocket;

use super::dhcp::{self, Asker, DhcpTarget};
use super::http;
use super::Env;
use crate::mac::Mac;

/// What the node is meant to become (used when its user-data does not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// k3s server.
    Server,
    /// k3s agent.
    Agent,
}

/// A realistic failure to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The agent's k3s token does not match the server's: `token CA hash does not match`.
    WrongToken,
    /// Stops after fetching kernel and initrd (no network in the initramfs).
    StallAfterInitrd,
    /// Fetches its NoCloud data but never starts sshd.
    NoSshd,
    /// tiny-cloud's `userdata_packages` fails; sshd runs, bootstrap never completes.
    CloudActionFails,
    /// k3s logs that it starts, then nothing more.
    K3sSilent,
    /// Reports 5 % of its memory and root free (and boots on).
    LowMemory,
    /// k3s (or the system) logs a failure of this class, then stops.
    Logs(crate::engine::event::K3sFailure),
}

/// One simulated machine.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its MAC.
    pub mac: Mac,
    /// The loopback address it sends from (e.g. 127.1.0.10) until DHCP gives another.
    pub address: Ipv4Addr,
    /// Its role when user-data does not tell.
    pub role: Role,
    /// A failure to act out.
    pub fault: Option<Fault>,
    /// Power-on delay (before speed scaling).
    pub power_on_after: Duration,
    /// Never comes back from a reboot (hangs in POST): a roll must stop at it.
    pub hangs_on_reboot: bool,
}

impl Node {
    /// A k3s agent at `address`, powered on at once.
    pub fn new(mac: Mac, address: Ipv4Addr) -> Node {
        Node {
            mac,
            address,
            role: Role::Agent,
            fault: None,
            power_on_after: Duration::ZERO,
            hangs_on_reboot: false,
        }
    }

    /// Sets the role.
    pub fn role(mut self, role: Role) -> Node {
        self.role = role;
        self
    }

    /// Injects a failure.
    pub fn fault(mut self, fault: Fault) -> Node {
        self.fault = Some(fault);
        self
    }

    /// Makes it hang after its next reboot, never booting again.
    pub fn hangs_on_reboot(mut self) -> Node {
        self.hangs_on_reboot = true;
        self
    }

    /// Delays power-on.
    pub fn power_on_after(mut self, d: Duration) -> Node {
        self.power_on_after = d;
        self
    }
}

/// A step of the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// DHCP from the PXE ROM.
    DhcpPxe,
    /// TFTP of the iPXE binary.
    Tftp,
    /// DHCP from iPXE.
    DhcpIpxe,
    /// The wait loop of a held machine (until adopted).
    Held,
    /// The node's boot script.
    Script,
    /// The kernel.
    Kernel,
    /// The initrds.
    Initrd,
    /// DHCP from the initramfs (`ip=dhcp`).
    DhcpInitramfs,
    /// The modloop.
    Modloop,
    /// NoCloud meta-data, user-data, vendor-data, network-config.
    NoCloud,
    /// sshd listening.
    Ssh,
    /// tiny-cloud main and final phases.
    TinyCloud,
    /// k3s server up or agent joined.
    K3s,
}

/// One step's result.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// Which step.
    pub step: Step,
    /// Whether it succeeded.
    pub ok: bool,
    /// When it started, ms after power-on.
    pub start_ms: u64,
    /// How long it took.
    pub ms: u64,
    /// Bytes, file names or the error.
    pub detail: String,
}

/// How a node's boot ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// k3s server up, or agent joined.
    Joined,
    /// Failed as the injected fault says it should.
    ExpectedFailure {
        /// The fault.
        fault: Fault,
    },
    /// Failed.
    Failed {
        /// The step.
        step: Step,
    },
    /// Stopped before the end (cancelled).
    Stopped,
}

/// A node's boot, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct NodeResult {
    /// Its MAC.
    pub mac: Mac,
    /// Hostname from meta-data.
    pub hostname: Option<String>,
    /// The address it ended with.
    pub address: Ipv4Addr,
    /// Steps in order.
    pub steps: Vec<StepResult>,
    /// Whether it was held in the wait loop first.
    pub held: bool,
    /// How it ended.
    pub outcome: Outcome,
}

impl NodeResult {
    /// The result of a step, if reached.
    pub fn step(&self, s: Step) -> Option<&StepResult> {
        self.steps.iter().find(|r| r.step == s)
    }

    /// Whether the step was reached and succeeded.
    pub fn ok(&self, s: Step) -> bool {
        self.step(s).is_some_and(|r| r.ok)
    }
}

struct Run<'a> {
    env: &'a Env,
    node: &'a Node,
    /// Ends this boot's sshd and its sessions (a reboot or power-off of the machine).
    boot_cancel: tokio_util::sync::CancellationToken,
    t0: Instant,
    addr: Ipv4Addr,
    steps: Vec<StepResult>,
    held: bool,
    hostname: Option<String>,
}

/// Why a step failed (the message goes into the step's detail).
type StepErr = String;

impl Run<'_> {
    fn record(&mut self, step: Step, start: Instant, r: &Result<String, StepErr>) {
        let (ok, detail) = match r {
            Ok(d) => (true, d.clone()),
            Err(e) => (false, e.clone()),
        };
        self.steps.push(StepResult {
            step,
            ok,
            start_ms: start.duration_since(self.t0).as_millis() as u64,
            ms: start.elapsed().as_millis() as u64,
            detail,
        });
    }

    fn finish(self, outcome: Outcome) -> NodeResult {
        NodeResult {
            mac: self.node.mac,
            hostname: self.hostname,
            address: self.addr,
            steps: self.steps,
            held: self.held,
            outcome,
        }
    }

    async fn udp(&self) -> Result<UdpSocket, StepErr> {
        UdpSocket::bind(SocketAddr::new(IpAddr::V4(self.addr), 0))
            .await
            .map_err(|e| format!("bind {}: {e}", self.addr))
    }

    async fn dhcp(&self, asker: Asker) -> Result<dhcp::Lease, StepErr> {
        let sock = self.udp().await?;
        let target = DhcpTarget {
            server: SocketAddr::new(IpAddr::V4(self.env.server), self.env.dhcp_port),
            pxe_port: self.env.pxe_port,
            timeout: self.env.dhcp_wait,
            tries: self.env.dhcp_tries,
        };
        dhcp::acquire(&sock, self.node.mac, asker, &target)
            .await
            .map_err(|e| e.to_string())
    }

    async fn get(&self, url: &str, keep: bool) -> Result<http::Response, StepErr> {
        http::get(IpAddr::V4(self.addr), url, keep, self.env.step_timeout)
            .await
            .map_err(|e| e.to_string())
    }

    async fn get_ok(&self, url: &str, keep: bool) -> Result<http::Response, StepErr> {
        let r = self.get(url, keep).await?;
        if r.status != 200 {
            return Err(format!("GET {url}: HTTP {}", r.status));
        }
        Ok(r)
    }
}

/// Boots one node. Its sshd (when the environment serves SSH) keeps running after this
/// returns, until the environment's cancel token fires.
pub async fn boot(env: &Env, node: &Node) -> NodeResult {
    let mut run = Run {
        env,
        node,
        boot_cancel: env.cancel.child_token(),
        t0: Instant::now(),
        addr: node.address,
        steps: Vec::new(),
        held: false,
        hostname: None,
    };
    tokio::select! {
        _ = env.cancel.cancelled() => run_stopped(run),
        r = boot_inner(&mut run) => match r {
            Some(outcome) => run.finish(outcome),
            None => {
                let step = run.steps.last().map(|s| s.step).unwrap_or(Step::DhcpPxe);
                run.finish(Outcome::Failed { step })
            }
        },
    }
}

fn run_stopped(run: Run<'_>) -> NodeResult {
    run.finish(Outcome::Stopped)
}

/// A booted machine as its sshd sees it: what `reboot` and `poweroff` act on.
#[derive(Clone)]
pub struct Machine {
    /// The lab it boots in.
    pub env: Env,
    /// The machine.
    pub node: Node,
    /// Its name in the k3s cluster.
    pub name: String,
    /// Whether it runs the k3s server.
    pub k3s_server: bool,
    /// Ends this boot (its sshd and sessions).
    pub boot_cancel: tokio_util::sync::CancellationToken,
}

/// How long a machine takes from `reboot` to its firmware's first DHCP (before speed).
const REBOOT_DOWN: Duration = Duration::from_millis(2000);

/// `reboot` (or `poweroff` with `off`) as the machine's init runs it: the exit status
/// goes out first, then sshd and its sessions end, k3s leaves the cluster (the server
/// takes its API down), and after a while the firmware boots it again over the network
/// (unless it was powered off, or is a machine that hangs on reboot).
pub fn power_cycle(m: Machine, off: bool) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        m.boot_cancel.cancel();
        m.env.cluster.leave(&m.name, m.k3s_server);
        if off || m.node.hangs_on_reboot {
            return;
        }
        m.env.pause(REBOOT_DOWN).await;
        let r = boot(&m.env, &m.node).await;
        tracing::debug!("sim {}: boot after reboot: {:?}", m.node.mac, r.outcome);
    });
}

macro_rules! step {
    ($run:expr, $step:expr, $body:expr) => {{
        let start = Instant::now();
        let r: Result<_, StepErr> = async { $body }.await;
        let rec: Result<String, StepErr> = match &r {
            Ok((_, d)) => Ok(d.clone()),
            Err(e) => Err(e.clone()),
        };
        $run.record($step, start, &rec);
        match r {
            Ok((v, _)) => v,
            Err(_) => return None,
        }
    }};
}

mod firmware;
mod system;

use firmware::boot_inner;
