//! The checks of what breaks a boot (issue 14): kernel, initramfs and modloop of one
//! flavour, `apkovl=` beside tiny-cloud's `ds=`, user-data tiny-cloud would ignore,
//! `server_address` outside `dhcp.subnet`, `lease_time: infinite`, `{hash}`, and the
//! size limit. Each with its exact message.

use std::path::{Path, PathBuf};

use pxelab::config::{check_text, Severity};

/// A lab in a folder of its own, with assets the test writes into `assets/`.
pub struct Folder {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Folder {
    pub fn new() -> Folder {
        let dir = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(top.join("assets")).unwrap();
        Folder {
            _dir: dir,
            path: top.join("lab.yaml"),
        }
    }

    /// With LAB's kernel, initramfs and modloop in place (no "not on disk" warnings).
    pub fn with_boot_files() -> Folder {
        let f = Folder::new();
        for n in ["vmlinuz-lts", "initramfs-lts", "modloop-lts"] {
            f.asset(n, b"x");
        }
        f
    }

    pub fn asset(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path.with_file_name("assets").join(name), bytes).unwrap();
    }

    /// Every problem of `text` here with this severity, as `check` prints it, with the
    /// folder written `DIR`.
    pub fn found(&self, text: &str, severity: Severity) -> Vec<String> {
        let dir = self.path.parent().unwrap().display().to_string();
        check_text(&self.path, text)
            .problems
            .iter()
            .filter(|p| p.severity == severity)
            .map(|p| p.to_string().replace(&dir, "DIR"))
            .collect()
    }
}

/// A bzImage-shaped kernel whose setup header points at `version`.
fn bzimage(version: &str) -> Vec<u8> {
    let mut b = vec![0u8; 0x4000];
    b[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x20e..0x210].copy_from_slice(&(0x3000u16 - 0x200).to_le_bytes());
    let s = format!("{version} (buildozer@build-3-21-x86_64) #1-Alpine SMP\0");
    b[0x3000..0x3000 + s.len()].copy_from_slice(s.as_bytes());
    b
}

const LAB: &str = "\
name: t
server_address: 10.0.0.1
dhcp: {mode: proxy, subnet: 10.0.0.0/24}
boot:
  kernel: vmlinuz-lts
  initrds: [initramfs-lts]
  modloop: modloop-lts
  cmdline: ip=dhcp modloop={{ modloop_url }}
nodes:
  - {mac: '52:54:00:00:00:01', hostname: s0, role: k3s-server}
  - {mac: '52:54:00:00:00:02', hostname: a1, role: k3s-agent}
";

const WHY: &str = "Alpine boots only a kernel, initramfs and modloop of one flavour";

#[test]
fn modloop_of_another_flavour_than_the_kernel_is_an_error_naming_the_flavours_found() {
    let f = Folder::new();
    for n in [
        "vmlinuz-lts",
        "initramfs-lts",
        "modloop-lts",
        "modloop-virt",
    ] {
        f.asset(n, b"x");
    }
    assert_eq!(f.found(LAB, Severity::Error), Vec::<String>::new());
    // The seed's case: modloop-virt beside vmlinuz-lts.
    let text = LAB.replace("modloop: modloop-lts", "modloop: modloop-virt");
    assert_eq!(
        f.found(&text, Severity::Error),
        vec![format!("DIR/lab.yaml:7:12: error: boot.modloop: modloop-virt is flavour `virt` but boot.kernel vmlinuz-lts is `lts`: {WHY} (flavours in DIR/assets: lts (vmlinuz-lts, initramfs-lts, modloop-lts); virt (modloop-virt))")]
    );
    // An initramfs of another flavour too; names without a flavour are left alone.
    let text = LAB.replace(
        "initrds: [initramfs-lts]",
        "initrds: [intel-ucode.img, initramfs-virt]",
    );
    assert_eq!(
        f.found(&text, Severity::Error),
        vec![format!("DIR/lab.yaml:6:30: error: boot.initrds[1]: initramfs-virt is flavour `virt` but boot.kernel vmlinuz-lts is `lts`: {WHY} (flavours in DIR/assets: lts (vmlinuz-lts, initramfs-lts, modloop-lts); virt (modloop-virt))")]
    );
}

