//! What `pxelab check` accepts is exactly what `pxelab up` starts.
//!
//! A corpus of labs (valid and broken `dhcp:` sections above all, where check and up used
//! to disagree) goes through both paths as the CLI runs them: check is
//! `config::check_text`, up is `app::load_lab` (read, parse, validate) followed by the
//! plan `app::start_servers` hands each server, read before anything binds. The two must
//! both accept, or both refuse with the same errors; each case also says which of the two
//! it expects and why, so a check that stopped refusing shows up here too.

use std::path::Path;

use pxelab::config::plan::DhcpPlan;
use pxelab::config::{check_text, Severity};
use pxelab::engine::Source;

/// How a case should come out.
enum Want {
    /// Both accept, and the DHCP server runs as this mode (`off`, `proxy`, `server`).
    Runs(&'static str),
    /// Both refuse, and one error contains this text.
    Refused(&'static str),
}
use Want::{Refused, Runs};

/// (name, the lab's `dhcp:` section and anything else, expectation).
const CORPUS: &[(&str, &str, Want)] = &[
    ("no dhcp section: proxy", "", Runs("proxy")),
    ("proxy with relays", "dhcp: {mode: proxy, relays: [10.9.0.1, 10.9.1.1]}", Runs("proxy")),
    ("off", "dhcp: {mode: off}", Runs("off")),
    ("server /24, 12h", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 12h}", Runs("server")),
    ("server, 30m", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 30m}", Runs("server")),
    ("server, plain seconds", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: '3600'}", Runs("server")),
    ("server, a number lease time", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 90}", Runs("server")),
    ("server, 1h 30m", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 1h 30m}", Runs("server")),
    ("server, 1d", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 1d}", Runs("server")),
    ("server /30, both host addresses", "dhcp: {mode: server, subnet: 10.0.0.0/30, range: [10.0.0.1, 10.0.0.2]}", Runs("server")),
    ("server /8", "dhcp: {mode: server, subnet: 10.0.0.0/8, range: [10.0.0.100, 10.255.255.254]}", Runs("server")),
    ("server with router, dns, domain", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], router: 10.0.0.1, dns: [10.0.0.1, 9.9.9.9], domain: lab}", Runs("server")),
    ("server, range over the whole host part", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.1, 10.0.0.254]}", Runs("server")),
    ("proxy beside a /31 (not served)", "dhcp: {mode: proxy, subnet: 10.0.0.0/31}", Runs("proxy")),
    ("server /31", "dhcp: {mode: server, subnet: 10.0.0.0/31, range: [10.0.0.0, 10.0.0.1]}", Refused("10.0.0.0/31 leaves no address for clients")),
    ("server /32", "dhcp: {mode: server, subnet: 10.0.0.1/32, range: [10.0.0.1, 10.0.0.1]}", Refused("10.0.0.1/32 leaves no address for clients")),
    ("server /7", "dhcp: {mode: server, subnet: 10.0.0.0/7, range: [10.0.0.10, 10.0.0.20]}", Refused("is larger than a lab segment")),
    ("range over the broadcast address", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.255]}", Refused("10.0.0.255 is the broadcast address of 10.0.0.0/24")),
    ("range from the network address", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.0, 10.0.0.10]}", Refused("10.0.0.0 is the network address of 10.0.0.0/24")),
    ("range outside the subnet", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.1.5, 10.0.1.9]}", Refused("10.0.1.5 is outside dhcp.subnet 10.0.0.0/24")),
    ("range half outside", "dhcp: {mode: server, subnet: 10.0.0.0/25, range: [10.0.0.100, 10.0.0.130]}", Refused("10.0.0.130 is outside dhcp.subnet 10.0.0.0/25")),
    ("reversed range", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.200, 10.0.0.100]}", Refused("range starts at 10.0.0.200 but ends before it at 10.0.0.100")),
    ("lease time 12x", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 12x}", Refused("`12x` is not a lease time")),
    ("lease time 0", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: '0'}", Refused("`0` is not a lease time")),
    ("lease time 1.5h", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 1.5h}", Runs("server")),
    ("lease time 1.5s", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 1.5s}", Refused("`1.5s` is not a lease time")),
    ("lease time beyond u32 seconds", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 200000d}", Refused("`200000d` is not a lease time")),
    ("lease time below a second", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: 500ms}", Refused("`500ms` is not a lease time")),
    ("proxy with a bad lease time", "dhcp: {mode: proxy, lease_time: soon}", Refused("`soon` is not a lease time")),
    ("server without subnet", "dhcp: {mode: server, range: [10.0.0.100, 10.0.0.200]}", Refused("server mode needs dhcp.subnet")),
    ("server without range", "dhcp: {mode: server, subnet: 10.0.0.0/24}", Refused("server mode needs dhcp.range")),
    ("subnet with host bits", "dhcp: {mode: server, subnet: 10.0.0.5/24, range: [10.0.0.100, 10.0.0.200]}", Refused("has host bits set: did you mean 10.0.0.0/24?")),
    ("subnet without prefix", "dhcp: {mode: server, subnet: 10.0.0.0, range: [10.0.0.100, 10.0.0.200]}", Refused("`10.0.0.0` is not a subnet")),
    ("router outside the subnet", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], router: 10.1.0.1}", Refused("10.1.0.1 is outside dhcp.subnet 10.0.0.0/24")),
    ("off, but a reversed range", "dhcp: {mode: off, range: [10.0.0.9, 10.0.0.1]}", Refused("range starts at 10.0.0.9 but ends before it at 10.0.0.1")),
    ("a relay that is no address", "dhcp: {mode: proxy, relays: [gateway]}", Refused("relays")),
    ("server, an infinite lease", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: infinite}", Runs("server")),
    ("proxy, an infinite lease (ignored)", "dhcp: {mode: proxy, lease_time: infinite}", Runs("proxy")),
    ("lease time 0xffffffff seconds", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: '4294967295'}", Refused("`4294967295` is not a lease time")),
    ("server, server_address outside the subnet", "dhcp: {mode: server, subnet: 10.1.0.0/24, range: [10.1.0.100, 10.1.0.200]}", Refused("10.0.0.1 is outside dhcp.subnet 10.1.0.0/24: in server mode")),
    ("server through a relay: server_address outside the subnet, a router", "dhcp: {mode: server, subnet: 10.1.0.0/24, range: [10.1.0.100, 10.1.0.200], router: 10.1.0.1}", Runs("server")),
    ("proxy, server_address outside the subnet (a warning)", "dhcp: {mode: proxy, subnet: 10.1.0.0/24}", Runs("proxy")),
    ("modloop-virt beside vmlinuz-lts", "boot: {kernel: vmlinuz-lts, initrds: [initramfs-lts], modloop: modloop-virt}", Refused("modloop-virt is flavour `virt` but boot.kernel vmlinuz-lts is `lts`")),
    ("a node's own kernel without its modloop", "boot: {kernel: vmlinuz-lts, modloop: modloop-lts}\nnodes:\n  - {mac: '52:54:00:00:00:01', hostname: s0, role: k3s-server, kernel: vmlinuz-virt}", Refused("give nodes[0] its own `modloop` of flavour `virt`")),
    ("a node's own kernel and modloop", "boot: {kernel: vmlinuz-lts, modloop: modloop-lts}\nnodes:\n  - {mac: '52:54:00:00:00:01', hostname: s0, role: k3s-server, kernel: vmlinuz-virt, modloop: modloop-virt}", Runs("proxy")),
    ("user-data without #cloud-config", "roles: {plain: {user_data: 'users: []'}}\nnodes:\n  - {mac: '52:54:00:00:00:01', hostname: p0, role: plain}", Refused("tiny-cloud ignores user-data that does not start with #cloud-config")),
    ("user-data as a script", "roles: {plain: {user_data: \"#!/bin/sh\\necho hi\"}}\nnodes:\n  - {mac: '52:54:00:00:00:01', hostname: p0, role: plain}", Runs("proxy")),
    ("a reservation outside the subnet", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200]}\nnodes:\n  - {mac: '52:54:00:00:00:01', hostname: s0, role: k3s-server, ip: 10.0.9.10}", Refused("10.0.9.10 is outside dhcp.subnet 10.0.0.0/24")),
];

