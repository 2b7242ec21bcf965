//! A real PXE boot of three VMs against `pxelab up --no-tui --json`, inside a network
//! namespace: QEMU's iPXE ROM, pxelab's DHCP, HTTP (script, kernel, initrd, NoCloud), the
//! SSH watcher and k3s status, all asserted from pxelab's own JSON events.
//!
//! - Server mode: pxelab ALONE on the segment, as an operator runs it: no other DHCP
//!   server, no router. pxelab's own router advertisements end iPXE's IPv6 wait (without
//!   them boot.ipxe came ~16 s after the DHCP ACK); its option 175.176 stops iPXE waiting
//!   for ProxyDHCP offers. Host keys under `tofu` (the node makes its own every boot).
//! - Proxy mode: beside dnsmasq as the LAN's DHCP server and router (its RAs); host keys
//!   pinned, delivered in dropbear's own format to a node image that runs dropbear as
//!   Alpine's package does (no conversion).
//!
//! Two VMs are in lab.yaml (a k3s server and an agent); the third is unknown: pxelab holds
//! it in the iPXE wait loop until the test adopts it with `pxelab adopt` as an agent.
//! Then the agent is powered off and on twice (QEMU killed and started again on the same
//! tap): each boot must start a fresh timeline and reach Ready, with no host-key mismatch.
//! The node image is scripts/build-node-image.sh's (kernel + busybox + dropbear + a
//! tiny-cloud-like /init + a k3s stand-in; see README "End-to-end: real VMs").
//!
//! Packages come through pxelab's package cache (`http.apk_cache`): a mirror (busybox
//! httpd on the namespace's loopback, which the VMs cannot reach themselves) holds a
//! made-up repository with curl, k3s, k3s-openrc and sqlite (the server's); the nodes' `apk add` fetches index
//! and packages from the rewritten `alpine_repo=`. Each package is fetched from the
//! mirror once for all three nodes; then the mirror is stopped before the power cycles,
//! and the agent, its index expired (10 s TTL), still reaches Ready from the cache.

mod apk_support;
mod common;
mod qemu_lab;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pxelab::engine::event::{Event, EventKind, FetchKind, K3sFailure, K3sStep};
use qemu_lab::tail::EventTail;
use qemu_lab::Vm;

/// The two modes run one after the other: three TCG VMs at a time is what 2 cores carry.
static SERIAL: Mutex<()> = Mutex::new(());

const SERVER_MAC: &str = "52:54:00:97:00:10";
const AGENT_MAC: &str = "52:54:00:97:00:11";
const UNKNOWN_MAC: &str = "52:54:00:97:00:12";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Server,
    Proxy,
}

#[test]
fn three_vms_boot_join_one_is_adopted_and_one_power_cycled_pxelab_alone_in_server_mode() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    run(Mode::Server);
}

#[test]
fn three_vms_boot_join_one_is_adopted_and_one_power_cycled_proxy_mode_beside_dnsmasq() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    run(Mode::Proxy);
}

/// The role settings that make pxelab deliver host keys in dropbear's format (proxy
/// mode's node image runs dropbear as Alpine's package does: it reads only that).
const DROPBEAR_ROLES: &str =
    "roles:\n  k3s-server:\n    ssh: {server: dropbear}\n  k3s-agent:\n    ssh: {server: dropbear}\n";

/// The mirror inside the namespace (pxelab reaches it; the VMs only through the cache).
const MIRROR_REPO: &str = "alpine_repo=http://127.0.0.1:8090/alpine/v3.21/main";