#[test]
fn the_kernels_version_string_wins_over_its_name() {
    let f = Folder::new();
    f.asset("vmlinuz-lts", &bzimage("6.12.13-0-virt"));
    let text = LAB.replace("modloop: modloop-lts", "modloop: modloop-virt");
    assert_eq!(
        f.found(&text, Severity::Error),
        vec![format!("DIR/lab.yaml:6:13: error: boot.initrds[0]: initramfs-lts is flavour `lts` but boot.kernel vmlinuz-lts is `virt` (its version string says 6.12.13-0-virt, whatever its name): {WHY} (flavours in DIR/assets: lts (vmlinuz-lts))")]
    );
    // A real lts kernel with its own files: nothing to say.
    f.asset("vmlinuz-lts", &bzimage("6.12.13-0-lts"));
    assert_eq!(f.found(LAB, Severity::Error), Vec::<String>::new());
}

#[test]
fn a_node_with_its_own_kernel_needs_its_own_modloop_and_initramfs() {
    let f = Folder::new();
    let node = "  - {mac: '52:54:00:00:00:02', hostname: a1, role: k3s-agent}";
    let text = LAB.replace(
        node,
        "  - {mac: '52:54:00:00:00:02', hostname: a1, role: k3s-agent, kernel: vmlinuz-virt}",
    );
    assert_eq!(
        f.found(&text, Severity::Error),
        vec![
            format!("DIR/lab.yaml:11:71: error: nodes[1].kernel: vmlinuz-virt is flavour `virt` but boot.initrds[0] initramfs-lts is `lts`: {WHY} (give nodes[1] its own `initrds` of flavour `virt`; no flavoured files in DIR/assets)"),
            format!("DIR/lab.yaml:11:71: error: nodes[1].kernel: vmlinuz-virt is flavour `virt` but boot.modloop modloop-lts is `lts`: {WHY} (give nodes[1] its own `modloop` of flavour `virt`; no flavoured files in DIR/assets)"),
        ]
    );
    // Its own initramfs and modloop (the new per-node key) fix it.
    let text = LAB.replace(
        node,
        "  - {mac: '52:54:00:00:00:02', hostname: a1, role: k3s-agent, kernel: vmlinuz-virt, initrds: [initramfs-virt], modloop: modloop-virt}",
    );
    assert_eq!(f.found(&text, Severity::Error), Vec::<String>::new());
    // A kernel of one's own whose name is no Alpine flavour (and no bzImage header to
    // read) is left alone, as tests/http_up.rs's `vmlinuz-special`.
    let text = LAB.replace(
        node,
        "  - {mac: '52:54:00:00:00:02', hostname: a1, role: k3s-agent, kernel: vmlinuz-special}",
    );
    assert_eq!(f.found(&text, Severity::Error), Vec::<String>::new());
}

