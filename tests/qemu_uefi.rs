//! Real UEFI firmware through both UEFI front doors, asserted on pxelab's own JSON
//! event stream. OVMF runs with no option ROM (`romfile=`), so the network boot client
//! is EDK2's own on its own virtio-net driver, not iPXE. (BIOS VMs, whose QEMU ROM is
//! already iPXE, are covered by `tests/qemu_boot.rs`.)
//!
//! - PXE over TFTP: OVMF (option 93 = 7) gets `snponly.efi` from pxelab's DHCP server,
//!   fetches it from pxelab's TFTP server, runs it, and that iPXE asks DHCP again and
//!   fetches boot.ipxe. OVMF first asks TFTP for the file's size and aborts that transfer
//!   itself (TFTP error 8): one `tftp-end` with outcome `error` before the complete one.
//! - UEFI HTTP boot: with pxelab's TFTP off, OVMF's PXE attempt times out and it falls
//!   back to HTTP boot (option 60 `HTTPClient`, 93 = 16); pxelab answers with
//!   `http://SERVER:PORT/ipxe/snponly.efi`, serves it over HTTP from the TFTP root, and
//!   that iPXE fetches boot.ipxe.
//!
//! - The same HTTP boot in proxy mode: dnsmasq on the bridge is the LAN's DHCP server
//!   and gives the address; pxelab's proxy offer gives the URL; the fetch is attributed
//!   to the machine through the kernel's ARP table.
//!
//! TCG unless `PXELAB_QEMU_ACCEL=kvm`; the VM and pxelab are killed when the test ends
//! and the namespace is removed.

mod common;
mod dhcp_support;
mod qemu_lab;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ChildGuard, NetNs};
use dhcp_support::{dnsmasq, write_lab, Pxelab};

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const IPXE_ROOT: &str = "/usr/lib/ipxe";
/// Every wait for the VM is bounded by this.
const LIMIT: Duration = Duration::from_secs(240);

/// One TCG VM at a time: two at once on 2 cores would double every step.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether this machine can run the test (root, QEMU, OVMF, the iPXE EFI binaries).
fn can_run() -> bool {
    common::require_root()
        && qemu_lab::require_vm_tools()
        && common::require(
            Path::new(OVMF_CODE).is_file(),
            "OVMF firmware (the ovmf package)",
        )
        && common::require(
            Path::new(IPXE_ROOT).join("snponly.efi").is_file(),
            "iPXE EFI binaries (the ipxe package)",
        )
}

/// Who gives the VM its address.
#[derive(Clone, Copy, PartialEq)]
enum Dhcp {
    /// pxelab's own DHCP server.
    Server,
    /// The LAN's (dnsmasq on the bridge); pxelab answers as proxyDHCP beside it.
    Proxy,
}

/// pxelab and one OVMF VM on a bridge in a namespace of their own (and, in proxy mode,
/// dnsmasq as the LAN's DHCP server).
struct Rig {
    pxelab: Pxelab,
    started: Instant,
    _vm: ChildGuard,
    _lan_dhcp: Option<ChildGuard>,
    _ns: NetNs,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start(ns_name: &str, net: &str, mac: &str, tftp: bool, mode: Dhcp) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let ns = NetNs::with_bridge(ns_name, &format!("{net}.1/24"));
        ns.add_tap("tap0");
        let lan_dhcp = (mode == Dhcp::Proxy).then(|| {
            dnsmasq(
                &ns,
                &[
                    format!("--dhcp-range={net}.100,{net}.150,1h"),
                    "-i".to_string(),
                    "br0".to_string(),
                    "--dhcp-authoritative".to_string(),
                ],
            )
        });
        let dhcp = match mode {
            Dhcp::Server => format!(
                "{{mode: server, subnet: {net}.0/24, range: [{net}.100, {net}.150], snponly: true}}"
            ),
            Dhcp::Proxy => "{mode: proxy, snponly: true}".to_string(),
        };
        let lab = write_lab(
            dir.path(),
            &format!(
                "name: uefi\ninterface: br0\nserver_address: {net}.1\n\
                 dhcp: {dhcp}\n\
                 tftp: {{enabled: {tftp}, root: {IPXE_ROOT}}}\nhttp: {{port: 8080, admin_port: 7480}}\n\
                 ssh: {{watch: false}}\nboot: {{kernel: vmlinuz, initrds: [initrd]}}\nunknown: hold\n"
            ),
        );
        let servers: &[&str] = if tftp {
            &["dhcp", "tftp", "http"]
        } else {
            &["dhcp", "http"]
        };
        let pxelab = Pxelab::start(ns.command(&[]), &lab, servers);

