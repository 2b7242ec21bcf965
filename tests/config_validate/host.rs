//! The checks of lab.yaml against the machine it runs on ([`pxelab::preflight`], run
//! by `check` and `up`): on a described machine, so each case is the same everywhere.
//! `tests/config_check_cli.rs` runs the same checks on a real one, in a namespace.

use pxelab::config::Lab;
use pxelab::net::ifaces::{Iface, Interfaces};
use pxelab::preflight::{problems, Host};

use super::boot::Folder;

/// The seed's workstation: its NIC is `enp4s0f4u1u3`, not `eth0`.
fn seed_host() -> Host {
    let iface = |name: &str, addrs: &[&str]| Iface {
        name: name.to_string(),
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    };
    Host {
        interfaces: Interfaces {
            list: vec![
                iface("enp4s0f4u1u3", &["192.168.64.134/27"]),
                iface("lo", &["127.0.0.1/8"]),
                iface("wlp2s0", &[]),
            ],
            addresses_known: true,
        },
    }
}

/// The seed's lab as pxelab writes it: dnsmasq's `interface=eth0`, pixiecore's
/// 192.168.64.134, the 192.168.64.128/27 of its DHCP range.
fn seed_lab(interface: &str, server: &str, extra: &str) -> String {
    format!(
        "name: seed\ninterface: {interface}\nserver_address: {server}\n\
         dhcp: {{mode: proxy, subnet: 192.168.64.128/27}}\n\
         tftp: {{root: ipxe}}\n\
         boot:\n  assets_dir: alpine-3.21\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  modloop: modloop-lts\n  cmdline: ip=dhcp alpine_repo=https://dl-cdn.alpinelinux.org/alpine/v3.21/main modloop={{{{ modloop_url }}}}\n\
         {extra}nodes: []\n"
    )
}

fn found(f: &Folder, text: &str, host: &Host) -> Vec<String> {
    std::fs::write(&f.path, text).unwrap();
    let dir = f.path.parent().unwrap();
    std::fs::create_dir_all(dir.join("ipxe")).unwrap();
    std::fs::write(dir.join("ipxe/undionly.kpxe"), b"ipxe").unwrap();
    let lab = Lab::parse(&f.path, text).unwrap();
    problems(&lab, host)
        .iter()
        .map(|p| p.to_string().replace(&dir.display().to_string(), "DIR"))
        .collect()
}

#[test]
fn the_seeds_eth0_on_a_machine_whose_nic_is_enp4s0f4u1u3() {
    let f = Folder::new();
    assert_eq!(
        found(&f, &seed_lab("eth0", "192.168.64.134", ""), &seed_host()),
        vec!["DIR/lab.yaml:2:12: error: interface: `eth0` does not exist on this machine (interfaces here: enp4s0f4u1u3 192.168.64.134/27, lo 127.0.0.1/8, wlp2s0); set interface: to the lab's NIC"]
    );
    assert_eq!(
        found(
            &f,
            &seed_lab("enp4s0f4u1u3", "192.168.64.134", ""),
            &seed_host()
        ),
        Vec::<String>::new()
    );
}

#[test]
fn server_address_must_be_one_of_the_interfaces_addresses() {
    let f = Folder::new();
    assert_eq!(
        found(&f, &seed_lab("enp4s0f4u1u3", "192.168.64.135", ""), &seed_host()),
        vec!["DIR/lab.yaml:3:17: error: server_address: 192.168.64.135 is not an address of interface enp4s0f4u1u3 (its addresses: 192.168.64.134/27), so no node can reach pxelab there"]
    );
    assert_eq!(
        found(&f, &seed_lab("wlp2s0", "192.168.64.134", ""), &seed_host()),
        vec!["DIR/lab.yaml:3:17: error: server_address: 192.168.64.134 is not an address of interface wlp2s0 (it has no IPv4 address), so no node can reach pxelab there; give it the address (`ip addr add 192.168.64.134/27 dev wlp2s0`) or fix server_address"]
    );
    // Left out beside an interface, the address would be 127.0.0.1 in every answer.
    let text = seed_lab("enp4s0f4u1u3", "192.168.64.134", "")
        .replace("server_address: 192.168.64.134\n", "");
    assert_eq!(
        found(&f, &text, &seed_host()),
        vec!["DIR/lab.yaml:2:12: error: interface: server_address is not set, so nodes would be sent to 127.0.0.1; set server_address: to enp4s0f4u1u3's address on the lab (its addresses: 192.168.64.134/27)"]
    );
    // Without an interface the address must still be this machine's; loopback is.
    let text = seed_lab("x", "10.9.9.9", "").replace("interface: x\n", "");
    assert_eq!(
        found(&f, &text, &seed_host()),
        vec!["DIR/lab.yaml:2:17: error: server_address: 10.9.9.9 is not an address of this machine, so nothing can listen on it (interfaces here: enp4s0f4u1u3 192.168.64.134/27, lo 127.0.0.1/8, wlp2s0)"]
    );
    let text = seed_lab("x", "127.0.0.1", "").replace("interface: x\n", "");
    assert_eq!(found(&f, &text, &seed_host()), Vec::<String>::new());
}

