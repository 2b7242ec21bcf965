//! Full DHCP server mode inside a network namespace, against dhclient and busybox
//! udhcpc: obtain, renew, release; a lab node's reservation; leases that survive a
//! restart of pxelab (another client asking for a leased address gets a different one,
//! and the first client can still renew and release it).

mod common;
mod dhcp_support;

use std::process::Stdio;
use std::time::Duration;

use common::{ChildGuard, NetNs};
use dhcp_support::{addr_of, write_lab, Pxelab};

const RESERVED_MAC: &str = "52:54:00:88:00:01";
const DYN_MAC: &str = "52:54:00:88:00:02";
const OTHER_MAC: &str = "52:54:00:88:00:03";

fn lab_yaml() -> String {
    format!(
        "name: server-test\ninterface: br0\nserver_address: 10.77.2.1\n\
         dhcp:\n  mode: server\n  subnet: 10.77.2.0/24\n  range: [10.77.2.100, 10.77.2.199]\n  \
         lease_time: 1h\n  router: 10.77.2.1\n  dns: [10.77.2.1]\n  domain: lab.test\n\
         tftp: {{root: /usr/lib/ipxe}}\nhttp: {{port: 8080, admin_port: 7480}}\n\
         k3s: {{server_url: \"https://10.77.2.1:6443\"}}\nssh: {{watch: false}}\nboot: {{kernel: vmlinuz, initrds: [initrd]}}\n\
         nodes:\n  - mac: {RESERVED_MAC}\n    hostname: node-a\n    role: k3s-agent\n    ip: 10.77.2.50\n"
    )
}

/// A udhcpc in the foreground whose script records each event's environment.
fn udhcpc(
    ns: &NetNs,
    dir: &std::path::Path,
    tag: &str,
    extra: &[&str],
) -> (ChildGuard, std::path::PathBuf) {
    let script = dir.join(format!("{tag}.sh"));
    let envf = dir.join(format!("{tag}.env"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] || [ \"$1\" = renew ] || exit 0\n\
             [ -n \"$ip\" ] && ip addr replace \"$ip/${{mask:-24}}\" dev \"$interface\"\n\
             env > {}.tmp && mv {}.tmp {}\n",
            envf.display(),
            envf.display(),
            envf.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut argv = vec![
        "busybox", "udhcpc", "-i", "eth0", "-f", "-t", "10", "-T", "2", "-s",
    ];
    let sp = script.to_str().unwrap().to_string();
    argv.push(&sp);
    argv.extend_from_slice(extra);
    let child = ns
        .command(&argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (ChildGuard(child), envf)
}

fn env_var(f: &std::path::Path, k: &str) -> Option<String> {
    std::fs::read_to_string(f)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string))
}

fn wait_env(f: &std::path::Path, k: &str) -> String {
    common::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        env_var(f, k)
    })
    .unwrap_or_else(|| panic!("udhcpc never bound ({} has no {k})", f.display()))
}

fn signal(c: &ChildGuard, sig: &str) {
    common::sh("kill", &[&format!("-{sig}"), &c.0.id().to_string()]);
}

