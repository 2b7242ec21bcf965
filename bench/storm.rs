//! Boot-storm driver for `bench/run.sh storm`: N simulated nodes (pxelab::sim) power on
//! within a window and boot against a pxelab that runs as a separate process (so its
//! peak RSS is its own). Prints one JSON line: how many fetched their NoCloud data, when
//! the last one did, and which steps failed.
//!
//! ```text
//! storm write-lab DIR N          writes DIR/lab.yaml (N known nodes) and fake assets
//! storm run LAB N WINDOW_S LIMIT_S   boots the nodes against the running pxelab
//! storm hold LAB N ROUNDS WINDOW_S LIMIT_S
//!                                machines lab.yaml does not list power on within
//!                                WINDOW_S and stay in the wait loop for ROUNDS boot-script
//!                                fetches each (`bench/run.sh memory`)
//! ```
//!
//! Benchmark tooling: run it inside the namespace `bench/bench_storm.py` creates.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pxelab::sim::{self, Node, Role, Step};
use tokio_util::sync::CancellationToken;

fn lab_yaml(n: usize, tftp_root: &std::path::Path) -> String {
    let mut s = format!(
        "name: storm\n\
server_address: 127.0.0.1\n\
dhcp:\n  mode: server\n  subnet: 127.0.0.0/8\n  range: [127.3.0.10, 127.3.15.250]\n  lease_time: 1h\n  port: 10067\n  pxe_port: 14011\n\
tftp:\n  enabled: true\n  root: {}\n  port: 10069\n\
http:\n  bind: 127.0.0.1\n  port: 18080\n  admin_port: 17480\n\
boot:\n  assets_dir: assets\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  modloop: modloop-lts\n  \
cmdline: \"console=ttyS0 ip=dhcp modloop={{{{ modloop_url }}}}\"\n\
ssh:\n  user: lab\n  port: 10022\n  watch: true\n\
unknown: hold\n\
nodes:\n",
        tftp_root.display()
    );
    for i in 0..n {
        let role = if i == 0 { "k3s-server" } else { "k3s-agent" };
        s.push_str(&format!(
            "  - mac: {}\n    hostname: node-{i}\n    role: {role}\n    ip: {}\n",
            sim::node_mac(i),
            sim::node_address(i)
        ));
    }
    s
}

fn usage() -> anyhow::Result<()> {
    anyhow::bail!(
        "usage: storm write-lab DIR N | storm run LAB N WINDOW_S LIMIT_S | \
         storm hold LAB N ROUNDS WINDOW_S LIMIT_S"
    )
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> anyhow::Result<T> {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad or missing argument {i}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("write-lab") => {
            let dir = std::path::PathBuf::from(arg::<String>(&args, 2)?);
            let n: usize = arg(&args, 3)?;
            std::fs::create_dir_all(&dir)?;
            let tftp = sim::demo::write_assets(&dir)?;
            std::fs::write(dir.join("lab.yaml"), lab_yaml(n, &tftp))?;
            Ok(())
        }
        Some("run") => {
            let lab_path = std::path::PathBuf::from(arg::<String>(&args, 2)?);
            let n: usize = arg(&args, 3)?;
            let window: f64 = arg(&args, 4)?;
            let limit: u64 = arg(&args, 5)?;
            run(&lab_path, n, window, limit).await
        }
        Some("hold") => {
            let lab_path = std::path::PathBuf::from(arg::<String>(&args, 2)?);
            let n: usize = arg(&args, 3)?;
            let rounds: u32 = arg(&args, 4)?;
            let window: f64 = arg(&args, 5)?;
            let limit: u64 = arg(&args, 6)?;
            hold(&lab_path, n, rounds, window, limit).await
        }
        _ => usage(),
    }
}