#[test]
fn apkovl_beside_tiny_cloud_is_a_warning_or_when_its_overlay_lacks_the_marker_an_error() {
    let f = Folder::with_boot_files();
    // The seed's command line: an overlay from another server.
    let remote = LAB.replace(
        "cmdline: ip=dhcp",
        "cmdline: ip=dhcp apkovl=http://192.168.64.134:8080/tc-is-mode-doas.apkovl.tar.gz",
    );
    assert_eq!(f.found(&remote, Severity::Error), Vec::<String>::new());
    assert_eq!(
        f.found(&remote, Severity::Warning),
        vec!["DIR/lab.yaml:8:12: warning: boot.cmdline: apkovl=http://192.168.64.134:8080/tc-is-mode-doas.apkovl.tar.gz beside the ds=nocloud pxelab appends: Alpine's init starts tiny-cloud only if that overlay holds etc/.default_boot_services; without it no user-data is ever fetched. Remove apkovl= (user-data can write the same files), or make sure the overlay has that file"]
    );
    // The lab's own overlay is opened: without the marker tiny-cloud never runs.
    let own = LAB
        .replace(
            "cmdline: ip=dhcp",
            "cmdline: ip=dhcp apkovl={{ assets_url }}/ovl.apkovl.tar.gz",
        )
        .replace(
            "  modloop: modloop-lts\n",
            "  modloop: modloop-lts\n  extra: [ovl.apkovl.tar.gz]\n",
        );
    f.asset("ovl.apkovl.tar.gz", &overlay(&["etc/hostname"]));
    assert_eq!(
        f.found(&own, Severity::Error),
        vec!["DIR/lab.yaml:9:12: error: boot.cmdline: apkovl=http://10.0.0.1:8080/assets/ovl.apkovl.tar.gz: DIR/assets/ovl.apkovl.tar.gz has no etc/.default_boot_services, so Alpine's init never starts tiny-cloud and the ds=nocloud pxelab appends is ignored (no user, keys or k3s); remove apkovl= or add etc/.default_boot_services to the overlay"]
    );
    f.asset(
        "ovl.apkovl.tar.gz",
        &overlay(&["etc/hostname", "./etc/.default_boot_services"]),
    );
    assert_eq!(f.found(&own, Severity::Error), Vec::<String>::new());
    assert_eq!(f.found(&own, Severity::Warning), Vec::<String>::new());
}

/// A gzip'd tar holding empty files of these names.
fn overlay(names: &[&str]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for n in names {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, n, std::io::empty()).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap()
}

#[test]
fn user_data_tiny_cloud_would_ignore_is_an_error() {
    let f = Folder::new();
    let with = |ud: &str| {
        LAB.replace(
            "nodes:",
            &format!("roles:\n  plain:\n    user_data: {ud:?}\nnodes:\n  - {{mac: '52:54:00:00:00:03', hostname: p, role: plain}}"),
        )
    };
    for good in [
        "#cloud-config\nusers: []\n",
        "#alpine-config\n",
        "#!/bin/sh\necho hi\n",
    ] {
        assert_eq!(
            f.found(&with(good), Severity::Error),
            Vec::<String>::new(),
            "{good}"
        );
    }
    let tail = "tiny-cloud ignores user-data that does not start with #cloud-config, #alpine-config or #! (a script), so the node is never configured; make `#cloud-config` its first line";
    assert_eq!(
        f.found(&with("users:\n  - name: lab\n"), Severity::Error),
        vec![format!(
            "DIR/lab.yaml:11:16: error: roles.plain.user_data: its first line is `users:`: {tail}"
        )]
    );
    assert_eq!(
        f.found(&with("\n#cloud-config\n"), Severity::Error),
        vec![format!(
            "DIR/lab.yaml:11:16: error: roles.plain.user_data: its first line is empty: {tail}"
        )]
    );
}

