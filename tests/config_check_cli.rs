//! `pxelab check` and `pxelab render` as a user runs them: the real binary, its output
//! and exit codes, on the shipped lab and on broken ones.

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
    let o = pxelab(dir.path(), &["check"]);
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
    let o = pxelab(dir.path(), &["check", "--strict"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).ends_with(
        "check FAILED: 0 error(s), 3 warning(s) (--strict: warnings count as errors)\n"
    ));

    // With the netboot files in place, --strict passes too.
    std::fs::create_dir(dir.path().join("alpine-v3.21")).unwrap();
    for f in ["vmlinuz-lts", "initramfs-lts", "modloop-lts"] {
        std::fs::write(dir.path().join("alpine-v3.21").join(f), b"x").unwrap();
    }
    let o = pxelab(dir.path(), &["check", "--strict"]);
    let out = stdout(&o);
    // The TFTP root may lack iPXE binaries on a machine without the `ipxe` package.
    let ipxe_present = Path::new("/usr/lib/ipxe/undionly.kpxe").is_file();
    if ipxe_present {
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(
            out.ends_with("check ok: 0 error(s), 0 warning(s)\n"),
            "{out}"
        );
    }
}

#[test]
fn broken_lab_lists_every_problem_and_exits_1() {
    let (dir, path) = shipped_copy();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("mac: a0:1a:2c:c3:d4:e3", "mac: a0:1a:2c:c3:d4:e1")
        .replace("hostname: node-5", "hostname: node-4")
        .replace("lease_time: 12h", "lease_time: forever");
    std::fs::write(&path, text).unwrap();
    let o = pxelab(dir.path(), &["check"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(
        errors,
        [
            "lab.yaml:26:15: error: dhcp.lease_time: `forever` is not a lease time (seconds, or a number with s, m, h or d: 3600, 30m, 12h, 1d)",
            "lab.yaml:112:10: error: nodes[3].mac: duplicate MAC a0:1a:2c:c3:d4:e1 (also nodes[1] `node-1`)",
            "lab.yaml:121:15: error: nodes[5].hostname: duplicate hostname `node-4` (also nodes[4] a0:1a:2c:c3:d4:e4)",
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
    let o = pxelab(dir.path(), &["check"]);
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