/// `STORM_SPEED` (simulated time runs this many times faster), 1 when unset.
fn storm_speed() -> f64 {
    std::env::var("STORM_SPEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

async fn run(lab_path: &std::path::Path, n: usize, window: f64, limit: u64) -> anyhow::Result<()> {
    let lab = Arc::new(pxelab::app::load_lab(lab_path)?);
    let cancel = CancellationToken::new();
    let speed = storm_speed();
    let simlab = sim::Lab::for_lab(lab)
        .speed(speed)
        .concurrency(n.max(1))
        .serve_ssh(true)
        .k3s_timeout(Duration::from_secs(5))
        .step_timeout(Duration::from_secs(60))
        .cancel_on(cancel.clone());
    let nodes: Vec<Node> = (0..n)
        .map(|i| {
            let at = Duration::from_secs_f64(window * i as f64 / n.max(1) as f64);
            Node::new(sim::node_mac(i), sim::node_address(i))
                .role(if i == 0 { Role::Server } else { Role::Agent })
                .power_on_after(at)
        })
        .collect();
    let start = Instant::now();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(limit)).await;
        c2.cancel();
    });
    let results = simlab.run(nodes).await;
    let wall = start.elapsed().as_secs_f64();
    // NoCloud done: when, from the storm's start (power-on offset + step end).
    let mut served = 0usize;
    let mut last_ms = 0f64;
    let mut done_ms = Vec::new();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        let offset = window * 1000.0 * i as f64 / n.max(1) as f64;
        match r.step(Step::NoCloud) {
            Some(s) if s.ok => {
                served += 1;
                let t = offset + (s.start_ms + s.ms) as f64;
                last_ms = last_ms.max(t);
                done_ms.push(t);
            }
            _ => {
                let step = r
                    .steps
                    .iter()
                    .find(|s| !s.ok)
                    .map(|s| format!("{:?}: {}", s.step, s.detail))
                    .unwrap_or_else(|| "did not reach NoCloud".to_string());
                *failed.entry(step).or_default() += 1;
            }
        }
    }
    done_ms.sort_by(|a, b| a.total_cmp(b));
    let p50 = done_ms.get(done_ms.len() / 2).copied().unwrap_or(0.0);
    let out = serde_json::json!({
        "nodes": n,
        "served": served,
        "last_nocloud_s": last_ms / 1000.0,
        "median_nocloud_s": p50 / 1000.0,
        "wall_s": wall,
        "speed": speed,
        "failed": failed,
    });
    println!("{out}");
    cancel.cancel();
    Ok(())
}

/// N machines lab.yaml does not list: PXE ROM DHCP, TFTP, iPXE DHCP, then the wait loop
/// for `rounds` boot-script fetches each (its `sleep` divided by STORM_SPEED), every one
/// from an address of its own. Bounded by `rounds` and by `limit` seconds. Prints how
/// many were held and went through every round, and what stopped the others.
async fn hold(
    lab_path: &std::path::Path,
    n: usize,
    rounds: u32,
    window: f64,
    limit: u64,
) -> anyhow::Result<()> {
    let lab = Arc::new(pxelab::app::load_lab(lab_path)?);
    let cancel = CancellationToken::new();
    let speed = storm_speed();
    let simlab = sim::Lab::for_lab(lab)
        .speed(speed)
        .concurrency(n.max(1))
        .serve_ssh(false)
        .hold_rounds(rounds)
        .hold_timeout(Duration::from_secs(limit))
        .step_timeout(Duration::from_secs(60))
        .cancel_on(cancel.clone());
    let nodes: Vec<Node> = (0..n)
        .map(|i| {
            let at = Duration::from_secs_f64(window * i as f64 / n.max(1) as f64);
            Node::new(sim::node_mac(i), sim::node_address(i)).power_on_after(at)
        })
        .collect();
    let start = Instant::now();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(limit)).await;
        c2.cancel();
    });
    let results = simlab.run(nodes).await;
    let wall = start.elapsed().as_secs_f64();
    let done = format!("still held after {rounds} rounds of the wait loop");
    let mut full = 0usize;
    let mut held = 0usize;
    let mut other: BTreeMap<String, usize> = BTreeMap::new();
    for r in &results {
        held += usize::from(r.held);
        match r.step(Step::Held) {
            Some(s) if s.detail == done => full += 1,
            _ => {
                let why = r
                    .steps
                    .iter()
                    .find(|s| !s.ok)
                    .map(|s| format!("{:?}: {}", s.step, s.detail))
                    .unwrap_or_else(|| "did not reach the wait loop".to_string());
                *other.entry(why).or_default() += 1;
            }
        }
    }
    let out = serde_json::json!({
        "nodes": n,
        "rounds": rounds,
        "held": held,
        "all_rounds": full,
        "wall_s": wall,
        "speed": speed,
        "failed": other,
    });
    println!("{out}");
    cancel.cancel();
    Ok(())
}
