//! A replay of a Raspberry Pi 4 / CM4 network boot against the real `pxelab up`, inside
//! network namespaces (the lab network rule: no DHCP on the host's network). The Pi's
//! side is what its EEPROM bootloader sends, per Raspberry Pi's bootloader docs: a
//! DHCP DISCOVER/REQUEST with option 60 `PXEClient:Arch:00000:UNDI:002001`, option 93
//! = 0 and its GUID (tests/pi_support/pi4_dhcp.py, from a veth with a Pi MAC), then
//! TFTP reads by the real tftp-hpa client of `<serial>/start4.elf`, `fixup4.dat`,
//! `config.txt`, `cmdline.txt`, the kernel and initramfs `config.txt` names.
//!
//! Proven: the replies carry option 43 (`Raspberry Pi Boot`) and 66 (the TFTP server);
//! files resolve per serial first, then the shared firmware; `config.txt` and
//! `cmdline.txt` are the node's own; an unlisted Pi gets no answer until it is adopted
//! (`pxelab adopt`), then boots.

mod common;
mod dhcp_support;

use std::path::Path;
use std::time::Duration;

use common::NetNs;
use dhcp_support::{free_tcp_port, Pxelab};
use serde_json::Value;

const PI_MAC: &str = "dc:a6:32:01:02:03";
const SERIAL: &str = "1234abcd";
const NEW_PI: &str = "dc:a6:32:09:09:09";
const NEW_SERIAL: &str = "9876fedc";
const SERVER: &str = "10.79.1.1";

fn lab_yaml(http: u16, admin: u16) -> String {
    format!(
        "name: pi-test\ninterface: br0\nserver_address: {SERVER}\n\
         dhcp:\n  mode: server\n  subnet: 10.79.1.0/24\n  range: [10.79.1.100, 10.79.1.150]\n\
         tftp: {{root: tftproot}}\nhttp: {{port: {http}, admin_port: {admin}}}\nk3s: {{server_url: \"https://10.79.1.1:6443\"}}\nssh: {{watch: false}}\n\
         pi: {{firmware: pifw}}\n\
         boot:\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  modloop: modloop-lts\n\
         \x20 cmdline: \"console=serial0,115200 ip=dhcp modloop={{{{ modloop_url }}}} alpine_repo=http://dl-cdn.alpinelinux.org/alpine/v3.21/main\"\n\
         \x20 arch:\n    aarch64: {{kernel: vmlinuz-rpi, initrds: [initramfs-rpi], modloop: modloop-rpi}}\n\
         unknown: hold\n\
         nodes:\n  - mac: {PI_MAC}\n    hostname: pi-1\n    role: k3s-agent\n"
    )
}

/// The lab folder: firmware (a per-serial start4.elf beside the shared one), assets.
fn write_lab(dir: &Path) -> std::path::PathBuf {
    let put = |p: &str, body: &str| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    };
    put("pifw/start4.elf", "shared start4.elf");
    put("pifw/fixup4.dat", "shared fixup4.dat");
    put("pifw/bcm2711-rpi-4-b.dtb", "shared dtb");
    put(
        &format!("pifw/{SERIAL}/start4.elf"),
        "start4.elf of 1234abcd",
    );
    put("assets/vmlinuz-lts", "x86 kernel");
    put("assets/initramfs-lts", "x86 initramfs");
    put("assets/vmlinuz-rpi", "arm64 kernel");
    put("assets/initramfs-rpi", "arm64 initramfs");
    put("tftproot/undionly.kpxe", "ipxe");
    let p = dir.join("lab.yaml");
    std::fs::write(&p, lab_yaml(free_tcp_port(), free_tcp_port())).unwrap();
    p
}

