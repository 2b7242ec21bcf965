//! Each broken lab.yaml gives exactly these errors, each with file:line:col and the value.

use std::path::Path;

use pxelab::config::{check_text, Severity};

#[path = "config_validate/boot.rs"]
mod boot;
#[path = "config_validate/host.rs"]
mod host;

/// A small valid lab every case starts from (by editing a copy of it).
const BASE: &str = "\
name: t
server_address: 10.0.0.1
dhcp:
  mode: proxy
  subnet: 10.0.0.0/24
boot:
  kernel: vmlinuz-lts
  initrds: [initramfs-lts]
  cmdline: ip=dhcp modloop={{ modloop_url }}
  modloop: modloop-lts
nodes:
  - mac: 52:54:00:00:00:01
    hostname: s0
    role: k3s-server
    ip: 10.0.0.10
  - mac: 52:54:00:00:00:02
    hostname: a1
    role: k3s-agent
    ip: 10.0.0.11
";

fn errors(text: &str) -> Vec<String> {
    check_text(Path::new("lab.yaml"), text)
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.to_string())
        .collect()
}

/// Each case's text gives exactly its errors; every mismatch is listed.
fn assert_cases(cases: &[(&str, String, Vec<&str>)]) {
    let mut failures = Vec::new();
    for (name, text, want) in cases {
        let got = errors(text);
        if got != *want {
            failures.push(format!("{name}:\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE has no `{from}`");
    BASE.replacen(from, to, 1)
}

#[test]
fn base_is_valid() {
    assert_eq!(errors(BASE), Vec::<String>::new());
}

#[test]
fn a_role_may_run_dropbear() {
    let text = edit(
        "nodes:",
        "roles:\n  k3s-agent:\n    ssh:\n      server: dropbear\nnodes:",
    );
    assert_eq!(errors(&text), Vec::<String>::new());
    // A template of its own that leaves the dropbear key out is worth a warning.
    let text = edit(
        "nodes:",
        "roles:\n  k3s-agent:\n    user_data: \"#cloud-config\\n\"\n    ssh:\n      server: dropbear\nnodes:",
    );
    let warnings: Vec<String> = check_text(Path::new("lab.yaml"), &text)
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .map(|p| p.to_string())
        .filter(|w| w.contains("dropbear"))
        .collect();
    assert_eq!(
        warnings,
        vec!["lab.yaml:15:15: warning: roles.k3s-agent.ssh.server: dropbear, but roles.k3s-agent.user_data never uses `host_key_dropbear`: the nodes' dropbear will make its own host key, which the pinned check refuses"]
    );
}

#[test]
fn every_broken_config_names_its_problem() {
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "bad MAC",
            edit("52:54:00:00:00:02", "52:54:00:00:00:zz"),
            vec!["lab.yaml:16:10: error: nodes[1].mac: `52:54:00:00:00:zz` is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)"],
        ),
        (
            "broadcast MAC",
            edit("52:54:00:00:00:02", "ff:ff:ff:ff:ff:ff"),
            vec!["lab.yaml:16:10: error: nodes[1].mac: ff:ff:ff:ff:ff:ff is a broadcast or multicast address (lowest bit of the first byte set): no machine has one"],
        ),
        (
            "multicast MAC",
            edit("52:54:00:00:00:02", "01:00:5e:00:00:01"),
            vec!["lab.yaml:16:10: error: nodes[1].mac: 01:00:5e:00:00:01 is a broadcast or multicast address (lowest bit of the first byte set): no machine has one"],
        ),
        (
            "duplicate MAC in another spelling",
            edit("52:54:00:00:00:02", "52-54-00-00-00-01"),
            vec!["lab.yaml:16:10: error: nodes[1].mac: duplicate MAC 52:54:00:00:00:01 (also nodes[0] `s0`)"],
        ),
        (
            "duplicate hostname, case-insensitive",
            edit("hostname: a1", "hostname: S0"),
            vec!["lab.yaml:17:15: error: nodes[1].hostname: duplicate hostname `S0` (also nodes[0] 52:54:00:00:00:01)"],
        ),
        (
            "duplicate IP",
            edit("ip: 10.0.0.11", "ip: 10.0.0.10"),
            vec!["lab.yaml:19:9: error: nodes[1].ip: duplicate IP 10.0.0.10 (also nodes[0] `s0`)"],
        ),
        (
            "IP outside the subnet",
            edit("ip: 10.0.0.11", "ip: 10.0.1.11"),
            vec!["lab.yaml:19:9: error: nodes[1].ip: 10.0.1.11 is outside dhcp.subnet 10.0.0.0/24"],
        ),
        (
            "malformed IP",
            edit("ip: 10.0.0.11", "ip: 10.0.0"),
            vec!["lab.yaml:19:9: error: nodes[1].ip: invalid IPv4 address syntax (`10.0.0`)"],
        ),
        (
            "server mode range outside the subnet",
            edit("mode: proxy", "mode: server\n  range: [10.0.0.200, 10.0.1.5]"),
            vec!["lab.yaml:5:23: error: dhcp.range[1]: 10.0.1.5 is outside dhcp.subnet 10.0.0.0/24"],
        ),
        (
            "server mode range reversed",
            edit("mode: proxy", "mode: server\n  range: [10.0.0.200, 10.0.0.100]"),
            vec!["lab.yaml:5:10: error: dhcp.range: range starts at 10.0.0.200 but ends before it at 10.0.0.100"],
        ),
        (
            "server mode without subnet and range",
            edit("mode: proxy\n  subnet: 10.0.0.0/24", "mode: server"),
            vec![
                "lab.yaml:4:9: error: dhcp.mode: server mode needs dhcp.subnet (e.g. 192.168.64.128/27)",
                "lab.yaml:4:9: error: dhcp.mode: server mode needs dhcp.range (first and last address handed out)",
            ],
        ),
        (
            "router outside the subnet",
            edit("subnet: 10.0.0.0/24", "subnet: 10.0.0.0/24\n  router: 10.0.9.1"),
            vec!["lab.yaml:6:11: error: dhcp.router: 10.0.9.1 is outside dhcp.subnet 10.0.0.0/24"],
        ),
        (
            "bad subnet",
            edit("subnet: 10.0.0.0/24", "subnet: 10.0.0.0/33"),
            vec!["lab.yaml:5:11: error: dhcp.subnet: `10.0.0.0/33` is not a subnet (expected ADDRESS/PREFIX, e.g. 192.168.64.128/27)"],
        ),
        (
            "subnet with host bits",
            edit("subnet: 10.0.0.0/24", "subnet: 10.0.0.1/24"),
            vec!["lab.yaml:5:11: error: dhcp.subnet: `10.0.0.1/24` has host bits set: did you mean 10.0.0.0/24?"],
        ),
        (
            "bad lease time",
            edit("mode: proxy", "mode: proxy\n  lease_time: 12x"),
            vec!["lab.yaml:5:15: error: dhcp.lease_time: `12x` is not a lease time (seconds, or a number with s, m, h or d: 3600, 30m, 12h, 1d; or infinite)"],
        ),
        (
            "ipv6_ra not one of auto, on, off",
            edit("mode: proxy", "mode: proxy\n  ipv6_ra: maybe"),
            vec!["lab.yaml:5:12: error: dhcp.ipv6_ra: unknown variant `maybe`, expected one of `auto`, `on`, `off`"],
        ),
        (
            "unknown role",
            edit("role: k3s-agent", "role: web"),
            vec!["lab.yaml:18:11: error: nodes[1].role: unknown role `web` (known: k3s-server, k3s-agent)"],
        ),
        (
            "role without template",
            edit("nodes:", "roles:\n  web:\n    description: a web server\nnodes:"),
            vec!["lab.yaml:12:3: error: roles.web: role `web` has no user-data template (set roles.web.user_data or roles.web.user_data_file)"],
        ),
        (
            "no k3s server",
            edit("role: k3s-server", "role: k3s-agent"),
            vec!["lab.yaml:11:1: error: nodes: no node has role k3s-server, so the k3s-agent nodes have no server to join (add one, or set k3s.server_url)"],
        ),
        (
            "two k3s servers",
            edit("role: k3s-agent", "role: k3s-server"),
            vec!["lab.yaml:18:11: error: nodes[1].role: a second k3s-server `a1`: the lab runs one k3s server and nodes[0] `s0` is it"],
        ),
        (
            "unknown top-level key",
            edit("nodes:", "nodez: []\nnodes:"),
            vec!["lab.yaml:11:1: error: unknown field `nodez`, expected one of `name`, `interface`, `server_address`, `dhcp`, `tftp`, `http`, `boot`, `roles`, `k3s`, `ssh`, `syslog`, `unknown`, `adopt`, `power`, `wake_on_start`, `theme`, `pi`, `nodes`"],
        ),
        (
            "unknown key in a node",
            edit("hostname: a1", "hostnmae: a1"),
            vec!["lab.yaml:17:5: error: nodes[1]: unknown field `hostnmae`, expected one of `mac`, `hostname`, `role`, `ip`, `cmdline_extra`, `kernel`, `initrds`, `modloop`, `power`, `arch`"],
        ),
        (
            "template syntax error inside a block scalar",
            edit(
                "nodes:",
                "roles:\n  web:\n    user_data: |\n      #cloud-config\n      hostname: {{ hostname }\nnodes:",
            ),
            vec!["lab.yaml:15:7: error: roles.web.user_data: syntax error: unexpected `}`, expected end of variable block (template line 2)"],
        ),
        (
            "template with an undefined variable",
            edit(
                "nodes:",
                "roles:\n  k3s-agent:\n    user_data: |\n      #cloud-config\n      # {{ lab }}\n      hostname: {{ hostnam }}\nnodes:",
            ),
            vec!["lab.yaml:16:7: error: roles.k3s-agent.user_data (for 52:54:00:00:00:02): undefined value: `hostnam` is not defined (did you mean `hostname`?) (template line 3)"],
        ),
        (
            "secret in the kernel command line",
            edit("ip=dhcp", "ip=dhcp k3s.token={{ k3s_token }}"),
            vec!["lab.yaml:9:12: error: boot.cmdline (for 52:54:00:00:00:01): undefined value: `k3s_token` is not defined (there is: assets_url, data_disk, hostname, http_base, ip, k3s_opts, k3s_role, k3s_url, lab, mac, mac_hyphen, modloop_url) (template line 1)"],
        ),
        (
            "a port that is not a port number",
            edit("boot:", "http:\n  port: 99999\ntftp:\n  port: tftp\nboot:"),
            vec![
                "lab.yaml:7:9: error: http.port: `99999` is not a port number 1–65535",
                "lab.yaml:9:9: error: tftp.port: `tftp` is not a port number 1–65535",
            ],
        ),
        (
            "a switch that is not true or false",
            edit("boot:", "tftp:\n  enabled: maybe\nboot:"),
            vec!["lab.yaml:7:12: error: tftp.enabled: `maybe` is not true or false"],
        ),
        (
            "template with a misspelt variable",
            edit(
                "nodes:",
                "roles:\n  k3s-agent:\n    user_data: |\n      #cloud-config\n      # {{ lab }}\n      role: {{ k3s_rol }}\nnodes:",
            ),
            vec!["lab.yaml:16:7: error: roles.k3s-agent.user_data (for 52:54:00:00:00:02): undefined value: `k3s_rol` is not defined (did you mean `k3s_role`?) (template line 3)"],
        ),
        (
            "ds= in the kernel command line",
            edit("ip=dhcp", "ip=dhcp ds=nocloud;s=http://x/"),
            vec!["lab.yaml:9:12: error: boot.cmdline: sets ds= itself; pxelab appends `ds=nocloud;s=…` as the last word, remove it"],
        ),
        (
            "bad hostname",
            edit("hostname: a1", "hostname: a_1"),
            vec!["lab.yaml:17:15: error: nodes[1].hostname: `a_1` is not a valid hostname (letters, digits and '-', 1-63 characters, not starting or ending with '-')"],
        ),
        (
            "asset outside the assets folder",
            edit("kernel: vmlinuz-lts", "kernel: ../../etc/shadow"),
            vec!["lab.yaml:7:11: error: boot.kernel: `../../etc/shadow` is not a plain file name inside boot.assets_dir (letters, digits, '.', '-', '_', '+')"],
        ),
        (
            "auto-adopt into an unknown role",
            edit("nodes:", "unknown: {adopt: web}\nnodes:"),
            vec!["lab.yaml:11:18: error: unknown.adopt: unknown role `web` (known: k3s-server, k3s-agent)"],
        ),
        (
            "unknown policy word",
            edit("nodes:", "unknown: keep\nnodes:"),
            vec!["lab.yaml:11:10: error: unknown: `keep` is not a policy for unknown MACs (expected `hold`, `ignore` or `{adopt: ROLE}`)"],
        ),
        (
            "unknown SSH server of a role",
            edit("nodes:", "roles:\n  k3s-agent:\n    ssh:\n      server: tinyssh\nnodes:"),
            vec!["lab.yaml:14:15: error: roles.k3s-agent.ssh.server: unknown variant `tinyssh`, expected `openssh` or `dropbear`"],
        ),
        (
            "a data disk that is not a label or a device",
            edit("nodes:", "roles:\n  k3s-server:\n    data_disk: sdb1; rm -rf /\nnodes:"),
            vec!["lab.yaml:13:16: error: roles.k3s-server.data_disk: data_disk `sdb1; rm -rf /`: give LABEL=NAME, UUID=…, PARTUUID=… or a /dev/ path (letters, digits, - _ . / : only)"],
        ),
        (
            "a snapshot schedule that is not a duration",
            edit("nodes:", "k3s:\n  snapshots:\n    every: hourly\n    keep: 0\nnodes:"),
            vec![
                "lab.yaml:13:12: error: k3s.snapshots.every: `hourly` is not a duration (seconds, or 30m, 1h, 1d) nor `off`",
                "lab.yaml:14:11: error: k3s.snapshots.keep: keep at least 1 snapshot (the newest is what the server restores)",
            ],
        ),
        (
            "YAML syntax error",
            edit("    role: k3s-agent", "   role: k3s-agent"),
            vec!["lab.yaml:18:4: error: did not find expected '-' indicator at line 18 column 4, while parsing a block collection"],
        ),
        (
            "missing required field",
            edit("  kernel: vmlinuz-lts\n", ""),
            vec!["lab.yaml:7:3: error: boot: missing field `kernel`"],
        ),
    ];
    assert_cases(&cases);
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let text = BASE
        .replacen(
            "mode: proxy",
            "mode: proxy\n  lease_time: soon\n  bogus: 1",
            1,
        )
        .replacen("52:54:00:00:00:02", "nope", 1)
        .replacen("hostname: s0", "hostname: s0\n    colour: red", 1)
        .replacen("name: t", "name: t\nhttp:\n  prot: 80", 1);
    let got = errors(&text);
    assert_eq!(
        got,
        vec![
            "lab.yaml:3:3: error: http: unknown field `prot`, expected one of `bind`, `port`, `admin_port`, `admin_bind`, `apk_cache`",
            "lab.yaml:8:3: error: dhcp: unknown field `bogus`, expected one of `mode`, `subnet`, `range`, `lease_time`, `router`, `dns`, `domain`, `port`, `pxe_port`, `snponly`, `arm64_binary`, `leases_file`, `ipv6_ra`, `relays`",
            "lab.yaml:18:5: error: nodes[0]: unknown field `colour`, expected one of `mac`, `hostname`, `role`, `ip`, `cmdline_extra`, `kernel`, `initrds`, `modloop`, `power`, `arch`",
            "lab.yaml:21:10: error: nodes[1].mac: `nope` is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)",
        ]
    );
    // Once the schema is right, the semantic problems all show up together.
    let text = BASE
        .replacen("mode: proxy", "mode: proxy\n  lease_time: soon", 1)
        .replacen("hostname: a1", "hostname: s0", 1)
        .replacen("ip: 10.0.0.11", "ip: 10.0.0.10", 1)
        .replacen("role: k3s-agent", "role: db", 1);
    assert_eq!(
        errors(&text),
        vec![
            "lab.yaml:5:15: error: dhcp.lease_time: `soon` is not a lease time (seconds, or a number with s, m, h or d: 3600, 30m, 12h, 1d; or infinite)",
            "lab.yaml:18:15: error: nodes[1].hostname: duplicate hostname `s0` (also nodes[0] 52:54:00:00:00:01)",
            "lab.yaml:19:11: error: nodes[1].role: unknown role `db` (known: k3s-server, k3s-agent)",
            "lab.yaml:20:9: error: nodes[1].ip: duplicate IP 10.0.0.10 (also nodes[0] `s0`)",
        ]
    );
}

#[test]
fn missing_assets_are_warnings_naming_where_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.yaml");
    let text = BASE.replacen(
        "ip=dhcp",
        "ip=dhcp alpine_repo=http://dl-cdn.alpinelinux.org/alpine/v3.21/main",
        1,
    );
    let report = check_text(&lab, &text);
    let warnings: Vec<String> = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Warning && p.message.contains("boot asset"))
        .map(|p| p.to_string())
        .collect();
    let d = dir.path().display();
    assert_eq!(
        warnings,
        vec![
            format!("{d}/lab.yaml:7:11: warning: boot.kernel: boot asset {d}/assets/vmlinuz-lts is not on disk yet; download it from https://dl-cdn.alpinelinux.org/alpine/v3.21/releases/x86_64/netboot/vmlinuz-lts"),
            format!("{d}/lab.yaml:8:13: warning: boot.initrds[0]: boot asset {d}/assets/initramfs-lts is not on disk yet; download it from https://dl-cdn.alpinelinux.org/alpine/v3.21/releases/x86_64/netboot/initramfs-lts"),
            format!("{d}/lab.yaml:10:12: warning: boot.modloop: boot asset {d}/assets/modloop-lts is not on disk yet; download it from https://dl-cdn.alpinelinux.org/alpine/v3.21/releases/x86_64/netboot/modloop-lts"),
        ]
    );
    // With the files in place the warnings go away.
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    for f in ["vmlinuz-lts", "initramfs-lts", "modloop-lts"] {
        std::fs::write(dir.path().join("assets").join(f), b"x").unwrap();
    }
    let report = check_text(&lab, &text);
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.message.contains("boot asset")),
        "{:?}",
        report.problems
    );
}

