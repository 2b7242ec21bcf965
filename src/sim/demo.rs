//! `pxelab demo`: a virtual lab on loopback with simulated nodes.
//!
//! Writes a demo lab.yaml and fake boot assets into a temporary folder, starts pxelab's
//! real servers on it (DHCP server mode, TFTP, HTTP and admin on free unprivileged
//! loopback ports; the SSH watcher) and the chosen face, then powers on simulated
//! nodes: a k3s server, agents (one with a token from another cluster, so the failure
//! view has something to show), and one machine lab.yaml does not list, which is held in
//! the iPXE wait loop until adopted (`a` in the console; headless, the demo adopts it
//! itself after a few seconds and says so on stderr). No root, nothing leaves loopback.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{node_address, node_mac, Fault, Node, NodeResult, Outcome, Role};
use crate::app::Face;
use crate::engine::{Engine, EventKind, NodeState};
use crate::mac::Mac;

/// Options of `pxelab demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Number of simulated nodes.
    pub nodes: usize,
    /// The face.
    pub face: Face,
    /// Speed factor.
    pub speed: f64,
    /// Stop after this long.
    pub duration: Option<std::time::Duration>,
    /// Stop as soon as every machine is Ready or failed; with `duration`, not finishing
    /// in time is an error (the demo as a smoke test).
    pub until_done: bool,
}

