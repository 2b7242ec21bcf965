//! Real UEFI firmware through the whole PXE front door, TFTP included: OVMF with no
//! option ROM (its own EDK2 PXE client, option 93 = 7, on its own virtio-net driver) in a
//! network namespace gets `snponly.efi` from pxelab's DHCP server, fetches it from
//! pxelab's TFTP server, runs it, and the resulting iPXE asks DHCP again (option 175,
//! `iPXE`) and then fetches boot.ipxe over HTTP. Everything is asserted on pxelab's own
//! JSON event stream. (BIOS VMs, whose QEMU ROM is already iPXE, are covered by
//! `tests/qemu_boot.rs`.)
//!
//! OVMF first asks TFTP for the file's size and aborts that transfer itself (TFTP error
//! 8, RFC 2349 option negotiation): that shows as one `tftp-end` with outcome `error`
//! before the complete transfer. TCG unless `PXELAB_QEMU_ACCEL=kvm`; the VM is killed
//! when the test ends, and the namespace removed.

mod common;
mod dhcp_support;
mod qemu_lab;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ChildGuard, NetNs};
use dhcp_support::{write_lab, Pxelab};

const VM_MAC: &str = "52:54:00:5e:00:07";
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const IPXE_ROOT: &str = "/usr/lib/ipxe";

#[test]
fn ovmf_boots_over_pxe_tftp_then_ipxe_asks_for_its_script() {
    if !common::require_root()
        || !qemu_lab::require_vm_tools()
        || !common::require(
            std::path::Path::new(OVMF_CODE).is_file(),
            "OVMF firmware (the ovmf package)",
        )
        || !common::require(
            std::path::Path::new(IPXE_ROOT)
                .join("snponly.efi")
                .is_file(),
            "iPXE EFI binaries (the ipxe package)",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = NetNs::with_bridge("pxtuefi", "10.81.0.1/24");
    ns.add_tap("tap0");
    let lab = write_lab(
        dir.path(),
        &format!(
            "name: uefi\ninterface: br0\nserver_address: 10.81.0.1\n\
             dhcp: {{mode: server, subnet: 10.81.0.0/24, range: [10.81.0.100, 10.81.0.150], snponly: true}}\n\
             tftp: {{root: {IPXE_ROOT}}}\nhttp: {{port: 8080, admin_port: 7480}}\n\
             ssh: {{watch: false}}\nboot: {{kernel: vmlinuz, initrds: [initrd]}}\nunknown: hold\n"
        ),
    );
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp", "tftp", "http"]);

    let vars = dir.path().join("vars.fd");
    std::fs::copy(OVMF_VARS, &vars).unwrap();
    let log_path = dir.path().join("qemu.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let accel = match std::env::var("PXELAB_QEMU_ACCEL").as_deref() {
        Ok("kvm") => "kvm",
        _ => "tcg",
    };
    let code = format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}");
    let varsd = format!("if=pflash,format=raw,unit=1,file={}", vars.display());
    // `romfile=` (empty): no iPXE option ROM, so the PXE client is OVMF's own.
    let nic = format!("virtio-net-pci,netdev=n0,mac={VM_MAC},romfile=");
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
    let _vm = ChildGuard(child);
    let started = Instant::now();
    let limit = Duration::from_secs(180);
    let at = |what: &str| eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());

    let d = p.wait(limit, "OVMF's DISCOVER", |e| {
        e["event"] == "dhcp-discover" && e["mac"] == VM_MAC && e["ipxe"] == false
    });
    at("OVMF DISCOVER");
    assert_eq!(d["arch"], 7, "x64 UEFI PXE: {d}");
    p.wait(limit, "snponly.efi in an OFFER or ACK", |e| {
        e["event"] == "dhcp-reply" && e["mac"] == VM_MAC && e["boot_file"] == "snponly.efi"
    });
    let size = std::fs::metadata(std::path::Path::new(IPXE_ROOT).join("snponly.efi"))
        .unwrap()
        .len();
    let t = p.wait(limit, "a complete TFTP transfer of snponly.efi", |e| {
        e["event"] == "tftp-end" && e["file"] == "snponly.efi" && e["outcome"] == "complete"
    });
    at("snponly.efi over TFTP");
    assert_eq!(t["bytes"], size, "{t}");
    p.wait(limit, "iPXE's DISCOVER", |e| {
        e["event"] == "dhcp-discover" && e["mac"] == VM_MAC && e["ipxe"] == true
    });
    at("iPXE DISCOVER");
    p.wait(limit, "iPXE's boot.ipxe request", |e| {
        e["event"] == "http-fetch"
            && e["path"].as_str().unwrap_or("").contains("boot.ipxe")
            && e["status"] == 200
    });
    at("boot.ipxe over HTTP");
    // The unknown machine is held in the wait loop, never given the iPXE binary again.
    p.wait(limit, "node-held", |e| {
        e["event"] == "node-held" && e["mac"] == VM_MAC
    });
    // OVMF's size probe, which it aborts itself, is reported as such, not as a failure
    // of ours; and the transfers are attributed to the machine.
    let ends = p.matching(|e| e["event"] == "tftp-end");
    assert!(
        ends.iter()
            .any(|e| e["outcome"] == "error"
                && e["detail"].as_str().unwrap_or("").contains("error 8")),
        "{ends:?}"
    );
    assert!(ends.iter().all(|e| e["mac"] == VM_MAC), "{ends:?}");
    let replies = p.matching(|e| e["event"] == "dhcp-reply" && e["mac"] == VM_MAC);
    assert!(
        replies.iter().any(|r| r["boot_file"]
            .as_str()
            .unwrap_or("")
            .contains("/boot.ipxe?mac=")),
        "iPXE was given its script URL: {replies:?}"
    );
    p.stop();
}