/// Writes the mirror's repository (the built-in roles' packages) under `dir` and starts
/// busybox httpd on it in the namespace, logging each request.
fn start_mirror(ns: &common::NetNs, d: &std::path::Path) -> common::ChildGuard {
    let pkgs = [
        apk_support::Package::new("curl", "8.11.1-r0", 200_000),
        apk_support::Package::new("k3s", "1.31.4-r0", 2 << 20),
        apk_support::Package::new("k3s-openrc", "1.31.4-r0", 2_000),
        // The k3s server's `sqlite3`, for its online datastore snapshots.
        apk_support::Package::new("sqlite", "3.48.0-r0", 100_000),
    ];
    let root = d.join("mirror");
    apk_support::write_repo(&root, "alpine/v3.21/main", &pkgs);
    let root = root.to_string_lossy().to_string();
    let argv = [
        "busybox",
        "httpd",
        "-f",
        "-vv",
        "-p",
        "127.0.0.1:8090",
        "-h",
        &root,
    ];
    qemu_lab::spawn_logged(ns, &argv, &d.join("mirror.log"))
}

fn lab_yaml(mode: Mode, net: &str) -> String {
    let dhcp = match mode {
        Mode::Server => format!(
            "dhcp:\n  mode: server\n  subnet: {net}.0/24\n  range: [{net}.100, {net}.150]\n  router: {net}.1\n  lease_time: 1h\n"
        ),
        Mode::Proxy => "dhcp:\n  mode: proxy\n".to_string(),
    };
    let mut y = format!("# written by tests/qemu_boot.rs\nname: qemu\ninterface: br0\nserver_address: {net}.1\n{dhcp}");
    y.push_str("tftp:\n  enabled: false\n");
    y.push_str("http:\n  port: 8080\n  admin_port: 7480\n");
    // Upstream: alpine_repo= below (the default); a short TTL so the power-cycled agent
    // meets an expired index while the mirror is gone.
    y.push_str("  apk_cache: {enabled: true, index_ttl: 10s}\n");
    y.push_str("boot:\n  assets_dir: assets\n  kernel: vmlinuz\n  initrds: [initramfs]\n");
    match mode {
        Mode::Server => {
            y.push_str(&format!(
                "  cmdline: \"console=ttyS0 quiet ip=dhcp {MIRROR_REPO}\"\n"
            ));
            y.push_str("ssh:\n  user: lab\n  host_keys: tofu\n");
        }
        Mode::Proxy => {
            y.push_str(&format!(
                "  cmdline: \"console=ttyS0 quiet ip=dhcp pxelab_node_sshd=dropbear {MIRROR_REPO}\"\n"
            ));
            y.push_str("ssh:\n  user: lab\n");
            y.push_str(DROPBEAR_ROLES);
        }
    }
    y.push_str("unknown: hold\nnodes:\n");
    y.push_str(&format!(
        "  - mac: {SERVER_MAC}\n    hostname: node-0\n    role: k3s-server\n    ip: {net}.10\n"
    ));
    y.push_str(&format!(
        "  - mac: {AGENT_MAC}\n    hostname: node-1\n    role: k3s-agent\n    ip: {net}.11\n"
    ));
    y
}

/// The steps each node must reach, as named in the timeline.
fn required(mac: &str) -> Vec<&'static str> {
    let mut v = vec!["dhcp-discover(iPXE)", "dhcp-ack"];
    if mac == UNKNOWN_MAC {
        v.extend(["held", "hold-script", "adopted"]);
    }
    v.extend([
        "script",
        "kernel-start",
        "kernel",
        "initrd",
        "meta-data",
        "user-data",
        "ssh-up",
        "tiny-cloud complete",
    ]);
    v.push(if mac == SERVER_MAC {
        "k3s up"
    } else {
        "k3s joined"
    });
    v.push("Ready");
    v
}

