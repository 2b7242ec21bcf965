//! Issue 17's proof on real firmware: an aarch64 UEFI VM network-boots from pxelab to the
//! arm64 node image and joins the x86 k3s server's lab as an agent.
//!
//! pxelab is alone on the segment (its own DHCP server, TFTP and HTTP, inside a network
//! namespace of the test): an x86 server VM (QEMU's iPXE ROM, as in tests/qemu_cluster.rs)
//! and an arm64 VM (`qemu-system-aarch64 -M virt -cpu cortex-a57`, TCG, AAVMF) on its
//! bridge. lab.yaml gives the arm64 node no `arch:`: its firmware says what it is. What
//! must hold, from pxelab's JSON events, `pxelab nodes --json` and the nodes themselves:
//! - AAVMF's DISCOVER carries option 93 = 11 and is answered with `ipxe-arm64.efi`
//!   (`dhcp.arm64_binary`), which it fetches whole over TFTP;
//! - that iPXE's `${buildarch}` is seen as aarch64 (`arch-seen`), and only the
//!   `boot.arch.aarch64` kernel and initramfs are fetched for it, never the x86 ones;
//! - pxelab's record says cpu aarch64 and boot path UEFI PXE, also after the node's own
//!   udhcpc asked for its address;
//! - the agent `arm-1` joins (the k3s stand-in checks the server's CA against the token)
//!   and is Ready as the server sees it; `uname -m` over SSH says aarch64.
//!
//! The step times from the arm64 VM's power-on (pxelab's event timestamps; console
//! markers where only the node knows) are printed: TCG emulates every arm64
//! instruction, so they are seconds, not tenths. The second test checks the real Debian
//! arm64 `Image` with `pxelab check` (tests/config_check_arch.rs does the same on
//! made-up headers).

mod common;
mod qemu_lab;

use std::path::Path;
use std::time::Duration;

use pxelab::config::Arch;
use pxelab::engine::event::{Event, EventKind, FetchKind, K3sStep, TransferOutcome};
use qemu_lab::tail::EventTail;
use qemu_lab::{arm64, Machine, Vm};

const NET: &str = "10.64.0";
const SERVER_MAC: &str = "52:54:00:64:00:10";
const ARM_MAC: &str = "52:54:00:64:00:11";
const IPXE: &str = "ipxe-arm64.efi";

/// lab.yaml: the x86 server and the arm64 agent (no `arch:`: its firmware tells), the
/// `boot.arch.aarch64` profile, iPXE's arm64 binary from the TFTP root. `arm_extra` is
/// appended to the agent's entry. Both consoles: the last one that exists is /dev/console.
fn lab_yaml(tftp_root: &Path, arm_extra: &str) -> String {
    format!(
        "# written by tests/qemu_arm64.rs\nname: arm64\ninterface: br0\nserver_address: {NET}.1\n\
         dhcp:\n  mode: server\n  subnet: {NET}.0/24\n  range: [{NET}.100, {NET}.150]\n  lease_time: 1h\n  arm64_binary: {IPXE}\n\
         tftp:\n  enabled: true\n  root: {}\nhttp:\n  port: 8080\n  admin_port: 7480\n\
         boot:\n  assets_dir: assets\n  kernel: vmlinuz\n  initrds: [initramfs]\n  cmdline: \"console=ttyS0 console=ttyAMA0 quiet ip=dhcp\"\n\
         \x20 arch:\n    aarch64:\n      kernel: vmlinuz-arm64\n      initrds: [initramfs-arm64]\n\
         ssh:\n  user: root\nnodes:\n\
         \x20 - mac: {SERVER_MAC}\n    hostname: node-0\n    role: k3s-server\n    arch: x86_64\n    ip: {NET}.10\n\
         \x20 - mac: {ARM_MAC}\n    hostname: arm-1\n    role: k3s-agent\n    ip: {NET}.11\n{arm_extra}",
        tftp_root.display()
    )
}

/// Whether this machine can run the VMs (root, both QEMUs, AAVMF, the image tools).
fn can_run_vms() -> bool {
    common::require_root()
        && qemu_lab::require_vm_tools()
        && arm64::require_arm64_tools()
        && common::require_programs(&["ssh", "curl"])
}

