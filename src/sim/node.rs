//! One simulated machine's boot, step by step over the real protocols:
//! PXE ROM DHCP → TFTP iPXE binary → iPXE DHCP → boot script (waiting while held) →
//! kernel and initrds → initramfs DHCP and modloop → NoCloud data → sshd → tiny-cloud
//! phases → k3s. Every network step has a timeout; every step is timed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::{TcpListener, UdpSocket};

use super::cluster::{JoinCheck, K3S_VERSION};
use super::dhcp::{self, Asker, DhcpTarget};
use super::http;
use super::ipxe::{self, ScriptAction};
use super::logs::NodeLogs;
use super::ssh::{self, SshdState};
use super::tftp::{self, TftpOptions};
use super::userdata::{self, Seed};
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

async fn boot_inner(run: &mut Run<'_>) -> Option<Outcome> {
    let env = run.env;
    let mac = run.node.mac;
    env.pause(run.node.power_on_after).await;
    run.t0 = Instant::now();
    // Firmware POST, then the PXE ROM's DISCOVER.
    env.pause_ms(1500).await;
    let lease = step!(run, Step::DhcpPxe, {
        run.dhcp(Asker::PxeRom).await.map(|l| {
            let d = format!(
                "{} file {}",
                l.yiaddr
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "proxy".into()),
                l.boot_file.clone().unwrap_or_default()
            );
            (l, d)
        })
    });
    if let Some(ip) = lease.yiaddr.filter(|a| a.is_loopback()) {
        run.addr = ip;
    }
    let boot_file = lease.boot_file.clone().unwrap_or_default();
    if boot_file.is_empty() {
        run.record(
            Step::Tftp,
            Instant::now(),
            &Err("no boot file offered".into()),
        );
        return None;
    }
    if !boot_file.starts_with("http://") {
        let tftp_server = if lease.siaddr.is_unspecified() {
            env.server
        } else {
            lease.siaddr
        };
        step!(run, Step::Tftp, {
            let sock = run.udp().await?;
            let to = SocketAddr::new(IpAddr::V4(tftp_server), env.tftp_port);
            let opts = TftpOptions::default();
            match tokio::time::timeout(env.step_timeout, tftp::read(&sock, to, &boot_file, &opts))
                .await
            {
                Err(_) => Err(format!("tftp {boot_file}: timed out")),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(got)) if got.data.is_empty() => Err(format!("tftp {boot_file}: empty file")),
                Ok(Ok(got)) => Ok((
                    (),
                    format!("{boot_file} {} B blksize {}", got.data.len(), got.blksize),
                )),
            }
        });
        // iPXE starts, prints its banner, opens the NIC.
        env.pause_ms(800).await;
    }
    let script_url = if boot_file.starts_with("http://") {
        boot_file
    } else {
        let l = step!(run, Step::DhcpIpxe, {
            run.dhcp(Asker::Ipxe).await.map(|l| {
                let d = l.boot_file.clone().unwrap_or_default();
                (l, d)
            })
        });
        if let Some(ip) = l.yiaddr.filter(|a| a.is_loopback()) {
            run.addr = ip;
        }
        match l.boot_file {
            Some(f) if f.starts_with("http://") => ipxe::expand(&f, mac),
            other => {
                run.record(
                    Step::Script,
                    Instant::now(),
                    &Err(format!("iPXE was offered {other:?}, not an HTTP script (it would chainload forever)")),
                );
                return None;
            }
        }
    };
    // The script, following the wait loop while held.
    let start = Instant::now();
    let mut url = script_url;
    let mut held_since: Option<Instant> = None;
    let (kernel, cmdline, initrds) = loop {
        let r = run.get_ok(&url, true).await;
        let text = match r {
            Ok(r) => r.text(),
            Err(e) => {
                run.record(Step::Script, start, &Err(e));
                return None;
            }
        };
        match ipxe::parse(&text, mac) {
            Ok(ScriptAction::Boot {
                kernel,
                cmdline,
                initrds,
            }) => break (kernel, cmdline, initrds),
            Ok(ScriptAction::Chain { url: next, sleep_s }) => {
                let since = *held_since.get_or_insert_with(Instant::now);
                run.held = true;
                if since.elapsed() > env.hold_timeout {
                    run.record(
                        Step::Held,
                        since,
                        &Err("still held when the hold timeout ran out".into()),
                    );
                    return None;
                }
                // iPXE's `sleep` is wall time; the demo's speed scales it too.
                env.pause(Duration::from_secs(sleep_s.max(1))).await;
                url = next;
            }
            Err(e) => {
                run.record(Step::Script, start, &Err(format!("{url}: {e}")));
                return None;
            }
        }
    };
    if let Some(since) = held_since {
        run.record(Step::Held, since, &Ok("released by adoption".into()));
    }
    run.record(Step::Script, start, &Ok(url.clone()));
    step!(run, Step::Kernel, {
        run.get_ok(&kernel, false)
            .await
            .map(|r| ((), format!("{} B", r.bytes)))
    });
    step!(run, Step::Initrd, {
        let mut total = 0;
        let mut res = Ok(());
        for i in &initrds {
            match run.get_ok(i, false).await {
                Ok(r) => total += r.bytes,
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        res.map(|_| ((), format!("{} file(s), {total} B", initrds.len())))
    });
    if let Some(f @ Fault::StallAfterInitrd) = run.node.fault {
        return Some(Outcome::ExpectedFailure { fault: f });
    }
    // The kernel boots; the initramfs brings the NIC up with ip=dhcp.
    env.pause_ms(4000).await;
    if lease.yiaddr.is_some() && cmdline.split_whitespace().any(|w| w == "ip=dhcp") {
        let l = step!(run, Step::DhcpInitramfs, {
            run.dhcp(Asker::Udhcpc).await.map(|l| {
                (
                    l.clone(),
                    l.yiaddr.map(|a| a.to_string()).unwrap_or_default(),
                )
            })
        });
        if let Some(ip) = l.yiaddr.filter(|a| a.is_loopback()) {
            run.addr = ip;
        }
    }
    if let Some(m) = ipxe::param(&cmdline, "modloop").filter(|m| m.starts_with("http://")) {
        let m = m.to_string();
        step!(run, Step::Modloop, {
            run.get_ok(&m, false)
                .await
                .map(|r| ((), format!("{} B", r.bytes)))
        });
    }
    let logs = NodeLogs::new();
    if run.node.fault == Some(Fault::LowMemory) {
        logs.set_free_pct(5);
    }
    boot_phase(run, &logs, &cmdline).await
}

async fn boot_phase(run: &mut Run<'_>, logs: &NodeLogs, cmdline: &str) -> Option<Outcome> {
    let env = run.env;
    env.pause_ms(800).await;
    let pid = logs.next_pid();
    logs.tiny_cloud("boot", pid, "expand_root", "starting");
    logs.tiny_cloud("boot", pid, "expand_root", "skipped");
    logs.tiny_cloud("boot", pid, "set_network_interfaces", "starting");
    logs.tiny_cloud("boot", pid, "set_network_interfaces", "done");
    let Some(seed_url) = ipxe::nocloud_seed(cmdline) else {
        run.record(
            Step::NoCloud,
            Instant::now(),
            &Err("no ds=nocloud;s= on the kernel command line".into()),
        );
        return None;
    };
    // tiny-cloud builds "$s/$file": an s= ending in / gives //meta-data, as on a real node.
    let (meta, user) = step!(run, Step::NoCloud, {
        let mut got = Vec::new();
        let mut res = Ok(());
        for f in ["meta-data", "user-data", "vendor-data", "network-config"] {
            match run.get(&format!("{seed_url}/{f}"), true).await {
                Ok(r) if r.status == 200 => got.push((f, r.text())),
                Ok(r) if r.status == 404 && (f == "vendor-data" || f == "network-config") => {}
                Ok(r) => {
                    res = Err(format!("{seed_url}/{f}: HTTP {}", r.status));
                    break;
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        res.map(|_| {
            let find = |n: &str| {
                got.iter()
                    .find(|(f, _)| *f == n)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default()
            };
            let names: Vec<&str> = got.iter().map(|(f, _)| *f).collect();
            ((find("meta-data"), find("user-data")), names.join(","))
        })
    });
    let seed = userdata::parse(&meta, &user);
    run.hostname = seed.hostname.clone();
    logs.tiny_cloud("boot", pid, "enable_sshd", "starting");
    logs.tiny_cloud("boot", pid, "enable_sshd", "done");
    env.pause_ms(300).await;
    let pid = logs.next_pid();
    logs.tiny_cloud("early", pid, "save_userdata", "starting");
    logs.tiny_cloud("early", pid, "save_userdata", "done");
    env.pause_ms(500).await;
    let pid = logs.next_pid();
    for action in ["set_default_user", "set_access"] {
        logs.tiny_cloud("main", pid, action, "starting");
        logs.tiny_cloud("main", pid, action, "done");
    }
    logs.tiny_cloud("main", pid, "set_hostname", "starting");
    if let Some(h) = &seed.hostname {
        logs.set_hostname(h);
    }
    logs.tiny_cloud("main", pid, "set_hostname", "done");
    for action in ["set_ssh_keys", "userdata_write_files"] {
        logs.tiny_cloud("main", pid, action, "starting");
        env.pause_ms(200).await;
        logs.tiny_cloud("main", pid, action, "done");
    }
    logs.tiny_cloud("main", pid, "userdata_packages", "starting");
    env.pause_ms(1200).await;
    let status = match run.node.fault {
        Some(Fault::CloudActionFails) => "failed",
        _ => "done",
    };
    logs.tiny_cloud("main", pid, "userdata_packages", status);
    if let Some(f @ Fault::NoSshd) = run.node.fault {
        return Some(Outcome::ExpectedFailure { fault: f });
    }
    // sshd starts after main.
    let k3s_server = seed.k3s_server.unwrap_or(run.node.role == Role::Server);
    let fallback = env
        .lab
        .as_ref()
        .and_then(|l| crate::secrets::for_node(l, run.node.mac).ok());
    step!(
        run,
        Step::Ssh,
        start_sshd(run, logs, &seed, fallback.as_ref(), k3s_server).await
    );
    if let Some(f @ Fault::CloudActionFails) = run.node.fault {
        return Some(Outcome::ExpectedFailure { fault: f });
    }
    env.pause_ms(700).await;
    let pid = logs.next_pid();
    logs.tiny_cloud("final", pid, "userdata_runcmd", "starting");
    env.pause_ms(400).await;
    logs.tiny_cloud("final", pid, "userdata_runcmd", "done");
    logs.tiny_cloud("final", pid, "bootstrap_complete", "starting");
    logs.mark_complete();
    logs.syslog(
        "local7.info",
        &format!("tiny-cloud/final[{pid}]"),
        "bootstrap marked complete",
    );
    logs.tiny_cloud("final", pid, "bootstrap_complete", "done");
    run.record(
        Step::TinyCloud,
        Instant::now(),
        &Ok("bootstrap complete".into()),
    );
    let token = seed.k3s_token.clone().or_else(|| {
        fallback
            .as_ref()
            .map(|s| s.k3s_token.clone())
            .filter(|t| !t.is_empty())
    });
    k3s(run, logs, k3s_server, token).await
}

async fn start_sshd(
    run: &Run<'_>,
    logs: &NodeLogs,
    seed: &Seed,
    fallback: Option<&crate::secrets::NodeSecrets>,
    k3s_server: bool,
) -> Result<((), String), StepErr> {
    let env = run.env;
    let pem = seed
        .host_private_key
        .clone()
        .or_else(|| fallback.and_then(|s| s.host_private_key.clone()));
    let (host_key, pinned) = match pem.as_deref().map(russh::keys::PrivateKey::from_openssh) {
        Some(Ok(k)) => (k, true),
        Some(Err(e)) => return Err(format!("host key from user-data does not parse: {e}")),
        None => {
            let seed: [u8; 32] = rand::random();
            let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
            (russh::keys::PrivateKey::from(pair), false)
        }
    };
    let mut keys: Vec<String> = seed.authorized_keys.clone();
    if let Some(k) = fallback.and_then(|s| s.operator_public_key.clone()) {
        keys.push(k);
    }
    let authorized: Vec<_> = keys
        .iter()
        .filter_map(|k| russh::keys::PublicKey::from_openssh(k.trim()).ok())
        .collect();
    let bind = SocketAddr::new(IpAddr::V4(run.addr), env.ssh_port);
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| format!("sshd cannot listen on {bind}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    if env.serve_ssh {
        ssh::spawn(
            listener,
            host_key,
            SshdState {
                logs: logs.clone(),
                cluster: env.cluster.clone(),
                k3s_server,
                authorized: authorized.clone(),
                user: env.ssh_user.clone(),
            },
            env.cancel.clone(),
        );
    }
    logs.syslog(
        "auth.info",
        &format!("sshd[{}]", logs.next_pid()),
        &format!("Server listening on {} port {}.", local.ip(), local.port()),
    );
    Ok((
        (),
        format!(
            "{local} ({} host key, {} authorised key(s))",
            if pinned { "pinned" } else { "random" },
            authorized.len()
        ),
    ))
}

fn mangle(token: Option<String>) -> Option<String> {
    // A token copied from another cluster: same shape, other CA hash.
    Some(match token {
        Some(t) if t.starts_with("K10") => {
            format!("K10{}", "0".repeat(64)) + &t[t.find("::").unwrap_or(t.len())..]
        }
        Some(t) => format!("{t}-from-another-cluster"),
        None => "K10stale::server:stale".to_string(),
    })
}

async fn k3s(
    run: &mut Run<'_>,
    logs: &NodeLogs,
    server: bool,
    token: Option<String>,
) -> Option<Outcome> {
    let env = run.env;
    let name = run
        .hostname
        .clone()
        .unwrap_or_else(|| run.node.mac.compact());
    let start = Instant::now();
    env.pause_ms(600).await;
    match run.node.fault {
        Some(f @ Fault::K3sSilent) => {
            logs.k3s(
                "info",
                &format!("Starting k3s agent {K3S_VERSION} (a562d090)"),
                "",
            );
            return Some(Outcome::ExpectedFailure { fault: f });
        }
        Some(f @ Fault::Logs(class)) => {
            let ip = env.cluster.server_address().unwrap_or(env.server);
            logs.k3s(
                "info",
                &format!("Starting k3s agent {K3S_VERSION} (a562d090)"),
                "",
            );
            super::faults::write_lines(logs, class, &format!("https://{ip}:6443"));
            return Some(Outcome::ExpectedFailure { fault: f });
        }
        _ => {}
    }
    if server && env.cluster.claim_server(run.addr, token.clone()) {
        logs.k3s(
            "info",
            &format!("Starting k3s {K3S_VERSION} (a562d090)"),
            "",
        );
        logs.k3s("info", "Configuring sqlite3 database connection pooling: maxIdleConns=2, maxOpenConns=0, connMaxLifetime=0s", "");
        logs.k3s(
            "info",
            "Configuring database table schema and indexes, this may take a moment...",
            "",
        );
        logs.k3s("info", "Database tables and indexes are up to date", "");
        logs.k3s("info", "Kine available at unix://kine.sock", "");
        env.pause_ms(2500).await;
        logs.k3s("info", "Waiting for API server to become available", "");
        env.pause_ms(5000).await;
        logs.k3s("info", "Kube API server is now running", "");
        env.cluster.api_up();
        env.pause_ms(1500).await;
        logs.k3s("info", "k3s is up and running", "");
        logs.k3s("info", "Wrote kubeconfig /etc/rancher/k3s/k3s.yaml", "");
        env.cluster
            .join(&name, run.addr, true, env.scaled(Duration::from_secs(3)));
        env.pause_ms(1000).await;
        logs.k3s(
            "info",
            &format!("Annotations and labels have been set successfully on node: {name}"),
            "",
        );
        run.record(Step::K3s, start, &Ok("k3s is up and running".into()));
        return Some(Outcome::Joined);
    }
    let token = if run.node.fault == Some(Fault::WrongToken) {
        mangle(token)
    } else {
        token
    };
    let server_ip = env.cluster.server_address().unwrap_or(env.server);
    let url = format!("https://{server_ip}:6443");
    let mut attempts = 0;
    loop {
        logs.k3s(
            "info",
            &format!("Starting k3s agent {K3S_VERSION} (a562d090)"),
            "",
        );
        if !env.cluster.is_api_up() {
            logs.k3s(
                "info",
                &format!("Waiting to retrieve agent configuration; server is not ready: Get \"{url}/v1-k3s/serving-kubelet.crt\": dial tcp {server_ip}:6443: connect: connection refused"),
                "",
            );
            if !env.cluster.wait_api(env.k3s_timeout).await {
                run.record(Step::K3s, start, &Err("server API never came up".into()));
                return None;
            }
            continue;
        }
        env.pause_ms(800).await;
        match env.cluster.check_token(token.as_deref()) {
            JoinCheck::Accepted => break,
            JoinCheck::TokenMismatch { ours, theirs } => {
                let line = format!(
                    "Failed to validate connection to cluster at {url}: token CA hash does not match the Cluster CA certificate hash: {} != {}",
                    &ours[..ours.len().min(64)],
                    &theirs[..theirs.len().min(64)]
                );
                logs.k3s("fatal", &line, "");
                attempts += 1;
                if attempts >= 2 {
                    run.record(
                        Step::K3s,
                        start,
                        &Err("token CA hash does not match".into()),
                    );
                    return Some(match run.node.fault {
                        Some(f) => Outcome::ExpectedFailure { fault: f },
                        None => Outcome::Failed { step: Step::K3s },
                    });
                }
                // supervise-daemon restarts k3s.
                env.pause_ms(3000).await;
            }
        }
    }
    let ws = format!("wss://{server_ip}:6443/v1-k3s/connect");
    logs.k3s("info", "Connecting to proxy", &format!("url=\"{ws}\""));
    env.pause_ms(1200).await;
    logs.k3s(
        "info",
        "Remotedialer connected to proxy",
        &format!("url=\"{ws}\""),
    );
    env.pause_ms(1500).await;
    env.cluster
        .join(&name, run.addr, false, env.scaled(Duration::from_secs(2)));
    logs.k3s(
        "info",
        &format!("Annotations and labels have been set successfully on node: {name}"),
        "",
    );
    run.record(Step::K3s, start, &Ok(format!("joined {url}")));
    Some(Outcome::Joined)
}
