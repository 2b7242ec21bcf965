//! DHCP through a real relay (dnsmasq's `--dhcp-relay`, the `ip helper-address` of a
//! routed lab): the machines sit on one segment, pxelab on another. Three namespaces the
//! test makes and removes:
//!
//! ```text
//!  pxtrly-c (client)          pxtrly-r (relay: dnsmasq)          pxtrly (pxelab, br0)
//!  eth0 ──────────────── eth1 10.78.1.1   eth0 10.78.2.2 ──── br0 10.78.2.1
//!                                                              └─ pxtrly-l: LAN DHCP 10.78.2.3
//! ```
//!
//! Server mode: udhcpc (a PXE-flavoured one) gets an address of the relayed segment, the
//! boot file and pxelab as next server, all through the relay; pxelab's events name the
//! relay. Proxy mode: the relay forwards to the LAN's DHCP server (another dnsmasq) and
//! to pxelab; the client's address comes from the LAN server, and pxelab's proxy offer
//! goes back to the relay.

mod common;
mod dhcp_support;

use std::process::Stdio;
use std::time::Duration;

use common::{ChildGuard, NetNs};
use dhcp_support::{dnsmasq, pxe_dhclient, write_lab, Pxelab};

const PXE_MAC: &str = "52:54:00:78:00:01";
const RELAY: &str = "10.78.1.1";
const PXELAB: &str = "10.78.2.1";
const LAN_DHCP: &str = "10.78.2.3";

fn can_run() -> bool {
    common::require_root()
        && common::require_programs(&["dnsmasq", "busybox", "dhclient", "ss", "python3"])
}

/// The three segments. Returns (pxelab's namespace, relay, client).
fn topology(name: &str) -> (NetNs, NetNs, NetNs) {
    let srv = NetNs::with_bridge(name, &format!("{PXELAB}/24"));
    // Replies to a relay go to its giaddr, on the other segment.
    srv.exec_ok(&["ip", "route", "add", "10.78.1.0/24", "via", "10.78.2.2"]);
    let relay = srv.add_veth_host("r");
    relay.exec_ok(&["ip", "addr", "add", "10.78.2.2/24", "dev", "eth0"]);
    let client = NetNs::new(&format!("{name}-c"));
    relay.exec_ok(&[
        "ip",
        "link",
        "add",
        "eth1",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &client.name,
    ]);
    relay.exec_ok(&["ip", "addr", "add", &format!("{RELAY}/24"), "dev", "eth1"]);
    relay.exec_ok(&["ip", "link", "set", "eth1", "up"]);
    client.exec_ok(&["ip", "link", "set", "eth0", "address", PXE_MAC]);
    client.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    (srv, relay, client)
}

/// The relay, forwarding the client segment's requests to each of `servers`.
fn relay_to(ns: &NetNs, servers: &[&str]) -> ChildGuard {
    let args: Vec<String> = servers
        .iter()
        .map(|s| format!("--dhcp-relay={RELAY},{s}"))
        .collect();
    dnsmasq(ns, &args)
}

/// Writes one line per BOOTREPLY seen on eth0 to the file named by argv[1] (created at
/// start, so the test knows it listens).
const SNIFFER: &str = r#"
import socket, struct, sys
out = open(sys.argv[1], "w", buffering=1)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
s.bind(("eth0", 0))
while True:
    f = s.recv(4096)
    ip = f[14:]
    if len(ip) < 20 or ip[9] != 17:
        continue
    ihl = (ip[0] & 15) * 4
    udp, bootp = ip[ihl:ihl + 8], ip[ihl + 8:]
    if len(bootp) < 240 or struct.unpack("!H", udp[2:4])[0] != 68 or bootp[0] != 2:
        continue
    q = lambda b: socket.inet_ntoa(bytes(b))
    name = bootp[108:236].split(b"\0")[0].decode("latin-1")
    out.write(f"src={q(ip[12:16])} yiaddr={q(bootp[16:20])} siaddr={q(bootp[20:24])} file={name}\n")
"#;

fn lab_yaml(dhcp: &str) -> String {
    format!(
        "name: relay-test\ninterface: br0\nserver_address: {PXELAB}\n{dhcp}\
         tftp: {{root: /usr/lib/ipxe}}\nhttp: {{port: 8080, admin_port: 7480}}\n\
         ssh: {{watch: false}}\nboot: {{kernel: vmlinuz, initrds: [initrd]}}\nunknown: hold\n"
    )
}