/// The lab text of a case (with a `boot:` of its own when the case has one).
fn lab_text(extra: &str) -> String {
    let boot = if extra.starts_with("boot:") {
        ""
    } else {
        "boot: {kernel: vmlinuz}\n"
    };
    format!("name: corpus\nserver_address: 10.0.0.1\n{boot}{extra}\n")
}

/// What `pxelab check` says: its error lines (warnings do not stop `up` either).
fn check(path: &Path, text: &str) -> Vec<String> {
    check_text(path, text)
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.to_string())
        .collect()
}

/// What `pxelab up` does before it binds: load and validate the file, then take the plan
/// the servers are started with. `Ok` names the DHCP mode; `Err` lists the error lines.
fn up(path: &Path) -> Result<&'static str, Vec<String>> {
    // `N problem(s) in lab.yaml:` and then one indented line per problem.
    let lines =
        |e: String| -> Vec<String> { e.lines().skip(1).map(|l| l.trim().to_string()).collect() };
    let lab = pxelab::app::load_lab(path).map_err(|e| lines(e.to_string()))?;
    let plan = lab.plan().map_err(|e| lines(e.to_string()))?;
    let listeners = pxelab::app::listeners(&lab);
    assert_eq!(
        listeners.contains(&Source::Dhcp),
        plan.dhcp != DhcpPlan::Off,
        "up starts DHCP exactly when the plan has it"
    );
    Ok(match &plan.dhcp {
        DhcpPlan::Off => "off",
        DhcpPlan::Proxy(_) => "proxy",
        DhcpPlan::Server(s) => {
            // What server mode relies on without checking again.
            assert!(s.in_subnet(s.range.0) && s.in_subnet(s.range.1), "{s:?}");
            assert!(s.range.0 <= s.range.1 && s.lease_secs > 0, "{s:?}");
            "server"
        }
    })
}