/// The timeline step an event stands for, if any.
fn step_of(kind: &EventKind, mode: Mode) -> Option<&'static str> {
    Some(match kind {
        EventKind::DhcpDiscover { ipxe: true, .. } => "dhcp-discover(iPXE)",
        // Server mode: the ACK of the address; proxy mode: pxelab's proxy answer (the
        // address comes from the LAN's server).
        EventKind::DhcpReply { proxy, msg, .. }
            if *proxy == (mode == Mode::Proxy) && (msg == "ack" || mode == Mode::Proxy) =>
        {
            "dhcp-ack"
        }
        EventKind::NodeHeld => "held",
        EventKind::NodeAdopted { .. } => "adopted",
        EventKind::HttpStart {
            what: FetchKind::Kernel,
            ..
        } => "kernel-start",
        EventKind::HttpFetch { what, status, .. } if (200..300).contains(status) => match what {
            FetchKind::HoldScript => "hold-script",
            FetchKind::Script => "script",
            FetchKind::Kernel => "kernel",
            FetchKind::Initrd => "initrd",
            FetchKind::MetaData => "meta-data",
            FetchKind::UserData => "user-data",
            _ => return None,
        },
        EventKind::SshUp { .. } => "ssh-up",
        EventKind::TinyCloudComplete => "tiny-cloud complete",
        EventKind::K3s { step } => match step {
            K3sStep::ServerUp => "k3s up",
            K3sStep::Joined => "k3s joined",
            K3sStep::Ready => "Ready",
            _ => return None,
        },
        _ => return None,
    })
}

