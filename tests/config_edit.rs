//! Adoption write-back: comments, blank lines and key order survive (whole-text
//! comparisons), a concurrent edit is never overwritten, and a SIGKILL in the middle of
//! a write leaves the old file or the new one, never a half.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pxelab::config::{edit, load_validated, ConfigError, Lab, NodeEntry};
use pxelab::Mac;

const LAB: &str = "\
# My lab. Comments everywhere must survive.
name: t   # the name
server_address: 10.0.0.1

boot:
  kernel: vmlinuz-lts   # lts kernel
  initrds: [initramfs-lts]
  cmdline: ip=dhcp

# The machines.
nodes:
  # the server
  - mac: 52:54:00:00:00:01
    hostname: s0   # keep me
    role: k3s-server
    ip: 10.0.0.10

  - mac: 52:54:00:00:00:02
    role: k3s-agent      # role before hostname, on purpose
    hostname: a1
  # trailing comment inside nodes
theme: dark
";

fn write_lab(text: &str) -> (tempfile::TempDir, Lab) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.yaml");
    std::fs::write(&path, text).unwrap();
    let lab = load_validated(&path, text).unwrap();
    (dir, lab)
}

fn entry(mac: &str, hostname: &str, role: &str, ip: Option<&str>) -> NodeEntry {
    NodeEntry {
        mac: mac.parse().unwrap(),
        hostname: hostname.to_string(),
        role: role.to_string(),
        ip: ip.map(|i| i.parse().unwrap()),
        cmdline_extra: None,
        kernel: None,
        initrds: None,
        modloop: None,
        power: None,
        arch: None,
    }
}

fn on_disk(lab: &Lab) -> String {
    std::fs::read_to_string(&lab.path).unwrap()
}

#[test]
fn add_keeps_everything_and_follows_the_items_style() {
    let (_d, lab) = write_lab(LAB);
    let new = edit::add_node(
        &lab,
        &entry("52:54:00:00:00:03", "a2", "k3s-agent", Some("10.0.0.12")),
    )
    .unwrap();
    let want = LAB.replace(
        "    hostname: a1\n",
        "    hostname: a1\n  - mac: 52:54:00:00:00:03\n    hostname: a2\n    role: k3s-agent\n    ip: 10.0.0.12\n",
    );
    assert_eq!(on_disk(&lab), want);
    assert_eq!(new.source, want);
    assert_eq!(new.file.nodes.len(), 3);
    // Adding the same MAC again is refused.
    assert!(matches!(
        edit::add_node(&new, &entry("52:54:00:00:00:03", "x", "k3s-agent", None)),
        Err(ConfigError::AlreadyKnown { .. })
    ));
}

#[test]
fn add_to_other_list_shapes() {
    let base = "name: t\nk3s: {server_url: \"https://10.0.0.1:6443\"}\nboot:\n  kernel: k\n";
    let e = entry("52:54:00:00:00:09", "s9", "k3s-server", None);
    let cases = [
        // No nodes key at all.
        (base.to_string(), format!("{base}nodes:\n  - mac: 52:54:00:00:00:09\n    hostname: s9\n    role: k3s-server\n")),
        // An empty flow list with a comment after it.
        (
            format!("{base}nodes: []   # none yet\ntheme: dark\n"),
            format!("{base}nodes:    # none yet\n  - mac: 52:54:00:00:00:09\n    hostname: s9\n    role: k3s-server\ntheme: dark\n"),
        ),
        // A zero-indented block list.
        (
            format!("{base}nodes:\n- mac: 52:54:00:00:00:01\n  hostname: a1\n  role: k3s-agent\n  ip: 10.0.0.1\n"),
            format!("{base}nodes:\n- mac: 52:54:00:00:00:01\n  hostname: a1\n  role: k3s-agent\n  ip: 10.0.0.1\n- mac: 52:54:00:00:00:09\n  hostname: s9\n  role: k3s-server\n"),
        ),
        // A flow list of flow mappings.
        (
            format!("{base}nodes: [{{mac: 52:54:00:00:00:01, hostname: a1, role: k3s-agent}}]\n"),
            format!("{base}nodes: [{{mac: 52:54:00:00:00:01, hostname: a1, role: k3s-agent}}, {{mac: 52:54:00:00:00:09, hostname: s9, role: k3s-server}}]\n"),
        ),
    ];
    for (before, want) in cases {
        let (_d, lab) = write_lab(&before);
        edit::add_node(&lab, &e).unwrap_or_else(|err| panic!("{before}: {err}"));
        assert_eq!(on_disk(&lab), want, "from:\n{before}");
    }
}

