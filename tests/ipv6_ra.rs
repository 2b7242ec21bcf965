//! IPv6 router advertisements in DHCP server mode, against the Linux kernel as the RA
//! client (accept_ra=2, forwarding 0) in a second namespace joined by a veth:
//! - pxelab alone on the segment: the host takes a SLAAC address inside the lab's ULA
//!   /64 within seconds, installs no default route (router lifetime 0), and answers a
//!   fresh Router Solicitation at once; pxelab's own namespace takes no address from it.
//! - dnsmasq already advertising on the segment (the LAN's router): pxelab under `auto`
//!   says it leaves RAs to it, and the host gets only dnsmasq's prefix.
//!
//! Everything runs inside namespaces the test creates and removes (`pxra-…`): nothing is
//! sent on this machine's own network.

mod common;
mod dhcp_support;

use std::net::Ipv6Addr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ChildGuard, NetNs};
use dhcp_support::{write_lab, Pxelab};

const LAB: &str = "ra-test";

fn lab_yaml(net: &str) -> String {
    format!(
        "name: {LAB}\ninterface: br0\nserver_address: {net}.1\n\
         dhcp:\n  mode: server\n  subnet: {net}.0/24\n  range: [{net}.100, {net}.199]\n\
         tftp: {{root: /usr/lib/ipxe}}\nhttp: {{port: 8080, admin_port: 7480}}\n\
         k3s: {{server_url: \"https://{net}.1:6443\"}}\nssh: {{watch: false}}\n\
         boot: {{kernel: vmlinuz, initrds: [initrd]}}\nnodes: []\n"
    )
}

/// A namespace `<name>-h` on the bridge whose kernel accepts RAs and does not forward.
fn ra_client(ns: &NetNs) -> NetNs {
    let host = ns.add_veth_host("h");
    for (k, v) in [
        ("net.ipv6.conf.eth0.forwarding", "0"),
        ("net.ipv6.conf.eth0.accept_ra", "2"),
        ("net.ipv6.conf.eth0.autoconf", "1"),
        // No duplicate address detection: addresses usable at once, shorter waits.
        ("net.ipv6.conf.eth0.accept_dad", "0"),
    ] {
        host.exec_ok(&["sysctl", "-qw", &format!("{k}={v}")]);
    }
    host
}

/// The IPv6 addresses on `dev` in `ns`.
fn addrs(ns: &NetNs, dev: &str) -> Vec<Ipv6Addr> {
    let out = ns.exec(&["ip", "-6", "-o", "addr", "show", "dev", dev]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "inet6")?;
            w.get(i + 1)?.split('/').next()?.parse().ok()
        })
        .collect()
}

fn in_prefix(a: &Ipv6Addr, prefix: &Ipv6Addr) -> bool {
    a.octets()[..8] == prefix.octets()[..8]
}

/// Waits up to `limit` for an address on `eth0` of `host` inside `prefix`.
fn wait_addr_in(host: &NetNs, prefix: &Ipv6Addr, limit: Duration) -> Option<Ipv6Addr> {
    common::wait_for(limit, Duration::from_millis(100), || {
        addrs(host, "eth0")
            .into_iter()
            .find(|a| in_prefix(a, prefix))
    })
}

fn default_routes(host: &NetNs) -> String {
    let out = host.exec(&["ip", "-6", "route", "show", "default"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn alone_on_the_segment_pxelab_advertises_a_ula_prefix_without_a_default_route() {
    if !common::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = NetNs::with_bridge("pxra-solo", "10.92.0.1/24");
    let host = ra_client(&ns);
    let prefix = pxelab::net::ndp::ula_prefix(LAB, "br0");
    let lab = write_lab(dir.path(), &lab_yaml("10.92.0"));
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp", "ra"]);

    let ev = p.wait(Duration::from_secs(15), "ipv6-ra sending", |e| {
        e["event"] == "ipv6-ra" && e["sending"] == true
    });
    let reason = ev["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(&format!(
            "sending RAs on br0 for {prefix}/64: no other router"
        )),
        "{ev}"
    );
    let got = wait_addr_in(&host, &prefix, Duration::from_secs(10));
    assert!(
        got.is_some(),
        "the host took no address in {prefix}/64: {:?}",
        addrs(&host, "eth0")
    );
    assert_eq!(
        default_routes(&host),
        "",
        "router lifetime 0: no default route"
    );
    // The workstation's own kernel never hears pxelab's RAs (multicast loop off).
    assert!(
        !addrs(&ns, "br0").iter().any(|a| in_prefix(a, &prefix)),
        "br0 took an address from pxelab's own RA: {:?}",
        addrs(&ns, "br0")
    );

    // A fresh solicitation is answered at once, not at the next 10 s tick: the link
    // goes down (the kernel drops the SLAAC address) and up (the kernel solicits).
    std::thread::sleep(Duration::from_secs(4)); // past the three initial RAs
    host.exec_ok(&["ip", "link", "set", "eth0", "down"]);
    common::wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        (!addrs(&host, "eth0").iter().any(|a| in_prefix(a, &prefix))).then_some(())
    })
    .expect("the SLAAC address stayed after link down");
    let t0 = Instant::now();
    host.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    let again = wait_addr_in(&host, &prefix, Duration::from_secs(9));
    assert!(again.is_some(), "no address again after the host solicited");
    assert!(
        // The kernel solicits as soon as the link is up (no DAD here); the 10 s tick
        // would be a matter of luck.
        t0.elapsed() < Duration::from_secs(3),
        "the solicitation was not answered at once ({:?})",
        t0.elapsed()
    );
    assert_eq!(default_routes(&host), "");
    assert!(p.matching(|e| e["event"] == "server-down").is_empty());
    let status = p.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// A namespace `name` with dnsmasq advertising `fd00:<n>::/64` on br0 (the LAN's own