/// Steps (first time each) per MAC, in ms from that machine's latest power-on.
type Steps = BTreeMap<String, Vec<(&'static str, u64)>>;

/// Files each new event into `steps`, timed from the power-on of its VM.
fn file_steps(steps: &mut Steps, events: &[Event], vms: &[Vm], mode: Mode) {
    for ev in events {
        let Some(mac) = ev.mac else { continue };
        let mac = mac.to_string();
        let Some(vm) = vms.iter().find(|v| v.mac == mac) else {
            continue;
        };
        if ev.at_ms < vm.started_ms {
            continue; // the previous power-on's
        }
        if let Some(step) = step_of(&ev.kind, mode) {
            let list = steps.entry(mac).or_default();
            if !list.iter().any(|(s, _)| *s == step) {
                list.push((step, ev.at_ms - vm.started_ms));
            }
        }
    }
}

fn reached_all(steps: &Steps, mac: &str, want: &[&str]) -> bool {
    let have = steps.get(mac).cloned().unwrap_or_default();
    want.iter().all(|r| have.iter().any(|(s, _)| s == r))
}

fn at(steps: &Steps, mac: &str, step: &str) -> Option<u64> {
    steps
        .get(mac)?
        .iter()
        .find(|(s, _)| *s == step)
        .map(|(_, t)| *t)
}

/// The namespace's own pxelab and, in proxy mode, the LAN's dnsmasq (DHCP and RAs).
struct Rig {
    pxelab: common::ChildGuard,
    err_path: std::path::PathBuf,
    _dnsmasq: Option<common::ChildGuard>,
}

fn start_rig(mode: Mode, ns: &common::NetNs, d: &std::path::Path, net: &str, lab_s: &str) -> Rig {
    let dnsmasq = (mode == Mode::Proxy).then(|| {
        ns.exec_ok(&["ip", "addr", "add", "fd00:96::1/64", "dev", "br0"]);
        let mut args: Vec<String> = [
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--port=0",
            "--interface=br0",
            "--bind-interfaces",
            "--log-dhcp",
            "--log-facility=-",
            "--enable-ra",
            "--dhcp-range=::,constructor:br0,ra-only",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--pid-file={}", d.join("dnsmasq.pid").display()));
        args.push(format!("--dhcp-leasefile={}", d.join("leases").display()));
        args.push(format!("--dhcp-range={net}.100,{net}.150,1h"));
        for (mac, ip) in [(SERVER_MAC, 10), (AGENT_MAC, 11), (UNKNOWN_MAC, 12)] {
            args.push(format!("--dhcp-host={mac},{net}.{ip}"));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        qemu_lab::spawn_logged(ns, &argv, &d.join("dnsmasq.log"))
    });
    let err_path = d.join("pxelab.stderr");
    let pxelab = qemu_lab::start_pxelab(ns, d, std::path::Path::new(lab_s));
    Rig {
        pxelab,
        err_path,
        _dnsmasq: dnsmasq,
    }
}

fn run(mode: Mode) {
    if !common::require_root() || !qemu_lab::require_vm_tools() {
        return;
    }
    if mode == Mode::Proxy && !common::require_program("dnsmasq") {
        return;
    }
    let (ns_name, net) = match mode {
        Mode::Server => ("pxq-srv", "10.97.0"),
        Mode::Proxy => ("pxq-prx", "10.96.0"),
    };
    let mode_name = if mode == Mode::Server {
        "server"
    } else {
        "proxy"
    };
    let img = qemu_lab::node_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    let d = d.as_path();
    if std::env::var_os("PXELAB_QEMU_KEEP").is_some() {
        eprintln!("keeping {}", dir.keep().display());
    }
    std::fs::create_dir_all(d.join("assets")).expect("assets");
    std::fs::copy(&img.kernel, d.join("assets/vmlinuz")).expect("kernel");
    std::fs::copy(&img.initrd, d.join("assets/initramfs")).expect("initrd");
    let lab = d.join("lab.yaml");
    std::fs::write(&lab, lab_yaml(mode, net)).expect("lab.yaml");
    let lab_s = lab.to_string_lossy().to_string();
    let pxelab = common::pxelab_bin().to_string_lossy().to_string();

    let ns = common::NetNs::with_bridge(ns_name, &format!("{net}.1/24"));
    let mut mirror = Some(start_mirror(&ns, d));
    let mut rig = start_rig(mode, &ns, d, net, &lab_s);
    let err_path = rig.err_path.clone();
    let mut tail = EventTail::new(&d.join("pxelab.jsonl"));
    let up = |tail: &EventTail, src: &str| {
        tail.all.iter().any(|e| {
            matches!(&e.kind, EventKind::ServerUp { source, .. } if format!("{source:?}") == src)
        })
    };
    let http_up = qemu_lab::until(Duration::from_secs(30), || {
        tail.read_new();
        up(&tail, "Http") && up(&tail, "Dhcp")
    });
    assert!(
        http_up,
        "pxelab did not report its HTTP and DHCP servers up within 30 s:\n{}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );

    // ---- three VMs ----
    let macs = [SERVER_MAC, AGENT_MAC, UNKNOWN_MAC];
    let names = ["node-0", "node-1", "node-2 (unknown)"];
    qemu_lab::accel(); // probe first, so it is not counted in the first VM's timings
    let mut vms: Vec<Vm> = macs
        .iter()
        .enumerate()
        .map(|(i, mac)| Vm::start(&ns, names[i], &format!("tap{i}"), mac, d))
        .collect();
    let mut steps: Steps = BTreeMap::new();
    let mut adopt_out: Option<std::process::Output> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut done = false;
    while Instant::now() < deadline {
        let new = tail.read_new();
        file_steps(&mut steps, &new, &vms, mode);
        for vm in vms.iter_mut() {
            vm.scan_console(qemu_lab::CONSOLE_MARKERS);
        }
        // The unknown machine waits in the loop: adopt it once it fetched the wait script.
        if at(&steps, UNKNOWN_MAC, "hold-script").is_some() && adopt_out.is_none() {
            let o = ns
                .command(&[
                    "timeout",
                    "30",
                    &pxelab,
                    "--config",
                    &lab_s,
                    "adopt",
                    UNKNOWN_MAC,
                    "--role",
                    "k3s-agent",
                    "--hostname",
                    "node-2",
                    "--ip",
                    &format!("{net}.12"),
                ])
                .output()
                .expect("run pxelab adopt");
            assert!(
                o.status.success(),
                "pxelab adopt failed: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            adopt_out = Some(o);
        }
        if let Ok(Some(st)) = rig.pxelab.0.try_wait() {
            panic!(
                "pxelab exited ({st}) during the boot:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        done = macs.iter().all(|m| reached_all(&steps, m, &required(m)));
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let report_steps = |steps: &Steps, vms: &[Vm], label: &str| {
        for vm in vms {
            let mut line = format!(
                "[{mode_name} mode{label}] {} ({}), s from power-on:",
                vm.name, vm.mac
            );
            for (s, t) in steps.get(&vm.mac).cloned().unwrap_or_default() {
                line.push_str(&format!(" {s} {:.1};", t as f64 / 1000.0));
            }
            eprintln!("{line}");
            eprintln!("  console: {}", vm.timeline());
        }
    };
    report_steps(&steps, &vms, "");
    let report = |tail: &EventTail, vms: &[Vm]| {
        let mut s = String::new();
        for vm in vms {
            s.push_str(&format!("\n--- {} console ---\n{}", vm.name, vm.console()));
        }
        let problems: Vec<String> = tail
            .all
            .iter()
            .filter(|e| e.kind.is_problem())
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect();
        s.push_str(&format!(
            "\n--- pxelab problem events ---\n{}",
            problems.join("\n")
        ));
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let tail_err: Vec<&str> = stderr.lines().rev().take(40).collect();
        s.push_str(&format!(
            "\n--- pxelab stderr (last 40) ---\n{}",
            tail_err.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
        s
    };
    for m in macs {
        let have = steps.get(m).cloned().unwrap_or_default();
        for r in required(m) {
            assert!(
                have.iter().any(|(s, _)| *s == r),
                "[{mode_name} mode] {m} never reached `{r}` in pxelab's events{}",
                report(&tail, &vms)
            );
        }
    }
    assert!(done);

    // ---- alone on the segment: no IPv6 wait between the ACK and boot.ipxe ----
    if mode == Mode::Server {
        for m in macs {
            let script = if m == UNKNOWN_MAC {
                "hold-script"
            } else {
                "script"
            };
            let (ack, fetched) = (at(&steps, m, "dhcp-ack"), at(&steps, m, script));
            let gap = fetched.zip(ack).map(|(f, a)| f.saturating_sub(a));
            assert!(
                gap.is_some_and(|g| g <= 1_000),
                "[server mode] {m}: boot.ipxe {gap:?} ms after the DHCP ACK (iPXE waited for IPv6?){}",
                report(&tail, &vms)
            );
        }
    }
    // ---- the held machine: boots at its next ask after the adoption ----
    let (held_at, adopted, kernel) = (
        at(&steps, UNKNOWN_MAC, "held").unwrap_or(0),
        at(&steps, UNKNOWN_MAC, "adopted").unwrap_or(0),
        at(&steps, UNKNOWN_MAC, "kernel-start").unwrap_or(u64::MAX),
    );
    assert!(
        held_at <= adopted && adopted <= kernel,
        "held → adopted → kernel order: {:?}",
        steps[UNKNOWN_MAC]
    );
    assert!(
        kernel - adopted <= 3_000 + 1_000,
        "[{mode_name} mode] the adopted machine's kernel fetch came {} ms after the adoption \
         (wait loop sleeps 3 s)",
        kernel - adopted
    );
    let adopt_stdout =
        String::from_utf8_lossy(&adopt_out.as_ref().expect("adopted").stdout).to_string();
    assert!(
        adopt_stdout.contains("running pxelab"),
        "adopt did not go through the admin API: {adopt_stdout}"
    );
    let yaml = std::fs::read_to_string(&lab).expect("lab.yaml");
    assert!(
        yaml.contains(UNKNOWN_MAC) && yaml.contains("node-2"),
        "lab.yaml lacks the adopted node:\n{yaml}"
    );

    // ---- packages: through the cache, one mirror fetch per package for three nodes ----
    let fetched = apk_support::httpd_requests(&d.join("mirror.log"));
    for p in ["curl-8.11.1-r0", "k3s-1.31.4-r0", "k3s-openrc-1.31.4-r0"] {
        let path = format!("/alpine/v3.21/main/x86_64/{p}.apk");
        assert_eq!(
            fetched.get(&path),
            Some(&1),
            "[{mode_name} mode] {path}: one mirror fetch for three nodes: {fetched:?}"
        );
        for vm in &vms {
            assert!(
                vm.console().contains(&format!("apk: fetched {p}.apk")),
                "[{mode_name} mode] {}'s apk did not fetch {p}.apk{}",
                vm.name,
                report(&tail, &vms)
            );
        }
    }
    assert_eq!(
        fetched.get("/alpine/v3.21/main/x86_64/sqlite-3.48.0-r0.apk"),
        Some(&1),
        "[{mode_name} mode] the k3s server's sqlite: {fetched:?}"
    );
    eprintln!("[{mode_name} mode] mirror requests during the first boots: {fetched:?}");
    // The mirror goes away: the rest of the test boots from the cache alone.
    drop(mirror.take());
    let cut_ms = qemu_lab::now_ms();

    // ---- the agent powered off and on, twice: every boot a new boot ----
    for cycle in 1..=2u32 {
        vms[1].power_cycle(&ns, d, Duration::from_secs(1));
        let power_on = vms[1].started_ms;
        steps.remove(AGENT_MAC);
        let want = required(AGENT_MAC);
        let back = qemu_lab::until(Duration::from_secs(180), || {
            let new = tail.read_new();
            file_steps(&mut steps, &new, &vms, mode);
            vms[1].scan_console(qemu_lab::CONSOLE_MARKERS);
            reached_all(&steps, AGENT_MAC, &want)
        });
        report_steps(&steps, &vms[1..2], &format!(", power cycle {cycle}"));
        assert!(
            back,
            "[{mode_name} mode] node-1 did not come back to Ready after power cycle {cycle}: {:?}{}",
            steps.get(AGENT_MAC),
            report(&tail, &vms)
        );
        // Its record: boot number, a fresh timeline, the last boot kept as the previous.
        // The admin API wants the token the instance wrote beside lab.yaml.
        let token = std::fs::read_to_string(d.join(".pxelab/admin-token")).unwrap_or_default();
        let auth = format!("Authorization: Bearer {}", token.trim());
        let rec = ns.exec(&[
            "curl",
            "-s",
            "--max-time",
            "10",
            "-H",
            &auth,
            &format!("http://127.0.0.1:7480/api/nodes/{AGENT_MAC}"),
        ]);
        let rec: serde_json::Value = serde_json::from_slice(&rec.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&rec.stdout)));
        assert_eq!(rec["boot"], 1 + cycle, "{rec}");
        assert_eq!(rec["state"], "ready", "{rec}");
        assert_eq!(rec["previous_boot"]["number"], cycle, "{rec}");
        // Ready when the plug was pulled (joined if the server saw its heartbeat stop
        // before the new boot's first DISCOVER).
        let prev = rec["previous_boot"]["state"].as_str().unwrap_or("");
        assert!(prev == "ready" || prev == "joined", "{rec}");
        let first = rec["timeline"][0]["at_ms"].as_u64().unwrap_or(0);
        assert!(
            first >= power_on,
            "the new boot's timeline starts at its power-on: {rec}"
        );
    }

    // ---- the mirror gone: the expired index was served from the cache ----
    let stale: u64 = tail
        .all
        .iter()
        .filter(|e| e.at_ms >= cut_ms)
        .filter_map(|e| match &e.kind {
            EventKind::ApkCache { tally } => Some(tally.stale),
            _ => None,
        })
        .sum();
    assert!(
        stale >= 1,
        "[{mode_name} mode] no stale index served after the mirror was stopped{}",
        report(&tail, &vms)
    );
    let failed: Vec<&Event> = tail
        .all
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::ApkCache { tally } if tally.failed > 0))
        .collect();
    assert!(
        failed.is_empty(),
        "[{mode_name} mode] the package cache failed requests: {failed:?}"
    );

    // ---- nothing failed in any boot, no host key refused ----
    assert!(
        tail.bad.is_empty(),
        "[{mode_name} mode] stdout lines that are not events: {:?}",
        tail.bad
    );
    for e in &tail.all {
        assert!(
            !matches!(
                e.kind,
                EventKind::HostKeyMismatch { .. }
                    | EventKind::CloudFailed { .. }
                    | EventKind::NodeFailed {
                        reason: K3sFailure::TokenMismatch
                            | K3sFailure::ServerUnreachable
                            | K3sFailure::NodePasswordRejected
                            | K3sFailure::CgroupsMissing
                            | K3sFailure::Other,
                        ..
                    }
            ),
            "[{mode_name} mode] unexpected {}{}",
            serde_json::to_string(e).unwrap_or_default(),
            report(&tail, &vms)
        );
    }
}
