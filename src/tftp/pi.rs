//! What a Raspberry Pi 4 / CM4 bootloader reads over TFTP, from where (`pi:` in
//! lab.yaml). Path resolution only: the transfer itself is the server's.
//!
//! The bootloader asks DHCP first (so its MAC is known: the client's address maps back
//! to it through the lease or the ARP table), then reads `<serial>/start4.elf`, and if
//! that exists every later file under the same `<serial>/` prefix (eight hex digits,
//! its serial number): `fixup4.dat`, `config.txt`, the device tree and overlays,
//! `cmdline.txt`, the kernel and initramfs that `config.txt` names. For each:
//!
//! | asked (after `<serial>/`)       | served from                                          |
//! |---------------------------------|------------------------------------------------------|
//! | `config.txt`, `cmdline.txt`     | rendered for the node ([`crate::render::pi`]), written under `.pxelab/pi/<mac>/` |
//! | the node's kernel or initramfs  | `boot.assets_dir`                                    |
//! | `*.dtb`, `overlays/…`           | the profile's `dtbs` folder in `assets_dir`, if set and there, else the firmware |
//! | anything else                   | `pi.firmware/<serial>/…`, else `pi.firmware/…`       |
//!
//! A Pi that is not in lab.yaml is held: DHCP does not answer it, and should it reach
//! TFTP anyway it is refused until it is adopted. Every name goes through
//! [`crate::net::path::resolve`] (no traversal, no dot-names, real path inside).

use std::path::{Path, PathBuf};

use crate::config::Lab;
use crate::mac::Mac;
use crate::net::path::{resolve, PathRefused};

/// Why a Pi's request is refused.
#[derive(Debug, thiserror::Error)]
pub enum PiRefused {
    /// The name, or no such file in any folder it may come from.
    #[error(transparent)]
    Path(#[from] PathRefused),
    /// A Pi that lab.yaml does not list.
    #[error("{0} is a Raspberry Pi not in the lab: held until it is adopted")]
    Held(Mac),
    /// The node's `cmdline.txt` could not be rendered.
    #[error("cannot render cmdline.txt for {mac}: {why}")]
    Render {
        /// The node.
        mac: Mac,
        /// The renderer's message.
        why: String,
    },
    /// A rendered file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// `1234abcd/start4.elf` → (`Some("1234abcd")`, `start4.elf`).
pub fn split_serial(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((s, rest))
            if s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()) && !rest.is_empty() =>
        {
            (Some(s), rest)
        }
        _ => (None, name),
    }
}