/// Both images' files in `d/assets` under the names lab.yaml gives them.
fn lay_assets(d: &Path) {
    let x86 = qemu_lab::node_image();
    let arm = arm64::node_image();
    let a = d.join("assets");
    std::fs::create_dir_all(&a).expect("assets");
    for (from, to) in [
        (&x86.kernel, "vmlinuz"),
        (&x86.initrd, "initramfs"),
        (&arm.kernel, "vmlinuz-arm64"),
        (&arm.initrd, "initramfs-arm64"),
    ] {
        std::fs::copy(from, a.join(to)).expect("copy an image file");
    }
}

fn is(e: &Event, mac: &str) -> bool {
    e.mac.map(|m| m.to_string()).as_deref() == Some(mac)
}

/// The first event of `mac` matching `f`.
fn first<'a>(ev: &'a [Event], mac: &str, f: impl Fn(&EventKind) -> bool) -> Option<&'a Event> {
    ev.iter().find(|e| is(e, mac) && f(&e.kind))
}

fn k3s(ev: &[Event], mac: &str, step: &K3sStep) -> Option<u64> {
    first(
        ev,
        mac,
        |k| matches!(k, EventKind::K3s { step: s } if s == step),
    )
    .map(|e| e.at_ms)
}

fn fetched(k: &EventKind, kind: FetchKind) -> bool {
    matches!(k, EventKind::HttpFetch { what, status: 200, .. } if *what == kind)
}