#[test]
fn server_mode_answers_through_a_relay() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (srv, relay, client) = topology("pxtrly");
    let _relay = relay_to(&relay, &[PXELAB]);
    let lab = write_lab(
        dir.path(),
        &lab_yaml(
            "dhcp:\n  mode: server\n  subnet: 10.78.1.0/24\n  range: [10.78.1.100, 10.78.1.199]\n  \
             lease_time: 1h\n  router: 10.78.1.1\n",
        ),
    );
    let p = Pxelab::start(srv.command(&[]), &lab, &["dhcp"]);

    // udhcpc's script records what it was given.
    let envf = dir.path().join("c.env");
    let script = dir.path().join("c.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\nenv > {0}.tmp && mv {0}.tmp {0}\n",
            envf.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = client.exec(&[
        "timeout",
        "40",
        "busybox",
        "udhcpc",
        "-i",
        "eth0",
        "-f",
        "-q",
        "-n",
        "-t",
        "10",
        "-T",
        "2",
        "-V",
        "PXEClient:Arch:00000:UNDI:002001",
        "-x",
        "0x5d:0000",
        "-s",
        script.to_str().unwrap(),
    ]);
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let env = std::fs::read_to_string(&envf)
        .unwrap_or_else(|_| p.fail(&format!("a lease through the relay; udhcpc: {log}")));
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    let ip = var("ip").unwrap_or_default();
    assert!(ip.starts_with("10.78.1.1") && ip.len() == 11, "{ip}: {env}");
    assert_eq!(var("boot_file").as_deref(), Some("undionly.kpxe"), "{env}");
    assert_eq!(var("siaddr").as_deref(), Some(PXELAB), "{env}");
    assert_eq!(var("serverid").as_deref(), Some(PXELAB), "{env}");
    assert_eq!(var("router").as_deref(), Some(RELAY), "{env}");

    // pxelab saw the relay, and leased the address it handed out.
    let d = p.wait(Duration::from_secs(15), "relayed discover", |e| {
        e["event"] == "dhcp-discover" && e["mac"] == PXE_MAC
    });
    assert_eq!(d["relay"], RELAY, "{d}");
    let ack = p.wait(Duration::from_secs(15), "ack through the relay", |e| {
        e["event"] == "dhcp-reply" && e["mac"] == PXE_MAC && e["msg"] == "ack"
    });
    assert_eq!(ack["yiaddr"], ip.as_str());
    p.stop();
}

#[test]
fn proxy_mode_answers_the_relay_beside_the_lan_dhcp() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (srv, relay, client) = topology("pxtrlp");
    // The LAN's DHCP server, on pxelab's segment, serving the relayed one.
    let lan = srv.add_veth_host("l");
    lan.exec_ok(&[
        "ip",
        "addr",
        "add",
        &format!("{LAN_DHCP}/24"),
        "dev",
        "eth0",
    ]);
    lan.exec_ok(&["ip", "route", "add", "10.78.1.0/24", "via", "10.78.2.2"]);
    let _lan = dnsmasq(
        &lan,
        &[
            "--dhcp-range=10.78.1.50,10.78.1.60,255.255.255.0,12h".to_string(),
            "--dhcp-option=3,10.78.1.1".to_string(),
            "--dhcp-authoritative".to_string(),
        ],
    );
    let _relay = relay_to(&relay, &[LAN_DHCP, PXELAB]);
    let lab = write_lab(
        dir.path(),
        &lab_yaml(&format!("dhcp: {{mode: proxy, relays: [{RELAY}]}}\n")),
    );
    let p = Pxelab::start(srv.command(&[]), &lab, &["dhcp"]);

    // A sniffer on the client's wire (AF_PACKET, bounded in time) records each BOOTREPLY.
    let sniffed = dir.path().join("sniffed.txt");
    let mut sniffer = ChildGuard(
        client
            .command(&[
                "timeout",
                "60",
                "python3",
                "-c",
                SNIFFER,
                sniffed.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sniffer"),
    );
    common::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        sniffed.exists().then_some(())
    })
    .expect("the sniffer did not start");
    // dhclient binds the LAN server's address (it requires a subnet mask, which a proxy
    // offer never has) while pxelab's proxy offer travels back through the relay too.
    let (ip, log) = pxe_dhclient(&client, dir.path(), 50);
    let ip = ip.unwrap_or_else(|| panic!("dhclient got no address: {log}"));
    assert!(
        ip.starts_with("10.78.1.5") || ip == "10.78.1.60",
        "address {ip} not from the LAN's DHCP server: {log}"
    );
    let d = p.wait(Duration::from_secs(15), "relayed PXE discover", |e| {
        e["event"] == "dhcp-discover" && e["mac"] == PXE_MAC
    });
    assert_eq!(d["relay"], RELAY, "{d}");
    let r = p.wait(Duration::from_secs(15), "proxy offer to the relay", |e| {
        e["event"] == "dhcp-reply" && e["mac"] == PXE_MAC
    });
    assert_eq!(r["msg"], "offer");
    assert_eq!(r["proxy"], true);
    assert_eq!(r["boot_file"], "undionly.kpxe");
    assert!(r.get("yiaddr").is_none(), "{r}");
    // On the client's wire: pxelab's proxy offer, forwarded by the relay.
    let seen = common::wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        let t = std::fs::read_to_string(&sniffed).ok()?;
        t.lines()
            .find(|l| l.contains("yiaddr=0.0.0.0") && l.contains("file=undionly.kpxe"))
            .map(str::to_string)
    });
    let _ = sniffer.0.kill();
    let all = std::fs::read_to_string(&sniffed).unwrap_or_default();
    let seen = seen.unwrap_or_else(|| panic!("no proxy offer on the client's wire:\n{all}"));
    assert!(seen.contains(&format!("src={RELAY} ")), "{seen}");
    assert!(seen.contains(&format!("siaddr={PXELAB} ")), "{seen}");
    p.stop();
}
