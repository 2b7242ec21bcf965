//! Which kernel, initramfs, modloop and device trees a node boots: one rule for the iPXE
//! script, the command line's `modloop_url`, a Pi's `config.txt`, the servers' list of
//! files they may serve and `check`.
//!
//! A node's architecture is its own `arch:`, else its role's, else what its firmware
//! said (the engine fills `arch` in from DHCP option 93, the Pi bootloader or iPXE's
//! `${buildarch}` before rendering), else x86_64. Its files are its own overrides
//! (`kernel`, `initrds`, `modloop`), else the `boot.arch.<arch>` profile, else `boot:`
//! (the x86_64 profile, and what a lab without profiles boots everywhere, as before).

use crate::config::{Arch, Lab, NodeEntry};

/// The boot files of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// The architecture they are for.
    pub arch: Arch,
    /// Kernel file name in `boot.assets_dir`.
    pub kernel: String,
    /// Initramfs file names, in load order.
    pub initrds: Vec<String>,
    /// Modloop file name, if any.
    pub modloop: Option<String>,
    /// Device-tree folder in `boot.assets_dir`, if any.
    pub dtbs: Option<String>,
}

/// The architecture lab.yaml gives `node` (its own, else its role's), if it gives one.
pub fn configured_arch(lab: &Lab, node: &NodeEntry) -> Option<Arch> {
    node.arch
        .or_else(|| lab.file.roles.get(&node.role).and_then(|r| r.arch))
}

/// The architecture `node` boots as: [`configured_arch`], else x86_64.
pub fn node_arch(lab: &Lab, node: &NodeEntry) -> Arch {
    configured_arch(lab, node).unwrap_or(Arch::DEFAULT)
}

/// The profile of `arch`: `boot.arch.<arch>`, else `boot:`'s own files.
pub fn profile(lab: &Lab, arch: Arch) -> BootFiles {
    let b = &lab.file.boot;
    match b.arch.get(&arch) {
        Some(p) => BootFiles {
            arch,
            kernel: p.kernel.clone(),
            initrds: p.initrds.clone(),
            modloop: p.modloop.clone(),
            dtbs: p.dtbs.clone(),
        },
        None => BootFiles {
            arch,
            kernel: b.kernel.clone(),
            initrds: b.initrds.clone(),
            modloop: b.modloop.clone(),
            dtbs: None,
        },
    }
}

/// What `node` boots: its overrides over its architecture's profile.
pub fn boot_files(lab: &Lab, node: &NodeEntry) -> BootFiles {
    let mut f = profile(lab, node_arch(lab, node));
    if let Some(k) = &node.kernel {
        f.kernel = k.clone();
    }
    if let Some(i) = &node.initrds {
        f.initrds = i.clone();
    }
    if let Some(m) = &node.modloop {
        f.modloop = Some(m.clone());
    }
    f
}

/// Whether boot files depend on the architecture at all (`boot.arch` has a profile).
pub fn has_profiles(lab: &Lab) -> bool {
    !lab.file.boot.arch.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "name: t\nboot:\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  modloop: modloop-lts\n  arch:\n    aarch64: {kernel: vmlinuz-arm, initrds: [initramfs-arm], modloop: modloop-arm, dtbs: dtbs-lts}\nroles:\n  blade: {arch: aarch64}\nnodes:\n  - {mac: 52:54:00:00:00:01, hostname: pc, role: k3s-agent}\n  - {mac: 52:54:00:00:00:02, hostname: arm, role: k3s-agent, arch: aarch64}\n  - {mac: 52:54:00:00:00:03, hostname: blade, role: blade, modloop: modloop-own}\n";

    #[test]
    fn node_then_role_then_default_and_overrides_over_profiles() {
        let lab = Lab::parse(std::path::Path::new("/tmp/lab.yaml"), LAB).unwrap();
        let n = &lab.file.nodes;
        let pc = boot_files(&lab, &n[0]);
        assert_eq!(
            (pc.arch, pc.kernel.as_str(), pc.modloop.as_deref()),
            (Arch::X86_64, "vmlinuz-lts", Some("modloop-lts"))
        );
        let arm = boot_files(&lab, &n[1]);
        assert_eq!(arm.arch, Arch::Aarch64);
        assert_eq!(arm.initrds, vec!["initramfs-arm".to_string()]);
        assert_eq!(arm.dtbs.as_deref(), Some("dtbs-lts"));
        let blade = boot_files(&lab, &n[2]);
        assert_eq!(blade.arch, Arch::Aarch64, "the role's arch");
        assert_eq!(blade.kernel, "vmlinuz-arm");
        assert_eq!(
            blade.modloop.as_deref(),
            Some("modloop-own"),
            "own override"
        );
        // Observed: the engine fills `arch` in for a node lab.yaml leaves open.
        let mut seen = n[0].clone();
        seen.arch = Some(Arch::Aarch64);
        assert_eq!(boot_files(&lab, &seen).kernel, "vmlinuz-arm");
    }
}