/// The arm64 node's boot steps from pxelab's events, as (step, ms since the epoch).
fn event_steps(ev: &[Event]) -> Vec<(&'static str, u64)> {
    type Pick = fn(&EventKind) -> bool;
    let picks: [(&'static str, Pick); 13] = [
        ("DISCOVER opt93=11", |k| {
            matches!(
                k,
                EventKind::DhcpDiscover {
                    arch: Some(11),
                    ipxe: false,
                    ..
                }
            )
        }),
        (
            IPXE,
            |k| matches!(k, EventKind::TftpEnd { file, outcome: TransferOutcome::Complete, .. } if file == IPXE),
        ),
        ("iPXE DHCP", |k| {
            matches!(k, EventKind::DhcpDiscover { ipxe: true, .. })
        }),
        ("boot.ipxe (arch probe)", |k| {
            fetched(k, FetchKind::ArchProbe)
        }),
        ("boot.ipxe (script)", |k| fetched(k, FetchKind::Script)),
        ("arch-seen aarch64", |k| {
            matches!(
                k,
                EventKind::ArchSeen {
                    arch: Arch::Aarch64,
                    ..
                }
            )
        }),
        ("kernel", |k| fetched(k, FetchKind::Kernel)),
        ("initramfs", |k| fetched(k, FetchKind::Initrd)),
        (
            "udhcpc",
            |k| matches!(k, EventKind::DhcpDiscover { vendor_class: Some(c), .. } if c.starts_with("udhcp")),
        ),
        ("meta-data", |k| fetched(k, FetchKind::MetaData)),
        ("user-data", |k| fetched(k, FetchKind::UserData)),
        ("ssh up", |k| matches!(k, EventKind::SshUp { .. })),
        ("k3s agent joined", |k| {
            matches!(
                k,
                EventKind::K3s {
                    step: K3sStep::Joined
                }
            )
        }),
    ];
    let mut out: Vec<(&'static str, u64)> = picks
        .iter()
        .filter_map(|(name, f)| first(ev, ARM_MAC, f).map(|e| (*name, e.at_ms)))
        .collect();
    if let Some(t) = k3s(ev, ARM_MAC, &K3sStep::Ready) {
        out.push(("Ready", t));
    }
    out
}

#[test]
fn an_arm64_uefi_vm_pxe_boots_from_pxelab_and_joins_the_x86_server_as_an_agent() {
    if !can_run_vms() {
        return;
    }
    let ipxe = match arm64::ipxe_efi() {
        Ok(p) => p,
        Err(why) => {
            common::require(
                false,
                &format!("iPXE's arm64 EFI binary from Debian 13's ipxe .deb ({why})"),
            );
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    if std::env::var_os("PXELAB_QEMU_KEEP").is_some() {
        eprintln!("keeping {}", dir.keep().display());
    }
    let d = d.as_path();
    lay_assets(d);
    let tftp = d.join("tftp");
    std::fs::create_dir_all(&tftp).expect("tftp root");
    std::fs::copy(&ipxe, tftp.join(IPXE)).expect("copy ipxe-arm64.efi");
    let ipxe_size = std::fs::metadata(&ipxe).expect("ipxe").len();
    let lab = d.join("lab.yaml");
    std::fs::write(&lab, lab_yaml(&tftp, "")).expect("lab.yaml");
    let lab_s = lab.to_string_lossy().to_string();
    let bin = common::pxelab_bin().to_string_lossy().to_string();

    let ns = common::NetNs::with_bridge("pxq-arm64", &format!("{NET}.1/24"));
    let mut pxelab = qemu_lab::start_pxelab(&ns, d, &lab);
    let mut tail = EventTail::new(&d.join("pxelab.jsonl"));
    let report = |tail: &EventTail, vms: &[&Vm]| {
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
    let server = Vm::start(&ns, "node-0", "tap0", SERVER_MAC, d);
    let mut arm = Vm::start_machine(&ns, "arm-1", "tap1", ARM_MAC, d, Machine::Arm64Uefi);

    // ---- boot to Ready, bounded: TCG arm64 and the x86 server share 2 cores ----
    let markers = [
        ("pxelab-node: init started", "/init"),
        ("pxelab-node: dropbear started", "dropbear"),
    ];
    let ready = qemu_lab::until(Duration::from_secs(420), || {
        tail.read_new();
        if let Ok(Some(st)) = pxelab.0.try_wait() {
            panic!("pxelab exited ({st})");
        }
        arm.scan_console(&markers);
        k3s(&tail.all, ARM_MAC, &K3sStep::Ready).is_some()
            && k3s(&tail.all, SERVER_MAC, &K3sStep::Ready).is_some()
    });
    let started = arm.started_ms;
    let mut steps: Vec<(String, f64)> = event_steps(&tail.all)
        .into_iter()
        .map(|(s, t)| (s.to_string(), t.saturating_sub(started) as f64 / 1000.0))
        .collect();
    for (_, step) in markers {
        if let Some(t) = arm.steps.get(step) {
            steps.push((step.to_string(), t.as_secs_f64()));
        }
    }
    steps.sort_by(|a, b| a.1.total_cmp(&b.1));
    let line: Vec<String> = steps.iter().map(|(s, t)| format!("{s} {t:.1}")).collect();
    eprintln!("arm64 UEFI VM (TCG), s from power-on: {}", line.join("; "));
    assert!(
        ready,
        "arm-1 and node-0 not both Ready{}",
        report(&tail, &[&server, &arm])
    );

    // ---- the firmware said arm64 UEFI and got the arm64 iPXE over TFTP ----
    let ev = &tail.all;
    let disc = first(ev, ARM_MAC, |k| {
        matches!(k, EventKind::DhcpDiscover { ipxe: false, vendor_class: Some(c), .. } if c.starts_with("PXEClient"))
    })
    .expect("AAVMF's DISCOVER");
    assert!(
        matches!(disc.kind, EventKind::DhcpDiscover { arch: Some(11), .. }),
        "option 93 = 11: {disc:?}"
    );
    let offered = first(
        ev,
        ARM_MAC,
        |k| matches!(k, EventKind::DhcpReply { boot_file: Some(f), .. } if f == IPXE),
    );
    assert!(offered.is_some(), "no reply named {IPXE}");
    let tftp_end = first(ev, ARM_MAC, |k| {
        matches!(k, EventKind::TftpEnd { file, outcome: TransferOutcome::Complete, .. } if file == IPXE)
    })
    .expect("ipxe-arm64.efi fetched whole over TFTP");
    assert!(
        matches!(tftp_end.kind, EventKind::TftpEnd { bytes, .. } if bytes == ipxe_size),
        "{tftp_end:?}"
    );
    assert!(
        first(ev, ARM_MAC, |k| matches!(
            k,
            EventKind::ArchSeen {
                arch: Arch::Aarch64,
                ..
            }
        ))
        .is_some(),
        "iPXE's ${{buildarch}} not seen as aarch64"
    );

    // ---- only the arm64 kernel and initramfs went to it, the x86 ones to the server ----
    let boot_files = |mac: &str| -> Vec<(FetchKind, String, u64)> {
        ev.iter()
            .filter(|e| is(e, mac))
            .filter_map(|e| match &e.kind {
                EventKind::HttpFetch {
                    path,
                    what,
                    bytes,
                    status: 200,
                    ..
                } if matches!(what, FetchKind::Kernel | FetchKind::Initrd) => {
                    Some((*what, path.clone(), *bytes))
                }
                _ => None,
            })
            .collect()
    };
    let arm_files = boot_files(ARM_MAC);
    let size = |name: &str| std::fs::metadata(d.join("assets").join(name)).map_or(0, |m| m.len());
    for (what, name) in [
        (FetchKind::Kernel, "vmlinuz-arm64"),
        (FetchKind::Initrd, "initramfs-arm64"),
    ] {
        assert!(
            arm_files.iter().any(|(w, p, b)| *w == what
                && p.ends_with(&format!("/{name}"))
                && *b == size(name)),
            "{name} not fetched whole by arm-1: {arm_files:?}"
        );
    }
    assert!(
        arm_files.iter().all(|(_, p, _)| p.ends_with("-arm64")),
        "arm-1 fetched an x86 file: {arm_files:?}"
    );
    let server_files = boot_files(SERVER_MAC);
    assert!(
        !server_files.is_empty() && server_files.iter().all(|(_, p, _)| !p.ends_with("-arm64")),
        "node-0's boot files: {server_files:?}"
    );

    // ---- pxelab's record, after the node's own udhcpc asked too ----
    assert!(
        first(ev, ARM_MAC, |k| matches!(k, EventKind::DhcpDiscover { vendor_class: Some(c), .. } if c.starts_with("udhcp")))
            .is_some(),
        "the node's udhcpc was not heard"
    );
    let o = ns
        .command(&["timeout", "30", &bin, "--config", &lab_s, "nodes", "--json"])
        .output()
        .expect("pxelab nodes --json");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&o.stdout).expect("nodes JSON");
    let node = reply["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["mac"] == ARM_MAC))
        .unwrap_or_else(|| panic!("arm-1 not in {reply}"));
    assert_eq!(
        (node["cpu"].as_str(), node["boot_path"].as_str()),
        (Some("aarch64"), Some("uefi-pxe")),
        "{node}"
    );

    // ---- the nodes themselves ----
    let uname = |ip: &str| {
        qemu_lab::ssh_root(&ns, d, ip, "uname -m")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| panic!("{e}{}", report(&tail, &[&server, &arm])))
    };
    assert_eq!(uname(&format!("{NET}.11")), "aarch64");
    assert_eq!(uname(&format!("{NET}.10")), "x86_64");
    let listed = qemu_lab::ssh_root(
        &ns,
        d,
        &format!("{NET}.10"),
        "k3s kubectl get nodes -o json",
    )
    .expect("kubectl get nodes on the server");
    let nodes = pxelab::watch::parse::nodes_ready(&listed).expect("nodes JSON");
    assert!(
        nodes.iter().any(|(n, ready)| n == "arm-1" && *ready),
        "arm-1 not Ready on the server: {nodes:?}"
    );
    let failed: Vec<&Event> = ev
        .iter()
        .filter(|e| matches!(e.kind, EventKind::NodeFailed { .. }))
        .collect();
    assert!(failed.is_empty(), "failures: {failed:?}");
}

/// `pxelab check --no-host` in `dir`: exit code and output.
fn check(dir: &Path, text: &str) -> (Option<i32>, String) {
    std::fs::write(dir.join("lab.yaml"), text).expect("lab.yaml");
    let o = std::process::Command::new(common::pxelab_bin())
        .current_dir(dir)
        .env_remove("PXELAB_CONFIG")
        .args(["check", "--no-host"])
        .output()
        .expect("pxelab check");
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.code(), out)
}

#[test]
fn the_debian_arm64_image_checks_clean_for_aarch64_and_is_refused_on_an_x86_node() {
    if !(qemu_lab::require_vm_tools() && arm64::require_arm64_tools()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    lay_assets(d);
    let tftp = d.join("tftp");
    std::fs::create_dir_all(&tftp).expect("tftp root");
    std::fs::write(tftp.join(IPXE), b"not read").expect("tftp file");
    // The profile the firmware picks: the real Image and initramfs are arm64.
    let (code, out) = check(d, &lab_yaml(&tftp, ""));
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains(": error: "), "{out}");
    // The same node configured as x86 with the arm64 kernel: refused, reading the file.
    let text = lab_yaml(&tftp, "    arch: x86_64\n    kernel: vmlinuz-arm64\n");
    let (code, out) = check(d, &text);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "vmlinuz-arm64 is an aarch64 kernel (read from the file), but nodes[1] (arm-1) is x86_64"
        ),
        "{out}"
    );
}
