//! Test harness for real VMs: the node image (scripts/build-node-image.sh), QEMU guests
//! on tap devices of a test network namespace, their serial logs, an OpenSSH client that
//! trusts only a pinned host key, and a per-VM timeline of boot steps.
//!
//! Include with `mod common; mod qemu_lab;`. Everything it starts is killed in `Drop`.
#![allow(dead_code)]

pub mod arm64;
pub mod tail;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{self, ChildGuard, NetNs};

/// The node kernel and initramfs.
#[derive(Debug, Clone)]
pub struct Image {
    /// vmlinuz (stock Debian kernel).
    pub kernel: PathBuf,
    /// initramfs with busybox, dropbear, the virtio modules and pxelab's /init.
    pub initrd: PathBuf,
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds (or reuses) the node image, in `$PXELAB_NODE_IMAGE_DIR` or under the cargo
/// target dir. Bounded to 15 minutes (a cold build downloads ~75 MB of .debs).
pub fn node_image() -> Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let dir = std::env::var_os("PXELAB_NODE_IMAGE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("node-image"));
            let out = Command::new("timeout")
                .arg("900")
                .arg(repo().join("scripts/build-node-image.sh"))
                .arg(&dir)
                .stdin(Stdio::null())
                .output()
                .expect("run scripts/build-node-image.sh");
            assert!(
                out.status.success(),
                "build-node-image.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let img = Image {
                kernel: dir.join("vmlinuz"),
                initrd: dir.join("initramfs"),
            };
            assert!(
                img.kernel.is_file() && img.initrd.is_file(),
                "image files missing in {dir:?}"
            );
            img
        })
        .clone()
}

/// Whether the tools for VM tests are here (root is checked separately).
pub fn require_vm_tools() -> bool {
    // Developers' landing runs (/work/land.sh) skip the minutes-long VM boots; CI never does.
    if std::env::var_os("PXELAB_SKIP_VM").is_some() && !common::in_ci() {
        common::skips::record(
            "VM boots (PXELAB_SKIP_VM turns them off; they run in CI and on demand)",
            None,
            "unset PXELAB_SKIP_VM",
        );
        return false;
    }
    common::require_program("qemu-system-x86_64")
        && common::require_program("ssh")
        && common::require_program("ssh-keygen")
        && common::require_program("apt-get")
        && common::require_program("dpkg-deb")
        && common::require_program("python3")
}

/// `kvm` when a short probe shows KVM boots the node kernel here, else `tcg`.
/// `PXELAB_QEMU_ACCEL` overrides. (On nested `kvm_pvm` hosts /dev/kvm exists but a stock
/// kernel prints nothing: the probe catches that.)
pub fn accel() -> &'static str {
    static ACCEL: OnceLock<&'static str> = OnceLock::new();
    ACCEL.get_or_init(|| {
        if let Ok(a) = std::env::var("PXELAB_QEMU_ACCEL") {
            return if a == "kvm" { "kvm" } else { "tcg" };
        }
        if !Path::new("/dev/kvm").exists() {
            return "tcg";
        }
        let img = node_image();
        let dir = tempfile::tempdir().expect("tempdir");
        let serial = dir.path().join("probe.log");
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-accel",
                "kvm",
                "-m",
                "256",
                "-display",
                "none",
                "-monitor",
                "none",
                "-no-reboot",
            ])
            .arg("-kernel")
            .arg(&img.kernel)
            .args(["-append", "console=ttyS0 panic=-1"])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return "tcg" };
        let _guard = ChildGuard(child);
        let ok = common::wait_for(Duration::from_secs(8), Duration::from_millis(200), || {
            std::fs::read_to_string(&serial)
                .ok()
                .filter(|s| s.contains("Linux version"))
        })
        .is_some();
        let a = if ok { "kvm" } else { "tcg" };
        eprintln!("qemu accel probe: {a}");
        a
    })
}