#[test]
fn server_mode_obtain_renew_release_reserve_restart() {
    if !common::require_root() {
        return;
    }
    if !common::require_programs(&["dhclient", "busybox"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = NetNs::with_bridge("pxtsrv", "10.77.2.1/24");
    let lab = write_lab(dir.path(), &lab_yaml());
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp"]);

    // dhclient with the reserved MAC: obtains the reservation, re-requests it, releases.
    let c1 = ns.add_veth_host("c1");
    c1.exec_ok(&["ip", "link", "set", "eth0", "address", RESERVED_MAC]);
    let conf = dir.path().join("dhclient.conf");
    std::fs::write(
        &conf,
        "request subnet-mask, routers, domain-name-servers, host-name;\ntimeout 20;\n",
    )
    .unwrap();
    let lf = dir.path().join("c1.leases");
    let pf = dir.path().join("c1.pid");
    let dh = |extra: &[&str]| {
        let mut argv = vec!["timeout", "40", "dhclient"];
        argv.extend_from_slice(extra);
        let (c, l, pp) = (
            conf.to_str().unwrap(),
            lf.to_str().unwrap(),
            pf.to_str().unwrap(),
        );
        argv.extend_from_slice(&["-v", "-cf", c, "-lf", l, "-pf", pp, "eth0"]);
        c1.exec(&argv)
    };
    let out = dh(&["-1"]);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        addr_of(&c1).as_deref(),
        Some("10.77.2.50"),
        "dhclient: {log}"
    );
    let ack = p.wait(Duration::from_secs(15), "ACK of the reservation", |e| {
        e["event"] == "dhcp-reply" && e["mac"] == RESERVED_MAC && e["msg"] == "ack"
    });
    assert_eq!(ack["yiaddr"], "10.77.2.50");
    assert_eq!(ack["hostname"], "node-a");
    let _ = c1.exec(&["sh", "-c", &format!("kill $(cat {})", pf.display())]);
    dh(&["-1"]);
    p.wait(Duration::from_secs(10), "dhclient renew", |e| {
        e["event"] == "dhcp-lease" && e["mac"] == RESERVED_MAC && e["action"] == "renew"
    });
    dh(&["-r"]);
    p.wait(Duration::from_secs(10), "dhclient release", |e| {
        e["event"] == "dhcp-lease"
            && e["mac"] == RESERVED_MAC
            && e["action"] == "release"
            && e["ip"] == "10.77.2.50"
    });

    // udhcpc, PXE-flavoured, dynamic: address from the range plus the boot file.
    let c2 = ns.add_veth_host("c2");
    c2.exec_ok(&["ip", "link", "set", "eth0", "address", DYN_MAC]);
    let (u2, env2) = udhcpc(
        &c2,
        dir.path(),
        "c2",
        &["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"],
    );
    let ip2 = wait_env(&env2, "ip");
    let last: u8 = ip2
        .strip_prefix("10.77.2.")
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    assert!((100..=199).contains(&last), "{ip2} not in the range");
    assert_eq!(
        env_var(&env2, "boot_file").as_deref(),
        Some("undionly.kpxe")
    );
    assert_eq!(env_var(&env2, "siaddr").as_deref(), Some("10.77.2.1"));
    assert_eq!(env_var(&env2, "serverid").as_deref(), Some("10.77.2.1"));
    assert_eq!(env_var(&env2, "router").as_deref(), Some("10.77.2.1"));
    signal(&u2, "USR1");
    p.wait(Duration::from_secs(15), "udhcpc renew", |e| {
        e["event"] == "dhcp-lease" && e["mac"] == DYN_MAC && e["action"] == "renew"
    });

    // Restart: the lease is on disk (its journal first) and honoured. A clean stop folds
    // the journal into the lease file.
    let lease_file = dir.path().join(".pxelab/leases.json");
    let saved = common::wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        Some(common::lease_text(&lease_file)).filter(|l| l.contains(DYN_MAC) && l.contains(&ip2))
    });
    assert!(saved.is_some(), "the lease of {DYN_MAC} was never saved");
    let status = p.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "pxelab did not stop cleanly on SIGTERM: {status:?}"
    );
    let leases = std::fs::read_to_string(&lease_file).unwrap();
    assert!(
        leases.contains(DYN_MAC) && leases.contains(&ip2),
        "{leases}"
    );
    let journal = dir.path().join(".pxelab/leases.json.journal");
    assert_eq!(
        std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0),
        0,
        "a clean stop leaves the journal empty"
    );
    // The lease writer is the first to create `.pxelab/` here: private all the same.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(".pxelab")), 0o700, ".pxelab/");
        assert_eq!(mode(&lease_file), 0o600, "leases.json");
        assert_eq!(mode(&journal), 0o600, "leases.json.journal");
    }
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp"]);
    let c3 = ns.add_veth_host("c3");
    c3.exec_ok(&["ip", "link", "set", "eth0", "address", OTHER_MAC]);
    let (_u3, env3) = udhcpc(&c3, dir.path(), "c3", &["-r", &ip2]);
    let ip3 = wait_env(&env3, "ip");
    assert_ne!(
        ip3, ip2,
        "a leased address was handed to another client after restart"
    );
    signal(&u2, "USR1");
    p.wait(Duration::from_secs(15), "renew after restart", |e| {
        e["event"] == "dhcp-lease" && e["mac"] == DYN_MAC && e["action"] == "renew"
    });
    signal(&u2, "USR2");
    p.wait(Duration::from_secs(15), "udhcpc release", |e| {
        e["event"] == "dhcp-lease"
            && e["mac"] == DYN_MAC
            && e["action"] == "release"
            && e["ip"] == ip2.as_str()
    });
    assert!(p
        .matching(|e| e["event"] == "dhcp-reply" && e["msg"] == "nak")
        .is_empty());
    p.stop();
}