#[test]
fn server_address_outside_the_subnet_is_an_error_in_server_mode_without_a_router() {
    let f = Folder::with_boot_files();
    let proxy = LAB.replace("server_address: 10.0.0.1", "server_address: 10.0.1.1");
    assert_eq!(f.found(&proxy, Severity::Error), Vec::<String>::new());
    assert_eq!(
        f.found(&proxy, Severity::Warning),
        vec!["DIR/lab.yaml:2:17: warning: server_address: 10.0.1.1 is outside dhcp.subnet 10.0.0.0/24: nodes of 10.0.0.0/24 reach it only through a router (a DHCP relay's network); is one of them a typo?"]
    );
    let server = proxy.replace(
        "dhcp: {mode: proxy, subnet: 10.0.0.0/24}",
        "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200]}",
    );
    assert_eq!(
        f.found(&server, Severity::Error),
        vec!["DIR/lab.yaml:2:17: error: server_address: 10.0.1.1 is outside dhcp.subnet 10.0.0.0/24: in server mode nodes get addresses of 10.0.0.0/24 and no router, and are told to fetch everything from 10.0.1.1, which they cannot reach; put server_address inside the subnet (one of the interface's addresses there), or set dhcp.router for a routed lab"]
    );
    // Through a relay (tests/dhcp_relay.rs): the subnet's router reaches pxelab.
    let relayed = server.replace(
        "range: [10.0.0.100, 10.0.0.200]}",
        "range: [10.0.0.100, 10.0.0.200], router: 10.0.0.254}",
    );
    assert_eq!(f.found(&relayed, Severity::Error), Vec::<String>::new());
    assert_eq!(f.found(&relayed, Severity::Warning).len(), 1);
}

#[test]
fn lease_time_infinite_is_accepted_and_planned_as_rfc_2131_infinity() {
    // The seed's `default-lease-time -1` (ISC dhcpd), as dnsmasq spells it.
    let text = LAB.replace(
        "dhcp: {mode: proxy, subnet: 10.0.0.0/24}",
        "dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.200], lease_time: infinite}",
    );
    let lab = pxelab::config::load_validated(Path::new("/srv/lab.yaml"), &text).unwrap();
    match &lab.plan().unwrap().dhcp {
        pxelab::config::plan::DhcpPlan::Server(s) => assert_eq!(s.lease_secs, 0xffff_ffff),
        other => panic!("{other:?}"),
    }
    // Proxy mode ignores it (the LAN's server owns leases), and takes the word as well.
    let proxy = LAB.replace(
        "subnet: 10.0.0.0/24}",
        "subnet: 10.0.0.0/24, lease_time: infinite}",
    );
    assert!(pxelab::config::load_validated(Path::new("/srv/lab.yaml"), &proxy).is_ok());
}

#[test]
fn hash_in_a_hostname_pattern_is_six_hex_digits() {
    // The seed's `sha1sum … | head -c 6`: six, so a few hundred boards do not collide.
    let text = format!("{LAB}adopt: {{hostname_pattern: 'worker-{{hash}}'}}\n");
    let lab = pxelab::config::load_validated(Path::new("/srv/lab.yaml"), &text).unwrap();
    let h =
        pxelab::config::suggest_hostname(&lab, "a0:1a:2c:00:00:07".parse().unwrap(), "k3s-agent");
    let hex = h.strip_prefix("worker-").unwrap();
    assert_eq!(hex.len(), 6, "{h}");
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{h}");
    let names: std::collections::HashSet<String> = (0u8..=255)
        .flat_map(|a| (0u8..2).map(move |b| format!("a0:1a:2c:00:{b:02x}:{a:02x}")))
        .map(|m| pxelab::config::suggest_hostname(&lab, m.parse().unwrap(), "k3s-agent"))
        .collect();
    assert_eq!(names.len(), 512, "512 boards, 512 names");
}

#[test]
fn a_lab_yaml_over_the_size_limit_is_refused_before_parsing() {
    let f = Folder::new();
    let mut big = LAB.to_string();
    while big.len() <= 64 << 10 {
        big.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&f.path, &big).unwrap();
    let e = pxelab::config::limit::read_text_limited(&f.path, 64 << 10)
        .unwrap_err()
        .to_string();
    let p = f.path.display();
    assert_eq!(
        e,
        format!("{p}: {} bytes (64.0 KiB), over the limit of 65536 bytes (64.0 KiB): refused before parsing. Split the machines into several labs (one folder and lab.yaml each), or raise the limit with PXELAB_MAX_LAB_BYTES=131072", big.len())
    );
    assert!(pxelab::config::limit::read_text_limited(&f.path, 128 << 10).is_ok());
}
