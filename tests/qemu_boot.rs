//! A real PXE boot of three VMs against `pxelab up --no-tui --json`, inside a network
//! namespace: QEMU's iPXE ROM, pxelab's DHCP (server mode; then proxy mode beside
//! dnsmasq as the LAN's DHCP server), HTTP (script, kernel, initrd, NoCloud), the SSH
//! watcher (pinned host keys) and k3s status, all asserted from pxelab's own JSON events.
//!
//! Two VMs are in lab.yaml (a k3s server and an agent); the third is unknown: pxelab holds
//! it in the iPXE wait loop until the test adopts it with `pxelab adopt` as an agent.
//! The node image is scripts/build-node-image.sh's (kernel + busybox + dropbear + a
//! tiny-cloud-like /init + a k3s stand-in; see README "End-to-end: real VMs").
//!
//! dnsmasq also sends router advertisements on the bridge so iPXE does not wait ~13 s for
//! IPv6 autoconfiguration; in server mode pxelab's option 175.176 stops iPXE waiting for
//! ProxyDHCP offers.

mod common;
mod qemu_lab;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pxelab::engine::event::{Event, EventKind, FetchKind, K3sFailure, K3sStep};
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
fn three_vms_boot_join_and_one_is_adopted_server_mode() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    run(Mode::Server);
}