#[test]
fn remove_keeps_everything_else() {
    let (_d, lab) = write_lab(LAB);
    let mac: Mac = "52:54:00:00:00:02".parse().unwrap();
    let new = edit::remove_node(&lab, mac).unwrap();
    let want = LAB.replace(
        "  - mac: 52:54:00:00:00:02\n    role: k3s-agent      # role before hostname, on purpose\n    hostname: a1\n",
        "",
    );
    assert_eq!(on_disk(&lab), want);
    // Removing the last node leaves an explicit empty list.
    let last = edit::remove_node(&new, "52:54:00:00:00:01".parse().unwrap()).unwrap();
    assert!(last.file.nodes.is_empty());
    assert!(
        on_disk(&lab).contains(
            "\nnodes: []\n  # the server\n\n  # trailing comment inside nodes\ntheme: dark\n"
        ),
        "{}",
        on_disk(&lab)
    );
}

#[test]
fn update_changes_only_the_values() {
    let (_d, lab) = write_lab(LAB);
    let mut e = lab.file.nodes[0].clone();
    e.hostname = "server-0".into();
    e.ip = None;
    let new = edit::update_node(&lab, &e).unwrap();
    assert_eq!(
        on_disk(&lab),
        LAB.replace(
            "    hostname: s0   # keep me\n",
            "    hostname: server-0   # keep me\n"
        )
        .replace("    ip: 10.0.0.10\n", "")
    );
    let mut e = new.file.nodes[1].clone();
    e.role = "k3s-server".into();
    e.ip = Some("10.0.0.20".parse().unwrap());
    // Two servers: refused by validation, nothing written.
    let before = on_disk(&lab);
    assert!(matches!(
        edit::update_node(&new, &e),
        Err(ConfigError::Invalid(_))
    ));
    assert_eq!(on_disk(&lab), before);
    e.role = "k3s-agent".into();
    e.hostname = "agent-1".into();
    edit::update_node(&new, &e).unwrap();
    assert_eq!(
        on_disk(&lab),
        before.replace(
            "    hostname: a1\n",
            "    hostname: agent-1\n    ip: 10.0.0.20\n"
        )
    );
}

#[test]
fn odd_values_are_quoted_so_they_read_back() {
    for s in ["yes", "1234", "a: b", "#x", "", "on", "0x1f", "1e3", "x y"] {
        let y = edit::yaml_scalar(s);
        let back: String = yaml_serde::from_str(&y).unwrap_or_else(|e| panic!("{s:?} -> {y}: {e}"));
        assert_eq!(back, s, "{y}");
    }
    assert_eq!(edit::yaml_scalar("node-1"), "node-1");
    assert_eq!(edit::yaml_scalar("k3s-agent"), "k3s-agent");
}

#[test]
fn a_concurrent_edit_is_never_overwritten() {
    let (_d, lab) = write_lab(LAB);
    let theirs = LAB.replace("theme: dark", "theme: light");
    std::fs::write(&lab.path, &theirs).unwrap();
    let err =
        edit::add_node(&lab, &entry("52:54:00:00:00:03", "a2", "k3s-agent", None)).unwrap_err();
    assert!(matches!(err, ConfigError::ChangedOnDisk { .. }), "{err}");
    assert_eq!(on_disk(&lab), theirs);
    // Reloaded, the same adoption goes through on top of their edit.
    let fresh = load_validated(&lab.path, &theirs).unwrap();
    edit::add_node(&fresh, &entry("52:54:00:00:00:03", "a2", "k3s-agent", None)).unwrap();
    let now = on_disk(&lab);
    assert!(
        now.contains("theme: light") && now.contains("hostname: a2"),
        "{now}"
    );
}