#[test]
fn the_shipped_lab_has_no_errors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let report = check_text(&path, &text);
    let errors: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let lab = report.lab.unwrap();
    assert_eq!(lab.file.nodes.len(), 7);
    assert_eq!(
        lab.file
            .nodes
            .iter()
            .filter(|n| n.role == "k3s-server")
            .count(),
        1
    );
}

#[test]
fn ipv6_ra_takes_auto_on_off_and_on_outside_server_mode_is_a_warning() {
    let warnings = |text: &str| -> Vec<String> {
        check_text(Path::new("lab.yaml"), text)
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Warning && p.message.contains("ipv6_ra"))
            .map(|p| p.to_string())
            .collect()
    };
    for v in ["auto", "on", "off"] {
        let server = edit(
            "mode: proxy",
            &format!("mode: server\n  range: [10.0.0.100, 10.0.0.200]\n  ipv6_ra: {v}"),
        )
        .replacen("server_address:", "interface: br0\nserver_address:", 1);
        assert_eq!(errors(&server), Vec::<String>::new(), "{v}");
        assert_eq!(warnings(&server), Vec::<String>::new(), "{v}");
    }
    let proxy = edit("mode: proxy", "mode: proxy\n  ipv6_ra: on");
    assert_eq!(errors(&proxy), Vec::<String>::new());
    assert_eq!(
        warnings(&proxy),
        vec!["lab.yaml:5:12: warning: dhcp.ipv6_ra: `on` applies to dhcp.mode: server only; in proxy mode (or off) the LAN's router sends router advertisements and pxelab sends none"]
    );
    let loopback = edit(
        "mode: proxy",
        "mode: server\n  range: [10.0.0.100, 10.0.0.200]\n  ipv6_ra: on",
    );
    assert_eq!(
        warnings(&loopback),
        vec!["lab.yaml:6:12: warning: dhcp.ipv6_ra: `on` sends nothing without `interface:` (a loopback lab never sends router advertisements)"]
    );
}