#[test]
fn three_vms_boot_join_and_one_is_adopted_proxy_mode_beside_dnsmasq() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    run(Mode::Proxy);
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
    y.push_str("boot:\n  assets_dir: assets\n  kernel: vmlinuz\n  initrds: [initramfs]\n");
    y.push_str("  cmdline: \"console=ttyS0 quiet ip=dhcp\"\n");
    y.push_str("ssh:\n  user: lab\nunknown: hold\nnodes:\n");
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
    let mut v = vec!["dhcp-discover(iPXE)", "dhcp-reply"];
    if mac == UNKNOWN_MAC {
        v.extend(["held", "hold-script", "adopted"]);
    }
    v.extend([
        "script",
        "kernel",
        "initrd",
        "meta-data",
        "user-data",
        "ssh-up(pinned)",
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
        EventKind::DhcpReply { proxy, .. } if *proxy == (mode == Mode::Proxy) => "dhcp-reply",
        EventKind::NodeHeld => "held",
        EventKind::NodeAdopted { .. } => "adopted",
        EventKind::HttpFetch { what, status, .. } if (200..300).contains(status) => match what {
            FetchKind::HoldScript => "hold-script",
            FetchKind::Script => "script",
            FetchKind::Kernel => "kernel",
            FetchKind::Initrd => "initrd",
            FetchKind::MetaData => "meta-data",
            FetchKind::UserData => "user-data",
            _ => return None,
        },
        EventKind::SshUp { .. } => "ssh-up(pinned)",
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

/// pxelab's JSON lines, read incrementally from its stdout file.
struct EventTail {
    file: std::fs::File,
    pos: u64,
    partial: String,
    all: Vec<Event>,
    bad: Vec<String>,
}

impl EventTail {
    fn new(path: &Path) -> EventTail {
        EventTail {
            file: std::fs::File::open(path).expect("pxelab stdout"),
            pos: 0,
            partial: String::new(),
            all: Vec::new(),
            bad: Vec::new(),
        }
    }

    /// The events written since the last call.
    fn read_new(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.file.seek(SeekFrom::Start(self.pos)).is_err() {
            return out;
        }
        let mut r = BufReader::new(&self.file);
        let mut line = String::new();
        while let Ok(n) = r.read_line(&mut line) {
            if n == 0 {
                break;
            }
            self.pos += n as u64;
            if !line.ends_with('\n') {
                self.partial.push_str(&line);
                line.clear();
                continue;
            }
            let full = format!("{}{}", std::mem::take(&mut self.partial), line.trim_end());
            line.clear();
            match serde_json::from_str::<Event>(&full) {
                Ok(ev) => out.push(ev),
                Err(_) => self.bad.push(full),
            }
        }
        self.all.extend(out.iter().cloned());
        out
    }
}

fn run(mode: Mode) {
    if !common::require_root() {
        return;
    }
    if !(qemu_lab::require_vm_tools() && common::require_program("dnsmasq")) {
        return;
    }
    let (ns_name, net, v6) = match mode {
        Mode::Server => ("pxq-srv", "10.97.0", "fd00:97::1/64"),
        Mode::Proxy => ("pxq-prx", "10.96.0", "fd00:96::1/64"),
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

    // ---- namespace; dnsmasq: RAs, and in proxy mode the LAN's DHCP server ----
    let ns = common::NetNs::with_bridge(ns_name, &format!("{net}.1/24"));
    ns.exec_ok(&["ip", "addr", "add", v6, "dev", "br0"]);
    let dns_log = d.join("dnsmasq.log");
    let pid_file = format!("--pid-file={}", d.join("dnsmasq.pid").display());
    let lease_file = format!("--dhcp-leasefile={}", d.join("leases").display());
    let mut dns_args: Vec<String> = [
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
    dns_args.push(pid_file);
    dns_args.push(lease_file);
    if mode == Mode::Proxy {
        dns_args.push(format!("--dhcp-range={net}.100,{net}.150,1h"));
        for (mac, ip) in [(SERVER_MAC, 10), (AGENT_MAC, 11), (UNKNOWN_MAC, 12)] {
            dns_args.push(format!("--dhcp-host={mac},{net}.{ip}"));
        }
    }
    let dns_argv: Vec<&str> = dns_args.iter().map(String::as_str).collect();
    let _dnsmasq = qemu_lab::spawn_logged(&ns, &dns_argv, &dns_log);

    // ---- pxelab ----
    let out_path = d.join("pxelab.jsonl");
    let err_path = d.join("pxelab.stderr");
    let out = std::fs::File::create(&out_path).expect("pxelab out");
    let err = std::fs::File::create(&err_path).expect("pxelab err");
    let mut pxelab_child = common::ChildGuard(
        ns.command(&[&pxelab, "--config", &lab_s, "up", "--no-tui", "--json"])
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start pxelab"),
    );
    let mut tail = EventTail::new(&out_path);
    let http_up = qemu_lab::until(Duration::from_secs(30), || {
        tail.read_new();
        tail.all.iter().any(|e| matches!(&e.kind, EventKind::ServerUp { source, .. } if format!("{source:?}") == "Http"))
            && tail.all.iter().any(|e| matches!(&e.kind, EventKind::ServerUp { source, .. } if format!("{source:?}") == "Dhcp"))
    });
    assert!(
        http_up,
        "pxelab did not report its HTTP and DHCP servers up within 30 s:\n{}\n{}",
        std::fs::read_to_string(&out_path).unwrap_or_default(),
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
    let mut steps: BTreeMap<String, Vec<(&'static str, u64)>> = BTreeMap::new();
    let mut adopt_out: Option<std::process::Output> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut done = false;
    while Instant::now() < deadline {
        for ev in tail.read_new() {
            let Some(mac) = ev.mac else { continue };
            let mac = mac.to_string();
            if let Some(step) = step_of(&ev.kind, mode) {
                let list = steps.entry(mac.clone()).or_default();
                let start_ms = vms
                    .iter()
                    .find(|v| v.mac == mac)
                    .map(|v| v.started_ms)
                    .unwrap_or(0);
                if !list.iter().any(|(s, _)| *s == step) {
                    list.push((step, ev.at_ms.saturating_sub(start_ms)));
                }
            }
        }
        for vm in vms.iter_mut() {
            vm.scan_console(qemu_lab::CONSOLE_MARKERS);
        }
        // The unknown machine waits in the loop: adopt it once it fetched the wait script.
        let held = steps
            .get(UNKNOWN_MAC)
            .is_some_and(|l| l.iter().any(|(s, _)| *s == "hold-script"));
        if held && adopt_out.is_none() {
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
        if let Ok(Some(st)) = pxelab_child.0.try_wait() {
            panic!(
                "pxelab exited ({st}) during the boot:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        done = macs.iter().all(|m| {
            let have = steps.get(*m).cloned().unwrap_or_default();
            required(m).iter().all(|r| have.iter().any(|(s, _)| s == r))
        });
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // ---- report ----
    let mode_name = if mode == Mode::Server {
        "server"
    } else {
        "proxy"
    };
    for (i, m) in macs.iter().enumerate() {
        let mut line = format!("[{mode_name} mode] {} ({m}), ms from VM start:", names[i]);
        for (s, t) in steps.get(*m).cloned().unwrap_or_default() {
            line.push_str(&format!(" {s} {:.1}s;", t as f64 / 1000.0));
        }
        eprintln!("{line}");
        eprintln!("  console: {}", vms[i].timeline());
    }
    let report = || {
        let mut s = String::new();
        for vm in &vms {
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
        if !tail.bad.is_empty() {
            s.push_str(&format!(
                "\n--- non-JSON stdout lines ---\n{}",
                tail.bad.join("\n")
            ));
        }
        s
    };
    for m in macs {
        let have = steps.get(m).cloned().unwrap_or_default();
        for r in required(m) {
            assert!(
                have.iter().any(|(s, _)| *s == r),
                "[{mode_name} mode] {m} never reached `{r}` in pxelab's events{}",
                report()
            );
        }
    }
    assert!(done);
    // Every line of the JSON face is a typed event.
    assert!(
        tail.bad.is_empty(),
        "[{mode_name} mode] stdout lines that are not events: {:?}",
        tail.bad
    );
    // Nobody presented a host key other than the pinned one, and nothing failed (an agent
    // that starts before the server logs "server is not ready" once: transient, allowed).
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
            report()
        );
    }
    // The held machine booted only after the adoption.
    let unknown = &steps[UNKNOWN_MAC];
    let at = |name: &str| {
        unknown
            .iter()
            .find(|(s, _)| *s == name)
            .map(|(_, t)| *t)
            .unwrap_or(0)
    };
    assert!(
        at("held") <= at("hold-script")
            && at("hold-script") <= at("adopted")
            && at("adopted") <= at("script"),
        "held → hold-script → adopted → script order: {unknown:?}"
    );
    // adoption went through the running instance and was written to lab.yaml
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
}