/// The demo's nodes: which are in lab.yaml, which one is held, which one fails.
#[derive(Debug, Clone)]
pub struct DemoPlan {
    /// Simulated machines, in power-on order.
    pub nodes: Vec<Node>,
    /// lab.yaml entries (MAC, hostname, role, address) for the known ones.
    pub known: Vec<(Mac, String, &'static str, Ipv4Addr)>,
    /// The machine lab.yaml does not list.
    pub held: Option<Mac>,
}

/// Plans `n` nodes: node-0 the k3s server, agents after it, the second-to-last known
/// agent with a wrong token (when there are at least four), the last machine unknown.
pub fn plan(n: usize) -> DemoPlan {
    let n = n.max(1);
    let known_count = if n >= 2 { n - 1 } else { 1 };
    let mut nodes = Vec::new();
    let mut known = Vec::new();
    for i in 0..known_count {
        let (mac, addr) = (node_mac(i), node_address(i));
        let role = if i == 0 { Role::Server } else { Role::Agent };
        let mut node = Node::new(mac, addr)
            .role(role)
            .power_on_after(Duration::from_millis(400 * i as u64));
        if n >= 4 && i == known_count - 1 {
            node = node.fault(Fault::WrongToken);
        }
        known.push((
            mac,
            format!("node-{i}"),
            if i == 0 { "k3s-server" } else { "k3s-agent" },
            addr,
        ));
        nodes.push(node);
    }
    let held = (n >= 2).then(|| node_mac(known_count));
    if let Some(mac) = held {
        // Its address comes from the dynamic range; this one is only its first source.
        nodes.push(
            Node::new(mac, node_address(known_count))
                .power_on_after(Duration::from_millis(400 * known_count as u64 + 600)),
        );
    }
    DemoPlan { nodes, known, held }
}

/// Free loopback ports for the demo's servers.
#[derive(Debug, Clone, Copy)]
pub struct DemoPorts {
    /// DHCP.
    pub dhcp: u16,
    /// PXE boot server.
    pub pxe: u16,
    /// TFTP.
    pub tftp: u16,
    /// HTTP.
    pub http: u16,
    /// Admin API.
    pub admin: u16,
    /// The nodes' sshd.
    pub ssh: u16,
}

impl DemoPorts {
    /// Picks six distinct ports free for both UDP and TCP, below the kernel's ephemeral
    /// range (32768 and up) so that no outgoing socket takes one before the servers bind.
    /// The probe sockets are held until all six are chosen, then released; a process
    /// never probes the same port twice (so labs picked one after another differ).
    pub fn pick() -> std::io::Result<DemoPorts> {
        use std::sync::atomic::AtomicU32;
        const LOW: u32 = 20_000;
        const SPAN: u32 = 12_000;
        static PROBED: AtomicU32 = AtomicU32::new(0);
        let start = std::process::id().wrapping_mul(7919) % SPAN;
        let mut held = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..SPAN {
            let n = PROBED.fetch_add(1, Ordering::Relaxed);
            let port = (LOW + (start + n.wrapping_mul(13)) % SPAN) as u16;
            let (Ok(t), Ok(u)) = (
                std::net::TcpListener::bind(("0.0.0.0", port)),
                std::net::UdpSocket::bind(("0.0.0.0", port)),
            ) else {
                continue;
            };
            held.push((t, u));
            ports.push(port);
            if let [dhcp, pxe, tftp, http, admin, ssh] = ports[..] {
                return Ok(DemoPorts {
                    dhcp,
                    pxe,
                    tftp,
                    http,
                    admin,
                    ssh,
                });
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no six free ports in 20000..32000",
        ))
    }
}

/// The demo lab.yaml text.
pub fn lab_yaml(plan: &DemoPlan, ports: &DemoPorts, tftp_root: &Path) -> String {
    let mut s = format!(
        "# pxelab demo lab: everything on loopback, written by `pxelab demo`.\n\
name: demo\n\
server_address: 127.0.0.1\n\
dhcp:\n  mode: server\n  subnet: 127.0.0.0/8\n  range: [127.1.200.10, 127.1.200.250]\n  lease_time: 1h\n  port: {}\n  pxe_port: {}\n\
tftp:\n  enabled: true\n  root: {}\n  port: {}\n\
http:\n  bind: 127.0.0.1\n  port: {}\n  admin_port: {}\n\
boot:\n  assets_dir: assets\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  modloop: modloop-lts\n  \
cmdline: \"console=ttyS0 ip=dhcp alpine_repo=http://dl-cdn.alpinelinux.org/alpine/edge/main modloop={{{{ modloop_url }}}}\"\n\
ssh:\n  user: lab\n  port: {}\n\
unknown: hold\n\
nodes:\n",
        ports.dhcp,
        ports.pxe,
        tftp_root.display(),
        ports.tftp,
        ports.http,
        ports.admin,
        ports.ssh,
    );
    for (mac, host, role, ip) in &plan.known {
        s.push_str(&format!(
            "  - mac: {mac}\n    hostname: {host}\n    role: {role}\n    ip: {ip}\n"
        ));
    }
    s
}

fn fake_file(path: &Path, size: usize, magic: &[(usize, &[u8])]) -> std::io::Result<()> {
    let mut data: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for (at, bytes) in magic {
        if at + bytes.len() <= data.len() {
            data[*at..at + bytes.len()].copy_from_slice(bytes);
        }
    }
    std::fs::write(path, data)
}

/// Writes the demo's fake assets: a bzImage-shaped kernel, a gzip-shaped initramfs, a
/// squashfs-shaped modloop and an iPXE-sized undionly.kpxe.
pub fn write_assets(dir: &Path) -> std::io::Result<PathBuf> {
    let assets = dir.join("assets");
    let tftp = dir.join("tftp");
    std::fs::create_dir_all(&assets)?;
    std::fs::create_dir_all(&tftp)?;
    fake_file(
        &assets.join("vmlinuz-lts"),
        3 * 1024 * 1024,
        &[(0x1fe, &[0x55, 0xaa]), (0x202, b"HdrS")],
    )?;
    fake_file(
        &assets.join("initramfs-lts"),
        2 * 1024 * 1024,
        &[(0, &[0x1f, 0x8b, 0x08])],
    )?;
    fake_file(&assets.join("modloop-lts"), 1024 * 1024, &[(0, b"hsqs")])?;
    fake_file(
        &tftp.join("undionly.kpxe"),
        70 * 1024,
        &[(0, &[0xea, 0xf0, 0x00])],
    )?;
    for f in ["ipxe.efi", "snponly.efi"] {
        fake_file(&tftp.join(f), 1024 * 1024, &[(0, b"MZ")])?;
    }
    Ok(tftp)
}

/// A temporary folder removed on drop.
pub struct TempLab {
    /// The folder.
    pub dir: PathBuf,
}

impl TempLab {
    /// Makes `$TMPDIR/pxelab-demo-<pid>-<random>`.
    pub fn new() -> std::io::Result<TempLab> {
        let r: u32 = rand::random();
        let dir = std::env::temp_dir().join(format!("pxelab-demo-{}-{r:08x}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempLab { dir })
    }
}

impl Drop for TempLab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Adopts the held machine once it has been held for a while (headless faces only).
fn auto_adopt(engine: Engine, mac: Mac, delay: Duration, cancel: CancellationToken) {
    let mut rx = engine.subscribe();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return,
                r = rx.recv() => r,
            };
            match ev {
                Ok(ev) if ev.mac == Some(mac) && matches!(ev.kind, EventKind::NodeHeld) => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        eprintln!(
            "pxelab demo: auto-adopting held machine {mac} as k3s-agent (in the console you would press `a`)"
        );
        let adopt = crate::engine::Command::Adopt {
            mac,
            role: "k3s-agent".into(),
            hostname: None,
            ip: None,
        };
        if let Err(e) = engine.commands().send(adopt).await {
            eprintln!("pxelab demo: adopting {mac} failed: {e}");
        }
    });
}

fn summary(results: &[NodeResult]) -> String {
    let mut s = String::from("pxelab demo: simulated nodes\n");
    for r in results {
        let last = r.steps.last();
        let outcome = match &r.outcome {
            Outcome::Joined => "joined".to_string(),
            Outcome::ExpectedFailure { fault } => format!("failed as planned ({fault:?})"),
            Outcome::Failed { step } => format!(
                "FAILED at {step:?}: {}",
                last.map(|l| l.detail.as_str()).unwrap_or("")
            ),
            Outcome::Stopped => match last {
                Some(l) => format!("stopped after step {:?}", l.step),
                None => "stopped before its first step".to_string(),
            },
        };
        s.push_str(&format!(
            "  {}  {:<8} {:<15} {}{}\n",
            r.mac,
            r.hostname.as_deref().unwrap_or("-"),
            r.address,
            outcome,
            if r.held { " (was held, adopted)" } else { "" }
        ));
    }
    s
}

/// Runs the demo.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let temp = TempLab::new()?;
    let plan = plan(opts.nodes);
    let ports = DemoPorts::pick()?;
    let tftp_root = write_assets(&temp.dir)?;
    let lab_path = temp.dir.join("lab.yaml");
    std::fs::write(&lab_path, lab_yaml(&plan, &ports, &tftp_root))?;
    let lab = crate::app::load_lab(&lab_path)?;
    let lock = crate::statedir::InstanceLock::acquire(&lab)?;
    let engine = Engine::new(lab);
    let cancel = CancellationToken::new();
    crate::app::cancel_on_signals(cancel.clone());
    let headless = matches!(opts.face, Face::Headless(_));
    if headless {
        eprintln!(
            "pxelab demo: lab {} with {} simulated node(s) on loopback (DHCP :{}, TFTP :{}, HTTP :{}, admin :{}, node SSH :{})",
            lab_path.display(),
            plan.nodes.len(),
            ports.dhcp,
            ports.tftp,
            ports.http,
            ports.admin,
            ports.ssh
        );
        if let Some(mac) = plan.held {
            eprintln!("pxelab demo: {mac} is not in lab.yaml: it will be held until adopted (pxelab -c {} adopt {mac} --role k3s-agent)", lab_path.display());
        }
    }
    let rx = engine.subscribe();
    let mut starting = engine.subscribe();
    let n = engine.lab().file.nodes.len();
    engine.emit(None, EventKind::ConfigLoaded { nodes: n });
    let tasks = crate::app::start_servers(&engine, &cancel);
    // The servers listen before the first machine powers on.
    let listeners = crate::app::listeners(&engine.lab());
    if let Err(e) =
        crate::app::wait_listening(&mut starting, &listeners, Duration::from_secs(10)).await
    {
        cancel.cancel();
        return Err(e.context("pxelab demo could not start its servers on loopback"));
    }
    drop(starting);
    let speed = if opts.speed.is_finite() && opts.speed > 0.0 {
        opts.speed
    } else {
        1.0
    };
    let sim = super::Lab::for_lab(engine.lab())
        .speed(speed)
        .cancel_on(cancel.clone());
    if headless {
        if let Some(mac) = plan.held {
            auto_adopt(
                engine.clone(),
                mac,
                Duration::from_secs(4).div_f64(speed),
                cancel.clone(),
            );
        }
    }
    let results: Arc<tokio::sync::Mutex<Vec<NodeResult>>> = Arc::default();
    {
        let (results, nodes) = (results.clone(), plan.nodes.clone());
        tokio::spawn(async move {
            let r = sim.run(nodes).await;
            *results.lock().await = r;
        });
    }
    if let Some(d) = opts.duration {
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            c.cancel();
        });
    }
    let machines: Vec<Mac> = plan.nodes.iter().map(|n| n.mac).collect();
    let done = Arc::new(AtomicBool::new(false));
    if opts.until_done {
        stop_when_done(
            engine.clone(),
            machines.clone(),
            done.clone(),
            cancel.clone(),
        );
    }
    let watched = engine.clone();
    let mut outcome = crate::app::run_face(engine, rx, cancel.clone(), opts.face, tasks).await;
    cancel.cancel();
    // The nodes stop with the token; give their results a moment to arrive.
    let mut res = Vec::new();
    for _ in 0..20 {
        res = results.lock().await.clone();
        if !res.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !res.is_empty() {
        eprint!("{}", summary(&res));
    }
    drop(lock);
    drop(temp);
    if opts.until_done && !done.load(Ordering::SeqCst) && outcome.is_ok() {
        let states: Vec<String> = machines
            .iter()
            .map(|m| match watched.node(m) {
                Some(r) => format!("{} {}", r.label(), r.state.name()),
                None => format!("{m} never seen"),
            })
            .collect();
        outcome = Err(anyhow::anyhow!(
            "the demo stopped before every machine was Ready or failed: {}",
            states.join(", ")
        ));
    }
    outcome
}

