//! The k3s lab survives its own reboot: a server and two agents network-boot from
//! `pxelab up --no-tui --json` (server mode, inside a network namespace), join, and the
//! server is rebooted through pxelab (`pxelab reboot node-0`, the admin API's reboot).
//!
//! What must hold, from pxelab's JSON events and from the nodes themselves:
//! - every node got the secure token and the server pxelab's CA: the CA the server serves
//!   at `/cacerts` is byte for byte `.pxelab/k3s-ca/server-ca.crt`;
//! - a marker written into the server's datastore (`server/db/state.db`) is in the
//!   scheduled snapshot and in the one taken before the reboot (k3s stopped for it);
//! - after the reboot the server restored the newest snapshot before k3s started: the
//!   marker is back, the CA fingerprint is the same, both agents joined again and are
//!   Ready, and no node ever reported `node-failed`;
//! - the snapshot is served to the server only: asked from another address it is 403;
//! - `pxelab kubeconfig` writes the server's kubeconfig pointed at its lab address, 0600.
//!
//! The node image's k3s is the stand-in (scripts/node-init/k3s): it keeps its CA and
//! datastore where k3s does, an agent checks the server's `/cacerts` against its token's
//! hash and refuses a mismatch with k3s's error, and a restored datastore wins over the
//! disk, so without pxelab's CA and snapshot the agents would refuse the rebooted server.
//! The seconds from "reboot the server" to "every agent joined again" are printed.

mod common;
mod qemu_lab;

use std::time::{Duration, Instant};

use pxelab::engine::event::{Event, EventKind, FetchKind, K3sStep};
use qemu_lab::tail::EventTail;
use qemu_lab::Vm;
use sha2::Digest;

const NET: &str = "10.95.0";
const MACS: [&str; 3] = [
    "52:54:00:95:00:10",
    "52:54:00:95:00:11",
    "52:54:00:95:00:12",
];
const NAMES: [&str; 3] = ["node-0", "node-1", "node-2"];

fn lab_yaml() -> String {
    let mut y = format!(
        "# written by tests/qemu_cluster.rs\nname: k3s-reboot\ninterface: br0\nserver_address: {NET}.1\n\
         dhcp:\n  mode: server\n  subnet: {NET}.0/24\n  range: [{NET}.100, {NET}.150]\n  lease_time: 1h\n\
         tftp:\n  enabled: false\nhttp:\n  port: 8080\n  admin_port: 7480\n\
         boot:\n  assets_dir: assets\n  kernel: vmlinuz\n  initrds: [initramfs]\n  cmdline: \"console=ttyS0 quiet ip=dhcp\"\n\
         ssh:\n  user: root\nk3s:\n  snapshots:\n    every: 15s\n    keep: 3\nnodes:\n"
    );
    for (i, mac) in MACS.iter().enumerate() {
        let role = if i == 0 { "k3s-server" } else { "k3s-agent" };
        y.push_str(&format!(
            "  - mac: {mac}\n    hostname: {}\n    role: {role}\n    ip: {NET}.{}\n",
            NAMES[i],
            10 + i
        ));
    }
    y
}

/// `k3s` steps and failures per MAC since `since_ms`.
fn k3s_steps(events: &[Event], mac: &str, since_ms: u64) -> Vec<(u64, K3sStep)> {
    events
        .iter()
        .filter(|e| e.at_ms >= since_ms && e.mac.map(|m| m.to_string()).as_deref() == Some(mac))
        .filter_map(|e| match &e.kind {
            EventKind::K3s { step } => Some((e.at_ms, step.clone())),
            _ => None,
        })
        .collect()
}

/// When `mac` first reached `step` since `since_ms`.
fn first(events: &[Event], mac: &str, since_ms: u64, step: &K3sStep) -> Option<u64> {
    k3s_steps(events, mac, since_ms)
        .into_iter()
        .find(|(_, s)| s == step)
        .map(|(t, _)| t)
}

/// Runs `cmd` as root on `ip` with pxelab's operator key; a failure fails the test.
fn ssh(ns: &common::NetNs, d: &std::path::Path, ip: &str, cmd: &str) -> String {
    qemu_lab::ssh_root(ns, d, ip, cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// The server's `/cacerts` and its SHA-256.
fn cacerts(ns: &common::NetNs) -> (Vec<u8>, String) {
    let url = format!("http://{NET}.10:6443/cacerts");
    let out = ns.exec(&["curl", "-sf", "--max-time", "5", &url]);
    assert!(out.status.success(), "curl {url} failed");
    let hash = sha2::Sha256::digest(&out.stdout);
    let hex = hash.iter().map(|b| format!("{b:02x}")).collect();
    (out.stdout, hex)
}

/// The `state.db` inside a snapshot archive.
fn state_db_of(snapshot: &std::path::Path) -> String {
    let f = std::fs::File::open(snapshot).expect("snapshot");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for e in ar.entries().expect("tar") {
        let mut e = e.expect("tar entry");
        if e.path().is_ok_and(|p| p.ends_with("db/state.db")) {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).expect("state.db");
            return s;
        }
    }
    panic!("{}: no db/state.db", snapshot.display());
}

fn snapshot_events(events: &[Event], why: &str) -> Vec<(u64, bool, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::K3sSnapshot {
                why: w, ok, detail, ..
            } if w == why => Some((e.at_ms, *ok, detail.clone())),
            _ => None,
        })
        .collect()
}