#[test]
fn served_folders_must_not_hold_the_lab_or_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let top = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(top.join("lab/.pxelab/tftp")).unwrap();
    std::fs::create_dir_all(top.join("lab/ipxe")).unwrap();
    let lab = top.join("lab/lab.yaml");
    let with = |tftp: &str, assets: &str| {
        BASE.replacen(
            "boot:\n",
            &format!("tftp:\n  root: {tftp}\nboot:\n  assets_dir: {assets}\n"),
            1,
        )
    };
    let errors_of = |text: &str| -> Vec<String> {
        check_text(&lab, text)
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect()
    };
    let (l, t) = (lab.display(), top.display());
    let why = "every client could fetch lab.yaml and the lab's secrets (k3s token, lab secret, operator key); give it a folder of its own";
    assert_eq!(
        errors_of(&with(".", "..")),
        vec![
            format!("{l}:7:9: error: tftp.root: {t}/lab contains lab.yaml's folder and .pxelab/: {why}"),
            format!("{l}:9:15: error: boot.assets_dir: {t} contains lab.yaml's folder and .pxelab/: {why}"),
        ]
    );
    assert_eq!(
        errors_of(&with(".pxelab/tftp", "ipxe")),
        vec![format!(
            "{l}:7:9: error: tftp.root: {t}/lab/.pxelab/tftp lies inside .pxelab/: {why}"
        )]
    );
    // A folder of its own beside lab.yaml is fine; so is one that does not exist yet.
    assert_eq!(errors_of(&with("ipxe", "assets")), Vec::<String>::new());
}

