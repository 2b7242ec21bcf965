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
    ("a reservation outside the subnet", "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200]}\nnodes:\n  - {mac: '52:54:00:00:00:01', hostname: s0, role: k3s-server, ip: 10.0.9.10}", Refused("10.0.9.10 is outside dhcp.subnet 10.0.0.0/24")),
];

/// The lab text of a case.
fn lab_text(extra: &str) -> String {
    format!("name: corpus\nserver_address: 10.0.0.1\nboot: {{kernel: vmlinuz}}\n{extra}\n")
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