/// Where a Pi's request is served from: `Ok(None)` when it is not a Pi's request
/// (no `pi:`, or neither a Pi MAC nor a serial prefix): the iPXE root serves it.
pub fn locate(lab: &Lab, mac: Option<Mac>, name: &str) -> Result<Option<PathBuf>, PiRefused> {
    let Some(pi) = &lab.file.pi else {
        return Ok(None);
    };
    let (serial, rest) = split_serial(name);
    let is_pi = mac.is_some_and(|m| m.is_raspberry_pi());
    if !is_pi && serial.is_none() {
        return Ok(None);
    }
    let firmware = lab.resolve(&pi.firmware);
    let node = mac.and_then(|m| lab.node_by_mac(&m));
    if let (Some(m), None) = (mac.filter(|_| is_pi), node) {
        return Err(PiRefused::Held(m));
    }
    if let Some(node) = node {
        let rendered =
            match rest {
                "cmdline.txt" => Some(crate::render::pi::cmdline_txt(lab, node).map_err(|e| {
                    PiRefused::Render {
                        mac: node.mac,
                        why: e.to_string(),
                    }
                })?),
                "config.txt" => Some(crate::render::pi::config_txt(lab, node)),
                _ => None,
            };
        if let Some(text) = rendered {
            let path = lab
                .state_dir()
                .join("pi")
                .join(node.mac.hyphenated())
                .join(rest);
            write(&path, &text)?;
            return Ok(Some(path));
        }
        let files = crate::render::files::boot_files(lab, &crate::render::pi::as_pi(lab, node));
        if files.kernel == rest || files.initrds.iter().any(|i| i == rest) {
            return Ok(Some(resolve(&lab.assets_dir(), rest)?));
        }
        let tree = rest.ends_with(".dtb") || rest.starts_with("overlays/");
        if let Some(d) = files.dtbs.as_deref().filter(|_| tree) {
            if let Ok(p) = resolve(&lab.assets_dir().join(d), rest) {
                return Ok(Some(p));
            }
        }
    }
    if let Some(s) = serial {
        match resolve(&firmware, &format!("{s}/{rest}")) {
            Ok(p) => return Ok(Some(p)),
            Err(PathRefused::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(resolve(&firmware, rest)?))
}

fn write(path: &Path, text: &str) -> Result<(), PiRefused> {
    let failed = |source| PiRefused::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    crate::config::atomic::write_atomic(path, text.as_bytes()).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_prefix_is_eight_hex_digits() {
        assert_eq!(
            split_serial("1234abcd/start4.elf"),
            (Some("1234abcd"), "start4.elf")
        );
        assert_eq!(
            split_serial("1234abcd/overlays/x.dtbo"),
            (Some("1234abcd"), "overlays/x.dtbo")
        );
        assert_eq!(split_serial("start4.elf"), (None, "start4.elf"));
        assert_eq!(split_serial("overlays/x.dtbo"), (None, "overlays/x.dtbo"));
        assert_eq!(split_serial("1234abc/x"), (None, "1234abc/x"));
        assert_eq!(split_serial("1234abcd/"), (None, "1234abcd/"));
    }

    #[test]
    fn files_resolve_per_serial_then_shared_then_assets_and_rendered() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fw = d.join("fw");
        std::fs::create_dir_all(fw.join("1234abcd")).unwrap();
        std::fs::write(fw.join("start4.elf"), "shared").unwrap();
        std::fs::write(fw.join("fixup4.dat"), "fixup").unwrap();
        std::fs::write(fw.join("1234abcd/start4.elf"), "own").unwrap();
        std::fs::create_dir_all(d.join("assets")).unwrap();
        std::fs::write(d.join("assets/vmlinuz-rpi"), "kernel").unwrap();
        let text = "name: t\nserver_address: 10.0.0.1\npi: {firmware: fw}\nboot:\n  kernel: vmlinuz-lts\n  arch:\n    aarch64: {kernel: vmlinuz-rpi}\nnodes:\n  - {mac: dc:a6:32:01:02:03, hostname: pi-1, role: k3s-agent}\n";
        let lab = Lab::parse(&d.join("lab.yaml"), text).unwrap();
        let pi: Mac = "dc:a6:32:01:02:03".parse().unwrap();
        let read = |name: &str| {
            let p = locate(&lab, Some(pi), name).unwrap().unwrap();
            std::fs::read_to_string(p).unwrap()
        };
        assert_eq!(read("1234abcd/start4.elf"), "own");
        assert_eq!(read("1234abcd/fixup4.dat"), "fixup");
        assert_eq!(read("start4.elf"), "shared");
        assert_eq!(read("1234abcd/vmlinuz-rpi"), "kernel");
        assert!(read("1234abcd/cmdline.txt")
            .ends_with("ds=nocloud;s=http://10.0.0.1:8080/nocloud/dc:a6:32:01:02:03/\n"));
        assert!(read("1234abcd/config.txt").contains("kernel=vmlinuz-rpi\n"));
        // Not the Pi's: the iPXE root. An unknown Pi: held. Traversal: refused.
        let pc: Mac = "52:54:00:00:00:01".parse().unwrap();
        assert!(locate(&lab, Some(pc), "undionly.kpxe").unwrap().is_none());
        let stranger: Mac = "dc:a6:32:09:09:09".parse().unwrap();
        assert!(matches!(
            locate(&lab, Some(stranger), "1234abcd/start4.elf"),
            Err(PiRefused::Held(_))
        ));
        assert!(matches!(
            locate(&lab, Some(pi), "1234abcd/../lab.yaml"),
            Err(PiRefused::Path(PathRefused::Traversal(_)))
        ));
        assert!(matches!(
            locate(&lab, Some(pi), "1234abcd/missing.bin"),
            Err(PiRefused::Path(PathRefused::NotFound(_)))
        ));
    }
}
