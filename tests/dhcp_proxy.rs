//! proxyDHCP beside a real dnsmasq on the same host and bridge, inside a network
//! namespace: dnsmasq holds UDP port 67 (wildcard, no SO_REUSEPORT), pxelab reads the
//! port through its raw socket. A PXE-flavoured dhclient (option 60 `PXEClient…`, 93 = 0)
//! gets its address from dnsmasq and its boot file from pxelab; a plain udhcpc gets
//! nothing from pxelab. Then perfdhcp (discover/offer only) measures the proxy.

mod common;
mod dhcp_support;

use std::time::Duration;

use common::{ChildGuard, NetNs};
use dhcp_support::{dnsmasq, pxe_dhclient, write_lab, Pxelab};

const PXE_MAC: &str = "52:54:00:77:00:01";
const PLAIN_MAC: &str = "52:54:00:77:00:02";

fn lab_yaml(ip: &str) -> String {
    format!(
        "name: proxy-test\ninterface: br0\nserver_address: {ip}\n\
         dhcp: {{mode: proxy}}\ntftp: {{root: /usr/lib/ipxe}}\n\
         http: {{port: 8080, admin_port: 7480}}\nssh: {{watch: false}}\n\
         boot: {{kernel: vmlinuz, initrds: [initrd]}}\nunknown: hold\n"
    )
}

/// The LAN's DHCP server: dnsmasq on br0, holding port 67 on the wildcard address.
fn lan_dhcp(ns: &NetNs, range: &str) -> ChildGuard {
    dnsmasq(
        ns,
        &[
            format!("--dhcp-range={range},12h"),
            "-i".to_string(),
            "br0".to_string(),
            "--dhcp-authoritative".to_string(),
        ],
    )
}

#[test]
fn proxy_beside_dnsmasq() {
    if !common::require_root() {
        return;
    }
    if !common::require_programs(&["dnsmasq", "dhclient", "busybox", "ss"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = NetNs::with_bridge("pxtproxy", "10.77.1.1/24");
    let _dns = lan_dhcp(&ns, "10.77.1.100,10.77.1.150");
    let lab = write_lab(dir.path(), &lab_yaml("10.77.1.1"));
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp", "tftp"]);
    // dnsmasq still holds 67: pxelab did not take it.
    let ss = String::from_utf8_lossy(&ns.exec(&["ss", "-uanp"]).stdout).to_string();
    assert!(
        !ss.lines()
            .any(|l| l.contains("pxelab") && l.contains(":67 ")),
        "pxelab bound port 67: {ss}"
    );

    // PXE-flavoured dhclient: requires a subnet mask, which only dnsmasq's offer has,
    // so it binds dnsmasq's address while pxelab's proxy offer is seen on the wire.
    let c1 = ns.add_veth_host("c1");
    c1.exec_ok(&["ip", "link", "set", "eth0", "address", PXE_MAC]);
    let (ip, log) = pxe_dhclient(&c1, dir.path(), 40);
    let ip = ip.unwrap_or_else(|| panic!("dhclient got no address: {log}"));
    assert!(
        ip.starts_with("10.77.1.1") && ip != "10.77.1.1",
        "address {ip} not from dnsmasq: {log}"
    );
    let d = p.wait(Duration::from_secs(10), "PXE discover event", |e| {
        e["event"] == "dhcp-discover" && e["mac"] == PXE_MAC
    });
    assert_eq!(d["arch"], 0);
    assert!(d["vendor_class"].as_str().unwrap().starts_with("PXEClient"));
    let r = p.wait(Duration::from_secs(10), "proxy offer", |e| {
        e["event"] == "dhcp-reply" && e["mac"] == PXE_MAC
    });
    assert_eq!(r["msg"], "offer");
    assert_eq!(r["proxy"], true);
    assert_eq!(r["boot_file"], "undionly.kpxe");
    assert!(r.get("yiaddr").is_none());

    // Plain udhcpc: dnsmasq gives it an address, pxelab answers nothing.
    let c2 = ns.add_veth_host("c2");
    c2.exec_ok(&["ip", "link", "set", "eth0", "address", PLAIN_MAC]);
    let out = c2.exec(&[
        "timeout",
        "30",
        "busybox",
        "udhcpc",
        "-i",
        "eth0",
        "-f",
        "-q",
        "-n",
        "-t",
        "6",
        "-T",
        "2",
        "-s",
        "/bin/true",
    ]);
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("lease of 10.77.1.1"),
        "udhcpc got no lease from dnsmasq: {log}"
    );
    p.wait(Duration::from_secs(10), "drop of the plain discover", |e| {
        e["event"] == "dhcp-dropped" && e["reason"].as_str().unwrap_or("").contains(PLAIN_MAC)
    });
    assert!(
        p.matching(|e| e["event"] == "dhcp-reply" && e["mac"] == PLAIN_MAC)
            .is_empty(),
        "pxelab answered a plain client"
    );
    p.stop();
}