/// Runs the bootloader's DHCP from `ns`; its replies (`null` for none).
fn pi_dhcp(ns: &NetNs, mac: &str, serial: &str, mode: &str, secs: u32) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pi_support/pi4_dhcp.py");
    let out = ns.exec(&[
        "timeout",
        &(secs * 3 + 5).to_string(),
        "python3",
        script.to_str().unwrap(),
        mac,
        serial,
        mode,
        &secs.to_string(),
    ]);
    assert!(out.status.success(), "pi4_dhcp.py: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn opt(reply: &Value, code: u8) -> Option<Vec<u8>> {
    let hex = reply["options"][code.to_string()].as_str()?;
    Some(
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
    )
}

/// Reads `name` over TFTP with tftp-hpa from `ns`; its contents, or the client's words.
fn tftp_get(ns: &NetNs, dir: &Path, name: &str) -> Result<String, String> {
    let local = dir.join(format!("got-{}", name.replace('/', "_")));
    let _ = std::fs::remove_file(&local);
    let out = ns.exec(&[
        "timeout",
        "20",
        "tftp",
        "-m",
        "binary",
        SERVER,
        "-c",
        "get",
        name,
        local.to_str().unwrap(),
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match std::fs::read_to_string(&local) {
        Ok(s) if said.trim().is_empty() => Ok(s),
        _ => Err(said),
    }
}

fn pi_client(br: &NetNs, name: &str, mac: &str) -> NetNs {
    let c = br.add_veth_host(name);
    c.exec_ok(&["ip", "link", "set", "eth0", "address", mac]);
    c
}

#[test]
fn pi4_bootloader_replay() {
    if !common::require_root() || !common::require_programs(&["python3", "tftp", "timeout"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = write_lab(dir.path());
    let ns = NetNs::with_bridge("pxtpi", &format!("{SERVER}/24"));
    let p = Pxelab::start(ns.command(&[]), &lab, &["dhcp", "tftp"]);
    let pi = pi_client(&ns, "pi1", PI_MAC);

    // DHCP: DISCOVER → OFFER, REQUEST → ACK, each with 43 and 66 as the bootloader needs.
    let replies = pi_dhcp(&pi, PI_MAC, SERIAL, "dora", 5);
    assert_eq!(replies.len(), 2, "{replies:?}");
    for r in &replies {
        assert!(!r.is_null(), "no reply: {replies:?}");
        let o43 = opt(r, 43).expect("option 43");
        assert!(
            o43.windows(17).any(|w| w == b"Raspberry Pi Boot"),
            "43: {o43:?}"
        );
        assert_eq!(opt(r, 66).as_deref(), Some(SERVER.as_bytes()), "66");
        assert_eq!(opt(r, 60).as_deref(), Some(&b"PXEClient"[..]), "60");
        assert_eq!(r["siaddr"], SERVER);
    }
    let ip = replies[1]["yiaddr"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.79.1.1"), "{ip}");
    pi.exec_ok(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    let d = p.wait(Duration::from_secs(5), "the Pi's discover", |e| {
        e["event"] == "dhcp-discover" && e["mac"] == PI_MAC
    });
    assert_eq!(d["arch"], 0);

    // TFTP, in the bootloader's order: per serial first, then the shared firmware.
    let get = |name: &str| tftp_get(&pi, dir.path(), name);
    assert_eq!(
        get(&format!("{SERIAL}/start4.elf")).unwrap(),
        "start4.elf of 1234abcd"
    );
    assert_eq!(
        get(&format!("{SERIAL}/fixup4.dat")).unwrap(),
        "shared fixup4.dat"
    );
    let config = get(&format!("{SERIAL}/config.txt")).unwrap();
    assert!(
        config.contains("# pxelab: pi-1 (dc:a6:32:01:02:03)"),
        "{config}"
    );
    assert!(config.contains("arm_64bit=1\nkernel=vmlinuz-rpi\ninitramfs initramfs-rpi followkernel\ncmdline=cmdline.txt\n"), "{config}");
    assert_eq!(
        get(&format!("{SERIAL}/bcm2711-rpi-4-b.dtb")).unwrap(),
        "shared dtb"
    );
    let cmdline = get(&format!("{SERIAL}/cmdline.txt")).unwrap();
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    let base = lab_http_base(&lab);
    assert!(
        words.contains(&format!("modloop={base}/assets/modloop-rpi").as_str()),
        "{cmdline}"
    );
    assert!(
        words.contains(&"alpine_repo=http://dl-cdn.alpinelinux.org/alpine/v3.21/main"),
        "{cmdline}"
    );
    assert_eq!(
        words.last().copied(),
        Some(format!("ds=nocloud;s={base}/nocloud/{PI_MAC}/").as_str()),
        "{cmdline}"
    );
    assert!(
        cmdline.ends_with('\n') && cmdline.lines().count() == 1,
        "{cmdline:?}"
    );
    assert_eq!(
        get(&format!("{SERIAL}/vmlinuz-rpi")).unwrap(),
        "arm64 kernel"
    );
    assert_eq!(
        get(&format!("{SERIAL}/initramfs-rpi")).unwrap(),
        "arm64 initramfs"
    );
    // Not served: what is not the Pi's, and a way out of the tree.
    assert!(get(&format!("{SERIAL}/vmlinuz-lts")).is_err());
    assert!(get(&format!("{SERIAL}/../lab.yaml")).is_err());
    let done = p
        .matching(|e| e["event"] == "tftp-end" && e["mac"] == PI_MAC && e["outcome"] == "complete");
    assert_eq!(done.len(), 7, "{done:?}");
    // The record says what booted it.
    let rec = p.wait(
        Duration::from_secs(5),
        "the Pi's firmware in an event",
        |e| e["event"] == "dhcp-discover" && e["mac"] == PI_MAC,
    );
    assert_eq!(rec["vendor_class"], "PXEClient:Arch:00000:UNDI:002001");

    // An unlisted Pi: held, no answer (its bootloader retries), until adopted.
    let newpi = pi_client(&ns, "pi2", NEW_PI);
    let replies = pi_dhcp(&newpi, NEW_PI, NEW_SERIAL, "discover", 3);
    assert_eq!(replies, vec![Value::Null], "a held Pi was answered");
    p.wait(Duration::from_secs(5), "the new Pi held", |e| {
        e["event"] == "node-held" && e["mac"] == NEW_PI
    });
    let adopt = ns.exec(&[
        common::pxelab_bin().to_str().unwrap(),
        "adopt",
        NEW_PI,
        "--role",
        "k3s-agent",
        "--hostname",
        "pi-2",
        "-c",
        lab.to_str().unwrap(),
    ]);
    assert!(adopt.status.success(), "adopt: {adopt:?}");
    p.wait(Duration::from_secs(10), "the new Pi adopted", |e| {
        e["event"] == "node-adopted" && e["mac"] == NEW_PI
    });
    let replies = common::wait_for(Duration::from_secs(15), Duration::from_millis(200), || {
        let r = pi_dhcp(&newpi, NEW_PI, NEW_SERIAL, "dora", 3);
        (r.len() == 2 && !r[1].is_null()).then_some(r)
    })
    .expect("the adopted Pi got no lease");
    let ip = replies[1]["yiaddr"].as_str().unwrap().to_string();
    newpi.exec_ok(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    let get2 = |name: &str| tftp_get(&newpi, dir.path(), name);
    // No folder of its own: the shared start4.elf; its own command line.
    assert_eq!(
        get2(&format!("{NEW_SERIAL}/start4.elf")).unwrap(),
        "shared start4.elf"
    );
    let cmdline = get2(&format!("{NEW_SERIAL}/cmdline.txt")).unwrap();
    assert!(
        cmdline.trim_end().ends_with(&format!("/nocloud/{NEW_PI}/")),
        "{cmdline}"
    );
    drop(p);
}

/// `http://SERVER:PORT` of the lab written by [`write_lab`].
fn lab_http_base(lab: &Path) -> String {
    let text = std::fs::read_to_string(lab).unwrap();
    let port = text
        .split("http: {port: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap();
    format!("http://{SERVER}:{port}")
}