#[test]
fn a_missing_tftp_root_is_an_error_naming_the_package() {
    let f = Folder::new();
    let text = seed_lab("enp4s0f4u1u3", "192.168.64.134", "")
        .replace("root: ipxe", "root: /nonexistent/ipxe");
    assert_eq!(
        found(&f, &text, &seed_host()),
        vec!["DIR/lab.yaml:5:14: error: tftp.root: /nonexistent/ipxe does not exist: every PXE boot fails at its TFTP step; install Debian's iPXE binaries (`apt install ipxe`) or point tftp.root at a folder holding undionly.kpxe and ipxe.efi"]
    );
    // TFTP off: nothing to serve, nothing to say.
    let off = text.replace(
        "tftp: {root: /nonexistent/ipxe}",
        "tftp: {enabled: false, root: /nonexistent/ipxe}",
    );
    assert_eq!(found(&f, &off, &seed_host()), Vec::<String>::new());
    // A folder without the binaries: a warning.
    let empty = text.replace("root: /nonexistent/ipxe", "root: assets");
    assert_eq!(
        found(&f, &empty, &seed_host()),
        vec!["DIR/lab.yaml:5:14: warning: tftp.root: no iPXE binaries (undionly.kpxe, ipxe.efi) in DIR/assets; install Debian's `ipxe` package (`apt install ipxe`) or point tftp.root at them"]
    );
}

#[test]
fn alpine_repo_of_another_release_than_the_boot_files_is_a_warning() {
    let f = Folder::new();
    // The seed's case: 3.21 netboot files in alpine-3.21/, edge repositories.
    let edge = seed_lab("enp4s0f4u1u3", "192.168.64.134", "").replace(
        "alpine/v3.21/main",
        "alpine/edge/main,https://dl-cdn.alpinelinux.org/alpine/edge/community",
    );
    assert_eq!(
        found(&f, &edge, &seed_host()),
        vec!["DIR/lab.yaml:11:12: warning: boot.cmdline: alpine_repo https://dl-cdn.alpinelinux.org/alpine/edge/main is release edge, but the boot files are v3.21 (the folder name alpine-3.21): every boot installs packages built for another release than its kernel and initramfs; use https://dl-cdn.alpinelinux.org/alpine/v3.21/main"]
    );
    // What `pxelab fetch` recorded wins over the folder's name.
    let state = f.path.with_file_name(".pxelab");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("fetched.json"),
        r#"{"source":"s","source_sha256":"0","version":"3.20.3","signed_by":"x","fetched_at":"t","assets_dir":"alpine-3.21","assets":[]}"#,
    )
    .unwrap();
    let v321 = seed_lab("enp4s0f4u1u3", "192.168.64.134", "");
    assert_eq!(
        found(&f, &v321, &seed_host()),
        vec!["DIR/lab.yaml:11:12: warning: boot.cmdline: alpine_repo https://dl-cdn.alpinelinux.org/alpine/v3.21/main is release v3.21, but the boot files are v3.20 (Alpine 3.20.3 by `pxelab fetch`): every boot installs packages built for another release than its kernel and initramfs; use https://dl-cdn.alpinelinux.org/alpine/v3.20/main"]
    );
    let v320 = v321.replace("alpine/v3.21/main", "alpine/v3.20/main");
    assert_eq!(found(&f, &v320, &seed_host()), Vec::<String>::new());
}
