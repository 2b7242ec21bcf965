//! Files on this machine the boots need: the iPXE binaries in `tftp.root`, and boot
//! files of the Alpine release `alpine_repo` installs from.

use crate::config::report::Reporter;
use crate::config::spans::Seg;
use crate::config::validate::alpine_release;
use crate::config::{DhcpMode, Lab};

/// `tftp.root` when TFTP is on. A folder that does not exist is an error: every BIOS
/// machine's first step is a TFTP read of `undionly.kpxe` from it, so no PXE boot can
/// get past it (Debian's default `/usr/lib/ipxe` exists only with the `ipxe` package).
/// A folder without either binary is a warning (a lab may serve other names through
/// `dhcp.arm64_binary`, or only UEFI HTTP boot).
pub(super) fn tftp_root(lab: &Lab, r: &mut Reporter<'_>) {
    let t = &lab.file.tftp;
    if !t.enabled {
        return;
    }
    let root = lab.resolve(&t.root);
    let at = [Seg::Key("tftp"), Seg::Key("root")];
    if !root.is_dir() {
        r.error(
            &at,
            format!(
                "{} does not exist: every PXE boot fails at its TFTP step; install Debian's iPXE binaries (`apt install ipxe`) or point tftp.root at a folder holding undionly.kpxe and ipxe.efi",
                root.display()
            ),
        );
        return;
    }
    let serves = lab.file.dhcp.mode != DhcpMode::Off;
    if serves && !root.join("undionly.kpxe").is_file() && !root.join("ipxe.efi").is_file() {
        r.warn(
            &at,
            format!(
                "no iPXE binaries (undionly.kpxe, ipxe.efi) in {}; install Debian's `ipxe` package (`apt install ipxe`) or point tftp.root at them",
                root.display()
            ),
        );
    }
}

/// `3.21.4` or `v3.21` or a folder name like `alpine-3.21` → `v3.21`; `edge` stays.
fn release_of(text: &str) -> Option<String> {
    if text.contains("edge") {
        return Some("edge".to_string());
    }
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let mut parts = text[start..].split(|c: char| !c.is_ascii_digit());
    let (major, minor) = (parts.next()?, parts.next()?);
    let dot = text[start + major.len()..].starts_with('.');
    (dot && !minor.is_empty()).then(|| format!("v{major}.{minor}"))
}

/// Where the boot files' release is known from: `pxelab fetch`'s record for this
/// folder, else the folder's name (`alpine-v3.21`, as the shipped lab and the seed name
/// it).
fn assets_release(lab: &Lab) -> Option<(String, String)> {
    if let Ok(Some(m)) = crate::fetch::manifest::read(&lab.state_dir()) {
        if lab.resolve(&m.assets_dir) == lab.assets_dir() {
            let rel = release_of(&m.version)?;
            return Some((rel, format!("Alpine {} by `pxelab fetch`", m.version)));
        }
    }
    let dir = lab.assets_dir();
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let rel = release_of(&name)?;
    Some((rel, format!("the folder name {name}")))
}

/// `alpine_repo=` of another release than the boot files. A warning, not an error:
/// such a node often boots (the seed ran v3.21 files with `edge` repositories), but
/// the packages it installs at every boot are built for another release's libraries
/// and kernel, and it breaks the day they stop fitting.
pub(super) fn release(lab: &Lab, r: &mut Reporter<'_>) {
    let cmdline = &lab.file.boot.cmdline;
    let Some((assets, from)) = assets_release(lab) else {
        return;
    };
    let repos = cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("alpine_repo="))
        .flat_map(|v| v.split(','));
    for url in repos {
        // `latest-stable` also stands for "no /alpine/<release>/ in it".
        let repo = alpine_release(url);
        if repo == assets || repo == "latest-stable" {
            continue;
        }
        let fixed = url.replacen(
            &format!("/alpine/{repo}/"),
            &format!("/alpine/{assets}/"),
            1,
        );
        r.warn(
            &[Seg::Key("boot"), Seg::Key("cmdline")],
            format!(
                "alpine_repo {url} is release {repo}, but the boot files are {assets} ({from}): every boot installs packages built for another release than its kernel and initramfs; use {fixed}"
            ),
        );
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_read_from_versions_and_folder_names() {
        for (t, want) in [
            ("3.21.4", Some("v3.21")),
            ("v3.21", Some("v3.21")),
            ("alpine-3.20", Some("v3.20")),
            ("alpine-v3.21", Some("v3.21")),
            ("alpine-edge", Some("edge")),
            ("assets", None),
            ("boot-3", None),
        ] {
            assert_eq!(release_of(t).as_deref(), want, "{t}");
        }
    }
}
