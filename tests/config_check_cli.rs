//! `pxelab check` and `pxelab render` as a user runs them: the real binary, its output
//! and exit codes, on the shipped lab and on broken ones; and `check` against a real
//! machine's interfaces, in a network namespace that holds the seed's NIC.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pxelab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pxelab"))
        .current_dir(dir)
        .env_remove("PXELAB_CONFIG")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A temporary folder holding a copy of the shipped lab.yaml.
fn shipped_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.yaml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("lab.yaml"),
        &path,
    )
    .unwrap();
    (dir, path)
}

#[test]
fn shipped_lab_checks_clean_with_asset_warnings_and_prints_the_plan() {
    let (dir, _) = shipped_copy();
    let o = pxelab(dir.path(), &["check", "--no-host"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.contains(": warning: ")).collect();
    assert_eq!(warnings.len(), 3, "{out}");
    assert!(warnings[0].starts_with("lab.yaml:"), "{out}");
    assert!(
        warnings[0].ends_with("download it from https://dl-cdn.alpinelinux.org/alpine/v3.21/releases/x86_64/netboot/vmlinuz-lts"),
        "{out}"
    );
    assert!(
        out.contains("lab homelab: 7 node(s), dhcp proxy, server 192.168.64.134"),
        "{out}"
    );
    for i in 0..7 {
        let role = if i == 0 { "k3s-server" } else { "k3s-agent" };
        let head = format!("node-{i}  a0:1a:2c:c3:d4:e{i}  {role}  192.168.64.14{i}");
        assert!(out.contains(&head), "missing `{head}` in\n{out}");
        assert!(out.contains(&format!(
            "ds=nocloud;s=http://192.168.64.134:8080/nocloud/a0:1a:2c:c3:d4:e{i}/\n"
        )));
    }
    assert!(out.contains("  kernel     http://192.168.64.134:8080/assets/vmlinuz-lts\n"));
    assert!(out.contains("  initrd     http://192.168.64.134:8080/assets/initramfs-lts\n"));
    assert!(out.contains("  user-data  "), "{out}");
    assert!(
        out.ends_with("check ok: 0 error(s), 3 warning(s)\n"),
        "{out}"
    );

    // --strict: the same warnings now fail the check.
    let o = pxelab(dir.path(), &["check", "--strict", "--no-host"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).ends_with(
        "check FAILED: 0 error(s), 3 warning(s) (--strict: warnings count as errors)\n"
    ));

    // With the netboot files in place, --strict passes too.
    std::fs::create_dir(dir.path().join("alpine-v3.21")).unwrap();
    for f in ["vmlinuz-lts", "initramfs-lts", "modloop-lts"] {
        std::fs::write(dir.path().join("alpine-v3.21").join(f), b"x").unwrap();
    }
    let o = pxelab(dir.path(), &["check", "--strict", "--no-host"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.ends_with("check ok: 0 error(s), 0 warning(s)\n"),
        "{out}"
    );
}

#[test]
fn broken_lab_lists_every_problem_and_exits_1() {
    let (dir, path) = shipped_copy();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("mac: a0:1a:2c:c3:d4:e3", "mac: a0:1a:2c:c3:d4:e1")
        .replace("hostname: node-5", "hostname: node-4")
        .replace("lease_time: 12h", "lease_time: forever");
    // The shipped lab.yaml's comments move its lines; the lines the errors must name are
    // found in the edited text (the second duplicate MAC, the second `node-4`).
    let line_of = |needle: &str, nth: usize| {
        1 + text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .nth(nth)
            .map(|(i, _)| i)
            .unwrap()
    };
    let (lease, mac, host) = (
        line_of("lease_time: forever", 0),
        line_of("mac: a0:1a:2c:c3:d4:e1", 1),
        line_of("hostname: node-4", 1),
    );
    std::fs::write(&path, &text).unwrap();
    let o = pxelab(dir.path(), &["check", "--no-host"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(
        errors,
        [
            format!("lab.yaml:{lease}:15: error: dhcp.lease_time: `forever` is not a lease time (seconds, or a number with s, m, h or d: 3600, 30m, 12h, 1d; or infinite)"),
            format!("lab.yaml:{mac}:10: error: nodes[3].mac: duplicate MAC a0:1a:2c:c3:d4:e1 (also nodes[1] `node-1`)"),
            format!("lab.yaml:{host}:15: error: nodes[5].hostname: duplicate hostname `node-4` (also nodes[4] a0:1a:2c:c3:d4:e4)"),
        ],
        "{out}"
    );
    // No plan for a lab that cannot run.
    assert!(!out.contains("lab homelab:"), "{out}");
    assert!(
        out.ends_with("check FAILED: 3 error(s), 3 warning(s)\n"),
        "{out}"
    );
}

#[test]
fn syntax_error_and_missing_file_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lab.yaml"), "name: x\nboot: [\n").unwrap();
    let o = pxelab(dir.path(), &["check", "--no-host"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).starts_with("lab.yaml:3:1: error: "),
        "{}",
        stdout(&o)
    );
    let o = pxelab(dir.path(), &["--config", "nope.yaml", "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).starts_with("nope.yaml: error: cannot read: "),
        "{}",
        stdout(&o)
    );
}

#[test]
fn render_prints_exactly_what_is_served() {
    let (dir, path) = shipped_copy();
    let text = std::fs::read_to_string(&path).unwrap();
    let lab = pxelab::config::load_validated(&path, &text).unwrap();
    let n = lab.node_by_hostname("node-3").unwrap();
    let cases = [
        (
            vec!["render", "node-3"],
            pxelab::render::ipxe_script(&lab, n).unwrap(),
        ),
        (
            vec!["render", "a0-1a-2c-c3-d4-e3", "ipxe"],
            pxelab::render::ipxe_script(&lab, n).unwrap(),
        ),
        (
            vec!["render", "node-3", "cmdline"],
            pxelab::render::kernel_cmdline(&lab, n).unwrap() + "\n",
        ),
        (
            vec!["render", "A0:1A:2C:C3:D4:E3", "meta-data"],
            pxelab::render::meta_data(&lab, n).unwrap(),
        ),
    ];
    for (args, want) in cases {
        let o = pxelab(dir.path(), &args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(stdout(&o), want, "{args:?}");
    }
    let o = pxelab(dir.path(), &["render", "node-3", "user-data"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ud = stdout(&o);
    assert!(
        ud.starts_with("#cloud-config\n# node-3 (k3s-agent)"),
        "{ud}"
    );
    yaml_serde::from_str::<yaml_serde::Value>(&ud).unwrap();

    let o = pxelab(dir.path(), &["render", "node-9"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no node `node-9`"));
}

/// The seed's machine, for real: a namespace whose NIC is `enp4s0f4u1u3` with
/// 192.168.64.134/27 (a veth pair inside it: nothing leaves the namespace, nothing is
/// sent). The shipped lab says `interface: eth0`: `check` names the interfaces that
/// exist, and `up` refuses before binding anything, with the same line.
#[test]
fn check_and_up_hold_the_lab_against_the_interfaces_of_this_machine() {
    if !common::require_root() || !common::require_program("ip") {
        return;
    }
    let ns = common::NetNs::new("pxck-seed");
    ns.exec_ok(&[
        "ip",
        "link",
        "add",
        "enp4s0f4u1u3",
        "type",
        "veth",
        "peer",
        "name",
        "pxck-peer",
    ]);
    ns.exec_ok(&[
        "ip",
        "addr",
        "add",
        "192.168.64.134/27",
        "dev",
        "enp4s0f4u1u3",
    ]);
    ns.exec_ok(&["ip", "link", "set", "enp4s0f4u1u3", "up"]);
    let (dir, path) = shipped_copy();
    let root = dir.path().join("ipxe");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("undionly.kpxe"), b"ipxe").unwrap();
    let base = std::fs::read_to_string(&path)
        .unwrap()
        .replace("root: /usr/lib/ipxe", "root: ipxe");
    let bin = common::pxelab_bin();
    let bin = bin.to_str().unwrap();
    let cfg = path.to_str().unwrap();
    let check = |text: &str| -> (Option<i32>, String) {
        std::fs::write(&path, text).unwrap();
        let o = ns.exec(&[bin, "-c", cfg, "check"]);
        (o.status.code(), stdout(&o))
    };
    let (code, out) = check(&base);
    assert_eq!(code, Some(1), "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.contains(": error: ")).collect();
    let want = format!(
        "{cfg}:14:12: error: interface: `eth0` does not exist on this machine (interfaces here: enp4s0f4u1u3 192.168.64.134/27, lo 127.0.0.1/8, pxck-peer); set interface: to the lab's NIC"
    );
    assert_eq!(errors, [want.as_str()], "{out}");
    // `up` refuses with the same line, before it binds anything.
    let o = ns.exec(&[bin, "-c", cfg, "up", "--no-tui"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&want) && err.contains("--keep-going"), "{err}");

    // The right NIC: no error; an address it does not have: named with the one it has.
    let fixed = base.replace("interface: eth0", "interface: enp4s0f4u1u3");
    let (code, out) = check(&fixed);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = check(&fixed.replace(
        "server_address: 192.168.64.134",
        "server_address: 192.168.64.135",
    ));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("{cfg}:15:17: error: server_address: 192.168.64.135 is not an address of interface enp4s0f4u1u3 (its addresses: 192.168.64.134/27), so no node can reach pxelab there")),
        "{out}"
    );
    // --no-host checks the file alone.
    std::fs::write(&path, &base).unwrap();
    let o = ns.exec(&[bin, "-c", cfg, "check", "--no-host"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// A lab.yaml far beyond any lab (the 50 MB) is refused at once, before a byte
/// is parsed, naming its size, the limit and how to raise it; the variable moves it.
#[test]
fn an_oversized_lab_yaml_is_refused_at_once_and_the_limit_can_be_raised() {
    let (dir, path) = shipped_copy();
    let mut text = std::fs::read_to_string(&path).unwrap();
    let node = "  - mac: a0:1a:2c:c3:d4:e6\n    hostname: node-6\n    role: k3s-agent\n";
    let mut i = 0u32;
    while text.len() < 9 << 20 {
        let b = i.to_be_bytes();
        text.push_str(
            &node
                .replace(
                    "a0:1a:2c:c3:d4:e6",
                    &format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3]),
                )
                .replace("node-6", &format!("n{i}")),
        );
        i += 1;
    }
    std::fs::write(&path, &text).unwrap();
    let started = std::time::Instant::now();
    let o = pxelab(dir.path(), &["check", "--no-host"]);
    let took = started.elapsed();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(
        out.lines().next().unwrap_or(""),
        format!("lab.yaml: error: {} bytes ({:.1} MiB), over the limit of 8388608 bytes (8.0 MiB): refused before parsing. Split the machines into several labs (one folder and lab.yaml each), or raise the limit with PXELAB_MAX_LAB_BYTES=16777216", text.len(), text.len() as f64 / (1 << 20) as f64)
    );
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    // The variable moves the limit: at 1K even the shipped lab is refused.
    let (small, _) = shipped_copy();
    let o = Command::new(env!("CARGO_BIN_EXE_pxelab"))
        .current_dir(small.path())
        .env("PXELAB_MAX_LAB_BYTES", "1K")
        .args(["check", "--no-host"])
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("over the limit of 1024 bytes"),
        "{}",
        stdout(&o)
    );
}
