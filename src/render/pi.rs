//! What a Raspberry Pi's firmware reads over TFTP besides its firmware tree: its
//! `config.txt` (which kernel and initramfs, 64-bit mode) and `cmdline.txt` (the
//! kernel command line, the same one an iPXE node gets: `modloop=`, `alpine_repo=`,
//! `ds=nocloud;s=…` last).
//!
//! A Pi on its EEPROM bootloader is an aarch64 machine: unless lab.yaml says otherwise
//! its files are those of `boot.arch.aarch64` (see [`super::files`]).

use crate::config::{Arch, Lab, NodeEntry};

use super::files::{boot_files, configured_arch};
use super::RenderError;

/// `node` as the Pi bootloader boots it: aarch64 unless lab.yaml gives an arch.
pub fn as_pi(lab: &Lab, node: &NodeEntry) -> NodeEntry {
    let mut n = node.clone();
    if configured_arch(lab, &n).is_none() {
        n.arch = Some(Arch::Aarch64);
    }
    n
}

/// The Pi's `cmdline.txt`: one line, the node's kernel command line.
pub fn cmdline_txt(lab: &Lab, node: &NodeEntry) -> Result<String, RenderError> {
    Ok(super::kernel_cmdline(lab, &as_pi(lab, node))? + "\n")
}

/// The Pi's `config.txt`: 64-bit, the node's kernel and initramfs (the firmware loads
/// them from the same TFTP folder), `cmdline.txt`, then `pi.config_extra`.
pub fn config_txt(lab: &Lab, node: &NodeEntry) -> String {
    let n = as_pi(lab, node);
    let f = boot_files(lab, &n);
    let mut s = format!(
        "# pxelab: {} ({}), lab {}\n[all]\narm_64bit={}\nkernel={}\n",
        node.hostname,
        node.mac,
        lab.file.name,
        u8::from(f.arch == Arch::Aarch64),
        f.kernel
    );
    if !f.initrds.is_empty() {
        s.push_str(&format!("initramfs {} followkernel\n", f.initrds.join(",")));
    }
    s.push_str("cmdline=cmdline.txt\n");
    if let Some(x) = lab.file.pi.as_ref().and_then(|p| p.config_extra.as_deref()) {
        s.push_str(x.trim_end());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pi_boots_the_aarch64_profile_with_its_own_command_line() {
        let text = "name: t\nserver_address: 10.0.0.1\npi: {firmware: fw, config_extra: \"dtoverlay=disable-bt\"}\nboot:\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  modloop: modloop-lts\n  cmdline: \"modloop={{ modloop_url }} alpine_repo=http://dl-cdn.alpinelinux.org/alpine/v3.21/main\"\n  arch:\n    aarch64: {kernel: vmlinuz-rpi, initrds: [initramfs-rpi], modloop: modloop-rpi}\nnodes:\n  - {mac: dc:a6:32:01:02:03, hostname: pi-1, role: k3s-agent}\n";
        let lab = Lab::parse(std::path::Path::new("/tmp/lab.yaml"), text).unwrap();
        let n = &lab.file.nodes[0];
        let c = config_txt(&lab, n);
        assert!(c.contains("arm_64bit=1\nkernel=vmlinuz-rpi\ninitramfs initramfs-rpi followkernel\ncmdline=cmdline.txt\ndtoverlay=disable-bt\n"), "{c}");
        let line = cmdline_txt(&lab, n).unwrap();
        assert_eq!(
            line,
            "modloop=http://10.0.0.1:8080/assets/modloop-rpi alpine_repo=http://dl-cdn.alpinelinux.org/alpine/v3.21/main ds=nocloud;s=http://10.0.0.1:8080/nocloud/dc:a6:32:01:02:03/\n"
        );
    }
}