/// `power:` for the lab, a role and a node: the driver a node gets (node, else role,
/// else lab, else `wol`), and each broken form named where it is.
#[test]
fn power_drivers_are_checked_and_resolved() {
    let text = edit(
        "nodes:",
        "power: ssh\nroles:\n  k3s-agent:\n    power: {cmd: {on: 'plug {hostname} on', timeout: 10s}}\nnodes:",
    )
    .replace(
        "    hostname: s0\n",
        "    hostname: s0\n    power: none\n",
    );
    let report = check_text(Path::new("lab.yaml"), &text);
    assert_eq!(errors(&text), Vec::<String>::new());
    let lab = report.lab.expect("lab");
    let driver = |i: usize| lab.power_for(&lab.file.nodes[i]).name();
    assert_eq!((driver(0), driver(1)), ("none", "cmd"));
    let plain = check_text(Path::new("lab.yaml"), BASE).lab.expect("lab");
    assert_eq!(plain.power_for(&plain.file.nodes[1]).name(), "wol");

    let cases = [
        (
            "unknown driver",
            edit("nodes:", "power: ipmi\nnodes:"),
            vec!["lab.yaml:11:8: error: power: `ipmi` is not a power driver (expected `wol`, `ssh`, `none` or `{cmd: {on, off, cycle, timeout}}`)"],
        ),
        (
            "unknown placeholder",
            edit("    ip: 10.0.0.11\n", "    ip: 10.0.0.11\n    power:\n      cmd:\n        off: plug {host} off {mac}\n"),
            vec!["lab.yaml:22:14: error: nodes[1].power.cmd.off: unknown placeholder `{host}` (known: {mac}, {ip}, {hostname})"],
        ),
        (
            "no command at all, a bad timeout",
            edit("nodes:", "roles:\n  k3s-agent:\n    power: {cmd: {timeout: soon}}\nnodes:"),
            vec![
                "lab.yaml:13:18: error: roles.k3s-agent.power.cmd: a `cmd` driver needs at least one of `on`, `off`, `cycle`",
                "lab.yaml:13:28: error: roles.k3s-agent.power.cmd.timeout: `soon` is not a duration (e.g. 30s, 2m)",
            ],
        ),
        (
            "unknown key of a cmd",
            edit("nodes:", "power: {cmd: {start: x}}\nnodes:"),
            vec!["lab.yaml:11:15: error: power.cmd: unknown field `start`, expected one of `on`, `off`, `cycle`, `timeout`"],
        ),
    ];
    assert_cases(&cases);
    // `wol` named without an interface to send on is worth a warning.
    let text = edit("nodes:", "power: wol\nnodes:");
    let warnings: Vec<String> = check_text(Path::new("lab.yaml"), &text)
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .map(|p| p.to_string())
        .filter(|p| !p.contains("boot asset"))
        .collect();
    assert_eq!(
        warnings,
        vec!["lab.yaml:11:8: warning: power: `wol` sends its magic packet on the lab's `interface:`, which this lab does not set: power on will be refused"]
    );
}