/// Whether a machine has nothing left to do in the demo.
fn finished(engine: &Engine, mac: &Mac) -> bool {
    engine
        .node(mac)
        .is_some_and(|r| matches!(r.state, NodeState::Ready | NodeState::Failed))
}

/// Cancels the run once every machine is Ready or failed (checked a few times a
/// second), after a moment for the last lines to be written, and records that in `done`.
fn stop_when_done(
    engine: Engine,
    machines: Vec<Mac>,
    done: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if machines.iter().all(|m| finished(&engine, m)) {
                break;
            }
        }
        done.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_across_picks_and_below_the_ephemeral_range() {
        let mut all = Vec::new();
        for _ in 0..3 {
            let p = DemoPorts::pick().unwrap();
            all.extend([p.dhcp, p.pxe, p.tftp, p.http, p.admin, p.ssh]);
        }
        assert!(all.iter().all(|p| (20_000..32_000).contains(p)), "{all:?}");
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "{all:?}");
    }

    #[test]
    fn seven_nodes_like_the_seed_lab() {
        let p = plan(7);
        assert_eq!(p.nodes.len(), 7);
        assert_eq!(p.known.len(), 6);
        assert_eq!(p.known[0].2, "k3s-server");
        assert!(p.known[1..].iter().all(|k| k.2 == "k3s-agent"));
        assert_eq!(p.nodes.iter().filter(|n| n.fault.is_some()).count(), 1);
        let held = p.held.unwrap();
        assert!(p.known.iter().all(|k| k.0 != held));
    }

    #[test]
    fn demo_lab_yaml_parses() {
        let p = plan(5);
        let ports = DemoPorts {
            dhcp: 10067,
            pxe: 14011,
            tftp: 10069,
            http: 18080,
            admin: 17480,
            ssh: 10022,
        };
        let text = lab_yaml(&p, &ports, Path::new("/tmp/x/tftp"));
        let lab = crate::config::load_validated(Path::new("/tmp/x/lab.yaml"), &text).unwrap();
        assert_eq!(lab.file.nodes.len(), 4);
        assert_eq!(lab.file.dhcp.port, 10067);
        assert_eq!(lab.file.ssh.port, 10022);
        assert_eq!(lab.server_address, Ipv4Addr::LOCALHOST);
        assert!(lab.file.boot.cmdline.contains("{{ modloop_url }}"));
    }
}