/// router), a host that already took an address from it, and pxelab started with
/// `dhcp.ipv6_ra: ra`. Returns what the test needs to look at.
fn beside_dnsmasq(
    name: &str,
    n: u8,
    ra: &str,
    dir: &std::path::Path,
) -> (NetNs, NetNs, ChildGuard, Pxelab) {
    let ns = NetNs::with_bridge(name, &format!("10.{n}.0.1/24"));
    ns.exec_ok(&[
        "ip",
        "addr",
        "add",
        &format!("fd00:{n}::1/64"),
        "dev",
        "br0",
    ]);
    let host = ra_client(&ns);
    let lan: Ipv6Addr = format!("fd00:{n}::").parse().unwrap();
    let dns_log = dir.join("dnsmasq.log");
    let log = std::fs::File::create(&dns_log).unwrap();
    let dnsmasq = ChildGuard(
        ns.command(&[
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--port=0",
            "--interface=br0",
            "--bind-interfaces",
            "--log-facility=-",
            "--pid-file=",
            "--enable-ra",
            "--dhcp-range=::,constructor:br0,ra-only",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dnsmasq"),
    );
    // The LAN's router works before pxelab starts.
    let lan_addr = wait_addr_in(&host, &lan, Duration::from_secs(20));
    assert!(
        lan_addr.is_some(),
        "dnsmasq's RA gave the host no address: {:?}\n{}",
        addrs(&host, "eth0"),
        std::fs::read_to_string(&dns_log).unwrap_or_default()
    );
    let yaml =
        lab_yaml(&format!("10.{n}.0")).replace("  range:", &format!("  ipv6_ra: {ra}\n  range:"));
    let lab = write_lab(dir, &yaml);
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp", "ra"]);
    (ns, host, dnsmasq, p)
}

#[test]
fn beside_another_router_pxelab_under_auto_sends_none() {
    if !(common::require_root() && common::require_program("dnsmasq")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_ns, host, _dnsmasq, p) = beside_dnsmasq("pxra-rtr", 93, "auto", dir.path());
    let lan: Ipv6Addr = "fd00:93::".parse().unwrap();
    let ours = pxelab::net::ndp::ula_prefix(LAB, "br0");
    let ev = p.wait(Duration::from_secs(15), "ipv6-ra not sending", |e| {
        e["event"] == "ipv6-ra"
    });
    let reason = ev["reason"].as_str().unwrap_or_default();
    assert_eq!(ev["sending"], false, "{ev}");
    assert!(
        reason.starts_with("not sending RAs on br0: router fe80::")
            && reason.contains("fd00:93::/64")
            && reason.ends_with("leaving RAs to it"),
        "{ev}"
    );
    // A while past the probe and where the initial RAs would be: nothing from pxelab.
    std::thread::sleep(Duration::from_secs(5));
    let v6 = addrs(&host, "eth0");
    assert!(!v6.iter().any(|a| in_prefix(a, &ours)), "{v6:?}");
    assert!(v6.iter().any(|a| in_prefix(a, &lan)), "{v6:?}");
    assert!(
        p.matching(|e| e["event"] == "ipv6-ra" && e["sending"] == true)
            .is_empty(),
        "{:?}",
        p.events()
    );
    let status = p.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn beside_another_router_pxelab_under_on_says_so_and_sends_anyway() {
    if !(common::require_root() && common::require_program("dnsmasq")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_ns, host, _dnsmasq, p) = beside_dnsmasq("pxra-on", 94, "on", dir.path());
    let ours = pxelab::net::ndp::ula_prefix(LAB, "br0");
    p.wait(Duration::from_secs(15), "ipv6-ra sending", |e| {
        e["event"] == "ipv6-ra" && e["sending"] == true
    });
    let got = wait_addr_in(&host, &ours, Duration::from_secs(10));
    assert!(got.is_some(), "{:?}", addrs(&host, "eth0"));
    // pxelab solicits at start under `on` too, and dnsmasq (on this same host) answers.
    let ev = p.wait(Duration::from_secs(15), "another router reported", |e| {
        e["event"] == "ipv6-ra"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("also advertises on br0"))
    });
    assert_eq!(ev["sending"], true, "{ev}");
    assert!(
        ev["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("fd00:94::/64"),
        "{ev}"
    );
    let status = p.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