#[test]
fn adopting_into_the_shipped_lab_keeps_its_comments() {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("lab.yaml")).unwrap();
    let (_d, lab) = write_lab(&shipped);
    let mac: Mac = "52:54:00:aa:bb:cc".parse().unwrap();
    let host = pxelab::config::suggest_hostname(&lab, mac, "k3s-agent");
    assert_eq!(host, "node-7");
    edit::add_node(&lab, &entry("52:54:00:aa:bb:cc", &host, "k3s-agent", None)).unwrap();
    // The node goes at the end of `nodes:`, before the keys that follow the list.
    let last = "    ip: 192.168.64.146\n";
    assert!(shipped.contains(last));
    assert_eq!(
        on_disk(&lab),
        shipped.replacen(
            last,
            &format!(
                "{last}  - mac: 52:54:00:aa:bb:cc\n    hostname: node-7\n    role: k3s-agent\n"
            ),
            1
        )
    );
}

// ---- kill in the middle of a write ----------------------------------------------

const CHILD_ENV: &str = "PXELAB_EDIT_KILL_CHILD";
const EXTRA: &str = "52:54:00:00:00:77";

/// The child: adopt and forget the same MAC over and over (bounded), as fast as it can.
fn child_loop(path: &Path) {
    let mac: Mac = EXTRA.parse().unwrap();
    for _ in 0..100_000 {
        let text = std::fs::read_to_string(path).unwrap();
        let lab = load_validated(path, &text).unwrap();
        let r = if lab.node_by_mac(&mac).is_some() {
            edit::remove_node(&lab, mac)
        } else {
            edit::add_node(&lab, &entry(EXTRA, "extra", "k3s-agent", Some("10.0.0.77")))
        };
        if let Err(e) = r {
            panic!("child edit failed: {e}");
        }
    }
}

#[test]
fn sigkill_mid_write_leaves_old_or_new_never_half() {
    if let Some(p) = std::env::var_os(CHILD_ENV) {
        child_loop(&PathBuf::from(p));
        return;
    }
    // A big file makes each write long enough for kills to land inside it.
    let padding: String = (0..4000)
        .map(|i| format!("# padding line {i:05} ........................................\n"))
        .collect();
    let old = format!("{padding}{LAB}");
    let (dir, lab) = write_lab(&old);
    let new = {
        let added =
            edit::add_node(&lab, &entry(EXTRA, "extra", "k3s-agent", Some("10.0.0.77"))).unwrap();
        let t = added.source.clone();
        std::fs::write(&lab.path, &old).unwrap();
        t
    };
    assert_ne!(old, new);
    let exe = std::env::current_exe().unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut saw = [0usize; 2];
    let mut leftovers = 0;
    for round in 0..40 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "sigkill_mid_write_leaves_old_or_new_never_half",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &lab.path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // xorshift: a reproducible spread of kill points between 5 and 120 ms.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(5 + seed % 115));
        // SIGKILL: no destructor, no flush, no cleanup runs.
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&lab.path).unwrap();
        if text == old {
            saw[0] += 1;
        } else if text == new {
            saw[1] += 1;
        } else {
            panic!(
                "round {round}: file is neither old nor new ({} bytes)",
                text.len()
            );
        }
        load_validated(&lab.path, &text).unwrap();
        // Temporary files left by a killed writer never replace lab.yaml.
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            if name.contains(".pxelab-tmp-") {
                leftovers += 1;
                std::fs::remove_file(dir.path().join(name)).unwrap();
            }
        }
    }
    eprintln!(
        "kill rounds: old {} new {}, killed mid-write (temp left) {leftovers}",
        saw[0], saw[1]
    );
}