/// Which machine QEMU emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// qemu-system-x86_64 with QEMU's iPXE ROM (`-boot n`), KVM when the probe allows.
    X86,
    /// qemu-system-aarch64 `virt` with AAVMF (UEFI PXE on its own virtio-net driver), TCG
    /// (see [`arm64`]).
    Arm64Uefi,
}

/// A VM network-booting from a tap of the namespace's bridge.
pub struct Vm {
    /// A label for messages.
    pub name: String,
    /// Its MAC.
    pub mac: String,
    /// Its tap device on the namespace's bridge.
    pub tap: String,
    /// Power-ons so far (1 after `start`).
    pub boots: u32,
    /// Serial console log file (of the current power-on).
    pub serial: PathBuf,
    /// When QEMU was started.
    pub started: Instant,
    /// The same, wall clock in ms since the Unix epoch (to compare with event `at_ms`).
    pub started_ms: u64,
    /// First time each step was seen, from VM start.
    pub steps: BTreeMap<String, Duration>,
    /// What QEMU emulates (a power cycle starts the same machine again).
    pub machine: Machine,
    order: Vec<String>,
    child: ChildGuard,
}

impl Vm {
    /// Adds tap `tap` to the namespace's bridge and starts QEMU on it with `-boot n` and
    /// QEMU's own iPXE ROM for virtio-net.
    pub fn start(ns: &NetNs, name: &str, tap: &str, mac: &str, dir: &Path) -> Vm {
        Self::start_machine(ns, name, tap, mac, dir, Machine::X86)
    }

    /// Adds tap `tap` to the namespace's bridge and starts `machine` on it.
    pub fn start_machine(
        ns: &NetNs,
        name: &str,
        tap: &str,
        mac: &str,
        dir: &Path,
        machine: Machine,
    ) -> Vm {
        ns.add_tap(tap);
        let (child, serial) = Self::power_on(ns, name, tap, mac, dir, 1, machine);
        Vm {
            name: name.to_string(),
            mac: mac.to_string(),
            tap: tap.to_string(),
            boots: 1,
            serial,
            started: Instant::now(),
            started_ms: now_ms(),
            steps: BTreeMap::new(),
            machine,
            order: Vec::new(),
            child: ChildGuard(child),
        }
    }