/// Polls pxelab's events (and its liveness) until `done` or `limit`.
fn wait(
    tail: &mut EventTail,
    pxelab: &mut common::ChildGuard,
    limit: Duration,
    mut done: impl FnMut(&[Event]) -> bool,
) -> bool {
    qemu_lab::until(limit, || {
        tail.read_new();
        if let Ok(Some(st)) = pxelab.0.try_wait() {
            panic!("pxelab exited ({st})");
        }
        done(&tail.all)
    })
}

#[test]
fn the_k3s_server_rebooted_through_pxelab_keeps_its_ca_and_state_and_the_agents_rejoin() {
    if !common::require_root()
        || !qemu_lab::require_vm_tools()
        || !common::require_programs(&["curl", "ssh"])
    {
        return;
    }
    let img = qemu_lab::node_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    if std::env::var_os("PXELAB_QEMU_KEEP").is_some() {
        eprintln!("keeping {}", dir.keep().display());
    }
    let d = d.as_path();
    std::fs::create_dir_all(d.join("assets")).expect("assets");
    std::fs::copy(&img.kernel, d.join("assets/vmlinuz")).expect("kernel");
    std::fs::copy(&img.initrd, d.join("assets/initramfs")).expect("initrd");
    let lab = d.join("lab.yaml");
    std::fs::write(&lab, lab_yaml()).expect("lab.yaml");
    let lab_s = lab.to_string_lossy().to_string();
    let bin = common::pxelab_bin().to_string_lossy().to_string();

    let ns = common::NetNs::with_bridge("pxq-k3s", &format!("{NET}.1/24"));
    let mut pxelab = qemu_lab::start_pxelab(&ns, d, &lab);
    let mut tail = EventTail::new(&d.join("pxelab.jsonl"));
    let report = |tail: &EventTail, vms: &[Vm]| {
        let mut s = std::fs::read_to_string(d.join("pxelab.stderr")).unwrap_or_default();
        for vm in vms {
            s.push_str(&format!("\n--- {} console ---\n{}", vm.name, vm.console()));
        }
        for e in tail.all.iter().filter(|e| e.kind.is_problem()) {
            s.push_str(&format!("\nproblem: {e:?}"));
        }
        s
    };
    qemu_lab::accel();
    let vms: Vec<Vm> = (0..3)
        .map(|i| Vm::start(&ns, NAMES[i], &format!("tap{i}"), MACS[i], d))
        .collect();

    // ---- the lab boots: every node Ready ----
    let ready = wait(&mut tail, &mut pxelab, Duration::from_secs(360), |ev| {
        MACS.iter()
            .all(|m| first(ev, m, 0, &K3sStep::Ready).is_some())
    });
    assert!(ready, "the lab did not become Ready{}", report(&tail, &vms));
    let (ca_before, fp_before) = cacerts(&ns);
    let ours = std::fs::read(d.join(".pxelab/k3s-ca/server-ca.crt")).expect("pxelab's CA");
    assert_eq!(ca_before, ours, "the server serves pxelab's CA");
    let token = ssh(
        &ns,
        d,
        &format!("{NET}.11"),
        "cat /etc/rancher/k3s/config.yaml",
    );
    assert!(
        token.contains(&format!("K10{fp_before}::server:")),
        "an agent's token pins the CA: {token}"
    );

    // ---- the operator's kubeconfig, read over SSH and pointed at the lab address ----
    let kc = d.join("kubeconfig");
    let o = ns
        .command(&[
            "timeout",
            "60",
            &bin,
            "--config",
            &lab_s,
            "kubeconfig",
            "-o",
            &kc.to_string_lossy(),
        ])
        .output()
        .expect("pxelab kubeconfig");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&kc).expect("kubeconfig");
    assert!(
        text.contains(&format!("server: https://{NET}.10:6443")) && !text.contains("127.0.0.1"),
        "{text}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kc)
            .expect("kubeconfig")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // ---- a marker in the server's datastore, then a scheduled snapshot holding it ----
    let marker = format!("marker {:08x}", rand::random::<u32>());
    ssh(
        &ns,
        d,
        &format!("{NET}.10"),
        &format!("echo '{marker}' >> /var/lib/rancher/k3s/server/db/state.db"),
    );
    let written = qemu_lab::now_ms();
    let scheduled = wait(&mut tail, &mut pxelab, Duration::from_secs(60), |ev| {
        snapshot_events(ev, "scheduled")
            .iter()
            .any(|(t, ok, _)| *ok && *t > written + 500)
    });
    assert!(
        scheduled,
        "no scheduled snapshot after the marker: {:?}{}",
        snapshot_events(&tail.all, "scheduled"),
        report(&tail, &vms)
    );
    let newest = pxelab::secrets::snapshots::newest(&d.join(".pxelab"), MACS[0].parse().unwrap())
        .expect("a snapshot on disk");
    assert!(state_db_of(&newest).contains(&marker));

    // ---- the server rebooted through pxelab ----
    let t0 = qemu_lab::now_ms();
    let started = Instant::now();
    let o = ns
        .command(&[
            "timeout", "60", &bin, "--config", &lab_s, "reboot", "node-0",
        ])
        .output()
        .expect("pxelab reboot");
    assert!(
        o.status.success(),
        "pxelab reboot node-0: {}{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        report(&tail, &vms)
    );
    tail.read_new();
    let before = snapshot_events(&tail.all, "before-reboot");
    assert!(
        before.iter().any(|(t, ok, _)| *ok && *t >= t0),
        "no snapshot before the reboot: {before:?}"
    );
    let newest = pxelab::secrets::snapshots::newest(&d.join(".pxelab"), MACS[0].parse().unwrap())
        .expect("a snapshot on disk");
    assert!(newest.to_string_lossy().ends_with("-before-reboot.tar.gz"));
    assert!(state_db_of(&newest).contains(&marker));
    // QEMU restarts the guest in place (no -no-reboot): it boots again through iPXE.

    // ---- back: the server Ready in its new boot, every agent joined again ----
    // (An agent's join is its own log line, `Annotations and labels have been set
    // successfully`: the server accepted its token and node password again.)
    let mut joined_again = [None, None];
    let back = wait(&mut tail, &mut pxelab, Duration::from_secs(300), |ev| {
        for (i, m) in MACS[1..].iter().enumerate() {
            if joined_again[i].is_none() {
                joined_again[i] = first(ev, m, t0, &K3sStep::Joined);
            }
        }
        first(ev, MACS[0], t0, &K3sStep::Ready).is_some()
            && joined_again.iter().all(Option::is_some)
    });
    assert!(
        back,
        "the cluster did not come back: joined again {joined_again:?}{}",
        report(&tail, &vms)
    );
    let last_join = joined_again.iter().flatten().max().copied().unwrap_or(t0);
    // Ready as the server sees them: every node in `k3s kubectl get nodes`.
    let mut listed = String::new();
    let all_ready = qemu_lab::until(Duration::from_secs(60), || {
        listed = ssh(
            &ns,
            d,
            &format!("{NET}.10"),
            "k3s kubectl get nodes -o json",
        );
        pxelab::watch::parse::nodes_ready(&listed).is_ok_and(|n| {
            NAMES
                .iter()
                .all(|name| n.iter().any(|(m, ready)| m == name && *ready))
        })
    });
    assert!(
        all_ready,
        "not every node Ready on the rebooted server: {listed}"
    );
    eprintln!(
        "server reboot through pxelab: every agent joined again {:.1} s after `pxelab reboot` \
         (all Ready on the server at {:.1} s)",
        (last_join - t0) as f64 / 1000.0,
        started.elapsed().as_secs_f64()
    );

    // ---- same identity, state restored, served to the server only, nothing failed ----
    let (_, fp_after) = cacerts(&ns);
    assert_eq!(
        fp_after, fp_before,
        "the cluster CA changed over the reboot"
    );
    let state = ssh(
        &ns,
        d,
        &format!("{NET}.10"),
        "cat /var/lib/rancher/k3s/server/db/state.db; grep -c 'restored from the newest snapshot' /var/log/messages",
    );
    assert!(state.contains(&marker), "marker lost: {state}");
    let restored_fetch = tail.all.iter().any(|e| {
        e.at_ms >= t0
            && matches!(&e.kind, EventKind::HttpFetch { path, status: 200, what: FetchKind::Other, .. }
                if path.starts_with("/snapshot/"))
    });
    assert!(restored_fetch, "the server did not fetch its snapshot");
    let url = format!("http://{NET}.1:8080/snapshot/{}", MACS[0]);
    let code = ns.exec(&["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", &url]);
    assert_eq!(String::from_utf8_lossy(&code.stdout), "403");
    let failed: Vec<&Event> = tail
        .all
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::NodeFailed { .. } | EventKind::HostKeyMismatch { .. }
            )
        })
        .collect();
    assert!(failed.is_empty(), "failures: {failed:?}");
    let kept = pxelab::secrets::snapshots::list(&d.join(".pxelab"), MACS[0].parse().unwrap());
    assert!(!kept.is_empty() && kept.len() <= 3, "{kept:?}");
    use std::os::unix::fs::PermissionsExt;
    for k in &kept {
        let mode = std::fs::metadata(k).expect("snapshot").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", k.display());
    }
}