#[test]
fn check_and_up_agree_on_every_lab_of_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(dir.path()).unwrap();
    let path = dir.join("lab.yaml");
    let mut failures = Vec::new();
    for (name, extra, want) in CORPUS {
        let text = lab_text(extra);
        std::fs::write(&path, &text).unwrap();
        let checked = check(&path, &text);
        let started = up(&path);
        match (&checked[..], &started) {
            ([], Ok(_)) => {}
            (errs, Err(up_errs)) if !errs.is_empty() && errs == &up_errs[..] => {}
            _ => failures.push(format!(
                "{name}: check and up disagree:\n  check: {checked:?}\n  up: {started:?}"
            )),
        }
        match (want, &started) {
            (Runs(mode), Ok(got)) if mode == got => {}
            (Refused(why), Err(_)) if checked.iter().any(|e| e.contains(why)) => {}
            _ => failures.push(format!(
                "{name}: wanted {}, got check {checked:?}, up {started:?}",
                match want {
                    Runs(m) => format!("it to run DHCP {m}"),
                    Refused(w) => format!("a refusal saying `{w}`"),
                }
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_point_at_the_offending_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.yaml");
    let text = lab_text(
        "dhcp:\n  mode: server\n  subnet: 10.0.0.0/24\n  range: [10.0.0.100, 10.0.0.255]\n  lease_time: 12h\n",
    );
    let errs = check(&path, &text);
    let want = format!(
        "{}:7:23: error: dhcp.range[1]: 10.0.0.255 is the broadcast address of 10.0.0.0/24, which no client can have",
        path.display()
    );
    assert_eq!(errs, vec![want]);
    let text =
        lab_text("dhcp:\n  mode: server\n  subnet: 10.0.0.0/31\n  range: [10.0.0.0, 10.0.0.1]\n");
    let errs = check(&path, &text);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{}:6:11: error: dhcp.subnet: ", path.display()))),
        "{errs:?}"
    );
}

/// The checks against the machine: `check` prints [`pxelab::preflight::problems`] after
/// the file's own; `up` runs [`pxelab::app::preflight`] after loading, before it binds.
/// On one described machine they must refuse the same labs with the same lines.
#[test]
fn check_and_up_agree_on_the_labs_problems_on_this_machine() {
    use pxelab::net::ifaces::{Iface, Interfaces};
    use pxelab::preflight::Host;
    let host = Host {
        interfaces: Interfaces {
            list: vec![
                Iface {
                    name: "enp4s0f4u1u3".into(),
                    addrs: vec!["10.0.0.1/24".parse().unwrap()],
                },
                Iface {
                    name: "lo".into(),
                    addrs: vec!["127.0.0.1/8".parse().unwrap()],
                },
            ],
            addresses_known: true,
        },
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir(dir.join("ipxe")).unwrap();
    std::fs::write(dir.join("ipxe/undionly.kpxe"), b"ipxe").unwrap();
    let path = dir.join("lab.yaml");
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("the lab's NIC", "interface: enp4s0f4u1u3\ntftp: {root: ipxe}", None),
        ("eth0 on this machine", "interface: eth0\ntftp: {root: ipxe}", Some("`eth0` does not exist on this machine (interfaces here: enp4s0f4u1u3 10.0.0.1/24, lo 127.0.0.1/8)")),
        ("no iPXE folder", "interface: enp4s0f4u1u3\ntftp: {root: /nonexistent/ipxe}", Some("apt install ipxe")),
        ("TFTP off", "interface: enp4s0f4u1u3\ntftp: {enabled: false, root: /nonexistent/ipxe}", None),
        ("another address", "interface: lo\ntftp: {root: ipxe}", Some("10.0.0.1 is not an address of interface lo")),
    ];
    for (name, extra, want) in cases {
        let text = lab_text(extra);
        std::fs::write(&path, &text).unwrap();
        let lab = pxelab::app::load_lab(&path).unwrap();
        let checked: Vec<String> = pxelab::preflight::problems(&lab, &host)
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect();
        let started = pxelab::app::preflight(&lab, &host, false);
        match (want, &started) {
            (None, Ok(())) => assert!(checked.is_empty(), "{name}: {checked:?}"),
            (Some(why), Err(e)) => {
                let e = e.to_string();
                assert!(
                    checked.iter().any(|c| c.contains(why)),
                    "{name}: {checked:?}"
                );
                let up_lines: Vec<&str> = e.lines().filter(|l| l.contains(": error: ")).collect();
                assert_eq!(up_lines, checked, "{name}");
                assert!(e.contains("--keep-going"), "{name}: {e}");
                assert!(pxelab::app::preflight(&lab, &host, true).is_ok(), "{name}");
            }
            _ => panic!("{name}: check {checked:?}, up {started:?}"),
        }
    }
}