        let vars = dir.path().join("vars.fd");
        std::fs::copy(OVMF_VARS, &vars).unwrap();
        let log = std::fs::File::create(dir.path().join("qemu.log")).unwrap();
        let accel = match std::env::var("PXELAB_QEMU_ACCEL").as_deref() {
            Ok("kvm") => "kvm",
            _ => "tcg",
        };
        let code = format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}");
        let varsd = format!("if=pflash,format=raw,unit=1,file={}", vars.display());
        // `romfile=` (empty): no iPXE option ROM, so the boot client is OVMF's own.
        let nic = format!("virtio-net-pci,netdev=n0,mac={mac},romfile=");
        let child = ns
            .command(&[
                "qemu-system-x86_64",
                "-accel",
                accel,
                "-m",
                "512",
                "-display",
                "none",
                "-no-reboot",
                "-drive",
                &code,
                "-drive",
                &varsd,
                "-netdev",
                "tap,id=n0,ifname=tap0,script=no,downscript=no",
                "-device",
                &nic,
                "-serial",
                "null",
                "-monitor",
                "none",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start qemu-system-x86_64");
        Rig {
            pxelab,
            started: Instant::now(),
            _vm: ChildGuard(child),
            _lan_dhcp: lan_dhcp,
            _ns: ns,
            _dir: dir,
        }
    }

    /// Waits for an event matching `f` and prints when it came.
    fn step(&self, what: &str, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let ev = self.pxelab.wait(LIMIT, what, f);
        eprintln!("{what}: {:.1} s", self.started.elapsed().as_secs_f64());
        ev
    }

    /// OVMF's HTTP-boot DISCOVER (option 60 `HTTPClient`, 93 = 16), the reply carrying
    /// the binary's URL on pxelab at `server`, and the binary's fetch over HTTP, whole.
    /// Returns the reply and the fetch.
    fn http_boot_fetches_the_binary(
        &self,
        mac: &str,
        server: &str,
    ) -> (serde_json::Value, serde_json::Value) {
        let d = self.step("OVMF's HTTP-boot DISCOVER", |e| {
            e["event"] == "dhcp-discover"
                && e["mac"] == mac
                && e["vendor_class"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("HTTPClient")
        });
        assert_eq!(d["arch"], 16, "x64 UEFI HTTP boot: {d}");
        let url = format!("http://{server}:8080/ipxe/snponly.efi");
        let reply = self.step("the binary's URL in a DHCP reply", |e| {
            e["event"] == "dhcp-reply" && e["mac"] == mac && e["boot_file"] == url.as_str()
        });
        let f = self.step("snponly.efi over HTTP", |e| {
            e["event"] == "http-fetch" && e["what"] == "ipxe" && e["status"] == 200
        });
        assert_eq!(f["bytes"], snponly_size(), "{f}");
        (reply, f)
    }

    /// iPXE's DISCOVER, its boot.ipxe fetch and the hold of the unknown MAC; and iPXE
    /// was given its script URL, never the binary again.
    ///
    /// With pxelab alone on the segment (server mode: no router but pxelab's own RAs),
    /// boot.ipxe follows iPXE's DHCP ACK within 1 s: no IPv6 autoconfiguration wait.
    fn ipxe_asks_for_its_script(&self, mac: &str, mode: Dhcp) {
        self.step("iPXE's DISCOVER", |e| {
            e["event"] == "dhcp-discover" && e["mac"] == mac && e["ipxe"] == true
        });
        let fetch = self.step("iPXE's boot.ipxe request", |e| {
            e["event"] == "http-fetch"
                && e["mac"] == mac
                && e["path"].as_str().unwrap_or("").contains("boot.ipxe")
                && e["status"] == 200
        });
        if mode == Dhcp::Server {
            let fetched = fetch["at_ms"].as_u64().unwrap_or(0);
            let ack = self
                .pxelab
                .matching(|e| e["event"] == "dhcp-reply" && e["mac"] == mac && e["msg"] == "ack")
                .iter()
                .filter_map(|e| e["at_ms"].as_u64())
                .filter(|t| *t <= fetched)
                .max();
            let gap = ack.map(|a| fetched - a);
            eprintln!("boot.ipxe {gap:?} ms after iPXE's DHCP ACK");
            assert!(
                gap.is_some_and(|g| g <= 1_000),
                "boot.ipxe {gap:?} ms after the DHCP ACK (iPXE waited for IPv6?)"
            );
        }
        self.step("node-held", |e| {
            e["event"] == "node-held" && e["mac"] == mac
        });
        let replies = self
            .pxelab
            .matching(|e| e["event"] == "dhcp-reply" && e["mac"] == mac);
        assert!(
            replies.iter().any(|r| r["boot_file"]
                .as_str()
                .unwrap_or("")
                .contains("/boot.ipxe?mac=")),
            "iPXE was given its script URL: {replies:?}"
        );
    }
}

fn snponly_size() -> u64 {
    std::fs::metadata(Path::new(IPXE_ROOT).join("snponly.efi"))
        .unwrap()
        .len()
}

#[test]
fn ovmf_boots_over_pxe_tftp_then_ipxe_asks_for_its_script() {
    if !can_run() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mac = "52:54:00:5e:00:07";
    let rig = Rig::start("pxtuefi", "10.81.0", mac, true, Dhcp::Server);
    let d = rig.step("OVMF's DISCOVER", |e| {
        e["event"] == "dhcp-discover" && e["mac"] == mac && e["ipxe"] == false
    });
    assert_eq!(d["arch"], 7, "x64 UEFI PXE: {d}");
    rig.step("snponly.efi in an OFFER or ACK", |e| {
        e["event"] == "dhcp-reply" && e["mac"] == mac && e["boot_file"] == "snponly.efi"
    });
    let t = rig.step("a complete TFTP transfer of snponly.efi", |e| {
        e["event"] == "tftp-end" && e["file"] == "snponly.efi" && e["outcome"] == "complete"
    });
    assert_eq!(t["bytes"], snponly_size(), "{t}");
    rig.ipxe_asks_for_its_script(mac, Dhcp::Server);
    // OVMF's size probe, which it aborts itself, is reported as such, not as a failure
    // of ours; and the transfers are attributed to the machine.
    let ends = rig.pxelab.matching(|e| e["event"] == "tftp-end");
    assert!(
        ends.iter()
            .any(|e| e["outcome"] == "error"
                && e["detail"].as_str().unwrap_or("").contains("error 8")),
        "{ends:?}"
    );
    assert!(ends.iter().all(|e| e["mac"] == mac), "{ends:?}");
    rig.pxelab.stop();
}

#[test]
fn ovmf_http_boot_fetches_ipxe_over_http_then_its_script() {
    if !can_run() {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mac = "52:54:00:5e:00:10";
    let rig = Rig::start("pxtuefih", "10.83.0", mac, false, Dhcp::Server);
    let (_, f) = rig.http_boot_fetches_the_binary(mac, "10.83.0.1");
    assert_eq!(f["mac"], mac, "attributed through the lease: {f}");
    rig.ipxe_asks_for_its_script(mac, Dhcp::Server);
    rig.pxelab.stop();
}

#[test]
fn ovmf_http_boot_through_proxy_dhcp_beside_the_lan_server() {
    if !(can_run() && common::require_program("dnsmasq") && common::require_program("ss")) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mac = "52:54:00:5e:00:11";
    let rig = Rig::start("pxtuefip", "10.84.0", mac, false, Dhcp::Proxy);
    let (offer, f) = rig.http_boot_fetches_the_binary(mac, "10.84.0.1");
    assert_eq!(offer["proxy"], true, "{offer}");
    assert!(offer.get("yiaddr").is_none(), "{offer}");
    // The address came from dnsmasq, which pxelab never hears about: the kernel's ARP
    // entry names the machine.
    assert_eq!(f["mac"], mac, "attributed through ARP: {f}");
    let client = f["client"].as_str().unwrap_or("");
    assert!(
        client.starts_with("10.84.0.1"),
        "an address from dnsmasq's range: {f}"
    );
    rig.ipxe_asks_for_its_script(mac, Dhcp::Proxy);
    rig.pxelab.stop();
}