    /// Pulls the plug (QEMU killed: no shutdown, no DHCP release) and powers the same
    /// machine on again after `off`: same MAC, same tap, a fresh serial log. Steps
    /// and times start again from the new power-on.
    pub fn power_cycle(&mut self, ns: &NetNs, dir: &Path, off: Duration) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        std::thread::sleep(off);
        self.boots += 1;
        let (child, serial) = Self::power_on(
            ns,
            &self.name,
            &self.tap,
            &self.mac,
            dir,
            self.boots,
            self.machine,
        );
        self.child = ChildGuard(child);
        self.serial = serial;
        self.started = Instant::now();
        self.started_ms = now_ms();
        self.steps.clear();
        self.order.clear();
    }

    fn power_on(
        ns: &NetNs,
        name: &str,
        tap: &str,
        mac: &str,
        dir: &Path,
        boot: u32,
        machine: Machine,
    ) -> (std::process::Child, PathBuf) {
        let serial = dir.join(format!("{name}.boot{boot}.serial.log"));
        let _ = std::fs::remove_file(&serial);
        let qemu_err = std::fs::File::create(dir.join(format!("{name}.boot{boot}.qemu.log")))
            .expect("qemu log");
        if machine == Machine::Arm64Uefi {
            let child = arm64::qemu(ns, name, tap, mac, dir, &serial)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(qemu_err)
                .spawn()
                .expect("start qemu-system-aarch64");
            return (child, serial);
        }
        let accel = accel();
        let child = ns
            .command(&[
                "qemu-system-x86_64",
                "-accel",
                accel,
                "-m",
                "512",
                "-boot",
                "n",
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                &format!("file:{}", serial.display()),
                "-netdev",
                &format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
                "-device",
                &format!("virtio-net-pci,netdev=n0,mac={mac}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(qemu_err)
            .spawn()
            .expect("start qemu-system-x86_64");
        (child, serial)
    }

    /// The serial console so far.
    pub fn console(&self) -> String {
        std::fs::read_to_string(&self.serial).unwrap_or_default()
    }

    /// Records `step` at the current time unless it was already recorded.
    pub fn mark(&mut self, step: &str) {
        self.mark_at(step, Instant::now());
    }

    /// Records `step` at `at` unless it was already recorded.
    pub fn mark_at(&mut self, step: &str, at: Instant) {
        if !self.steps.contains_key(step) {
            self.steps
                .insert(step.to_string(), at.saturating_duration_since(self.started));
            self.order.push(step.to_string());
        }
    }

    /// Checks the console for each `(marker, step)` and marks the steps it shows.
    pub fn scan_console(&mut self, markers: &[(&str, &str)]) {
        let text = self.console();
        for (marker, step) in markers {
            if text.contains(marker) {
                self.mark(step);
            }
        }
    }

    /// One line per step: time from VM start.
    pub fn timeline(&self) -> String {
        let mut s = format!("{} ({}):", self.name, self.mac);
        for step in &self.order {
            s.push_str(&format!(" {step} {:.1}s;", self.steps[step].as_secs_f64()));
        }
        s
    }
}

/// Now, in ms since the Unix epoch (to compare with event `at_ms`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Console markers printed by the node image's /init, as (marker, step).
pub const CONSOLE_MARKERS: &[(&str, &str)] = &[
    ("pxelab-node: init started", "init"),
    ("pxelab-node: network up", "udhcpc"),
    ("pxelab-node: fetched meta-data", "meta-data"),
    ("pxelab-node: fetched user-data", "user-data"),
    ("pxelab-node: dropbear started", "dropbear"),
    ("pxelab-node: tiny-cloud: complete", "tiny-cloud complete"),
];

/// An operator key pair and the pinned host key pair of one node, made with ssh-keygen.
pub struct Keys {
    /// Directory holding them.
    pub dir: PathBuf,
}

impl Keys {
    /// Generates `op` (operator) and `host-<name>` ed25519 keys under `dir`.
    pub fn new(dir: &Path, hosts: &[&str]) -> Keys {
        for k in std::iter::once("op".to_string()).chain(hosts.iter().map(|h| format!("host-{h}")))
        {
            let p = dir.join(&k);
            if !p.exists() {
                common::sh(
                    "ssh-keygen",
                    &[
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        &k,
                        "-f",
                        &p.to_string_lossy(),
                    ],
                );
            }
        }
        Keys {
            dir: dir.to_path_buf(),
        }
    }

    /// The operator's private key file.
    pub fn operator(&self) -> PathBuf {
        self.dir.join("op")
    }

    /// A public key line (`op` or `host-NAME`).
    pub fn public(&self, which: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{which}.pub")))
            .expect("public key")
            .trim()
            .to_string()
    }

    /// A private key (OpenSSH format).
    pub fn private(&self, which: &str) -> String {
        std::fs::read_to_string(self.dir.join(which)).expect("private key")
    }

    /// The SHA256 fingerprint of a public key.
    pub fn fingerprint(&self, which: &str) -> String {
        let out = common::sh(
            "ssh-keygen",
            &[
                "-l",
                "-f",
                &self.dir.join(format!("{which}.pub")).to_string_lossy(),
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }
}

/// Runs `cmd` on `user@ip` with OpenSSH from inside the namespace, trusting only
/// `host_pub` (StrictHostKeyChecking=yes with a known_hosts holding just that key).
/// Bounded: 5 s connect timeout, 30 s overall.
pub fn ssh_pinned(
    ns: &NetNs,
    keys: &Keys,
    host_pub: &str,
    user: &str,
    ip: &str,
    cmd: &str,
) -> Output {
    let kh = keys.dir.join(format!("known_hosts-{ip}"));
    std::fs::write(&kh, format!("{ip} {host_pub}\n")).expect("known_hosts");
    ns.command(&[
        "timeout",
        "30",
        "ssh",
        "-i",
        &keys.operator().to_string_lossy(),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        &format!("UserKnownHostsFile={}", kh.display()),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "HostKeyAlgorithms=ssh-ed25519",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
        &format!("{user}@{ip}"),
        cmd,
    ])
    .stdin(Stdio::null())
    .output()
    .expect("run ssh")
}

/// The `#cloud-config` user-data shape pxelab renders, for the harness's own setups:
/// a user with keys, the pinned host key and k3s files in write_files, runcmd starting k3s.
pub fn cloud_config(
    user: &str,
    operator_pub: &str,
    host_key: &str,
    files: &[(&str, &str, &str)],
) -> String {
    let mut s = String::from("#cloud-config\nusers:\n  - default\n");
    s.push_str(&format!(
        "  - name: {user}\n    shell: /bin/sh\n    groups: [wheel]\n    ssh_authorized_keys:\n      - {operator_pub}\n"
    ));
    s.push_str("write_files:\n");
    s.push_str("  - path: /etc/ssh/ssh_host_ed25519_key\n    permissions: '0600'\n    owner: root:root\n    content: |\n");
    for l in host_key.lines() {
        s.push_str(&format!("      {l}\n"));
    }
    for (path, mode, content) in files {
        s.push_str(&format!(
            "  - path: {path}\n    permissions: '{mode}'\n    content: |\n"
        ));
        for l in content.lines() {
            s.push_str(&format!("      {l}\n"));
        }
    }
    s.push_str(
        "packages:\n  - k3s\nruncmd:\n  - rc-update add k3s default\n  - rc-service k3s start\n",
    );
    s
}

/// Polls `f` until it returns true or `limit` passes; returns whether it did.
pub fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    common::wait_for(limit, Duration::from_millis(250), || f().then_some(())).is_some()
}

/// A process started inside the namespace, killed on drop, its output in `log`.
pub fn spawn_logged(ns: &NetNs, argv: &[&str], log: &Path) -> ChildGuard {
    let f = std::fs::File::create(log).expect("log file");
    let f2 = f.try_clone().expect("log file");
    let child = ns
        .command(argv)
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(f2)
        .spawn()
        .unwrap_or_else(|e| panic!("start {argv:?}: {e}"));
    ChildGuard(child)
}

/// Runs `cmd` as root on `ip` with the operator key pxelab made beside `lab_dir`'s
/// lab.yaml (`.pxelab/operator_ed25519`); bounded to 30 s. Its stdout, or an error.
pub fn ssh_root(ns: &NetNs, lab_dir: &Path, ip: &str, cmd: &str) -> Result<String, String> {
    let key = lab_dir.join(".pxelab/operator_ed25519");
    let out = ns
        .command(&[
            "timeout",
            "30",
            "ssh",
            "-i",
            &key.to_string_lossy(),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            &format!("root@{ip}"),
            cmd,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ssh: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ssh {ip} {cmd}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `pxelab up --no-tui --json` for `lab` in `ns`, as an operator runs it headless: its
/// events go to `dir/pxelab.jsonl` (read with [`tail::EventTail`]) and its stderr to
/// `dir/pxelab.stderr` (what a failing test reports). Killed in `Drop`.
pub fn start_pxelab(ns: &NetNs, dir: &Path, lab: &Path) -> ChildGuard {
    let out = std::fs::File::create(dir.join("pxelab.jsonl")).expect("pxelab.jsonl");
    let err = std::fs::File::create(dir.join("pxelab.stderr")).expect("pxelab.stderr");
    let bin = common::pxelab_bin().to_string_lossy().to_string();
    let lab = lab.to_string_lossy().to_string();
    ChildGuard(
        ns.command(&[&bin, "--config", &lab, "up", "--no-tui", "--json"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start pxelab"),
    )
}
