//! Checks of what is served as files: boot asset names fit for a URL, assets and iPXE
//! binaries on disk, and served folders that do not expose lab.yaml or `.pxelab/`.

use super::{alpine_release, valid_asset_name, Validator, ALPINE_NETBOOT_URL};
use crate::config::spans::Seg;
use crate::config::DhcpMode;

impl Validator<'_> {
    pub(super) fn boot(&mut self) {
        let lab = self.lab;
        let b = &lab.file.boot;
        let mut names: Vec<(Vec<Seg<'_>>, &str)> = vec![(
            vec![Seg::Key("boot"), Seg::Key("kernel")],
            b.kernel.as_str(),
        )];
        for (i, n) in b.initrds.iter().enumerate() {
            names.push((
                vec![Seg::Key("boot"), Seg::Key("initrds"), Seg::Index(i)],
                n,
            ));
        }
        if let Some(m) = &b.modloop {
            names.push((vec![Seg::Key("boot"), Seg::Key("modloop")], m));
        }
        for (i, n) in b.extra.iter().enumerate() {
            names.push((vec![Seg::Key("boot"), Seg::Key("extra"), Seg::Index(i)], n));
        }
        for (i, node) in lab.file.nodes.iter().enumerate() {
            if let Some(k) = &node.kernel {
                names.push((
                    vec![Seg::Key("nodes"), Seg::Index(i), Seg::Key("kernel")],
                    k,
                ));
            }
            for (j, n) in node.initrds.iter().flatten().enumerate() {
                names.push((
                    vec![
                        Seg::Key("nodes"),
                        Seg::Index(i),
                        Seg::Key("initrds"),
                        Seg::Index(j),
                    ],
                    n,
                ));
            }
        }
        for (path, name) in names {
            if !valid_asset_name(name) {
                self.error(
                    &path,
                    format!(
                        "`{name}` is not a plain file name inside boot.assets_dir (letters, digits, '.', '-', '_', '+')"
                    ),
                );
            }
        }
    }

    pub(super) fn assets(&mut self) {
        let lab = self.lab;
        let dir = lab.assets_dir();
        let url = ALPINE_NETBOOT_URL.replace("{ver}", &alpine_release(&lab.file.boot.cmdline));
        let b = &lab.file.boot;
        let mut want: Vec<(Vec<Seg<'_>>, &str, bool)> = vec![(
            vec![Seg::Key("boot"), Seg::Key("kernel")],
            b.kernel.as_str(),
            true,
        )];
        for (i, n) in b.initrds.iter().enumerate() {
            want.push((
                vec![Seg::Key("boot"), Seg::Key("initrds"), Seg::Index(i)],
                n,
                true,
            ));
        }
        if let Some(m) = &b.modloop {
            want.push((vec![Seg::Key("boot"), Seg::Key("modloop")], m, true));
        }
        for (i, n) in b.extra.iter().enumerate() {
            want.push((
                vec![Seg::Key("boot"), Seg::Key("extra"), Seg::Index(i)],
                n,
                false,
            ));
        }
        for (path, name, alpine) in want {
            if !valid_asset_name(name) {
                continue;
            }
            let file = dir.join(name);
            if file.is_file() {
                continue;
            }
            let msg = if alpine {
                format!(
                    "boot asset {} is not on disk yet; download it from {url}{name}",
                    file.display()
                )
            } else {
                format!("boot asset {} is not on disk yet", file.display())
            };
            self.warn(&path, msg);
        }
        if lab.file.tftp.enabled && lab.file.dhcp.mode != DhcpMode::Off {
            let root = lab.resolve(&lab.file.tftp.root);
            if !root.join("undionly.kpxe").is_file() && !root.join("ipxe.efi").is_file() {
                self.warn(
                    &[Seg::Key("tftp"), Seg::Key("root")],
                    format!(
                        "no iPXE binaries (undionly.kpxe, ipxe.efi) in {}; install Debian's `ipxe` package or point tftp.root at them",
                        root.display()
                    ),
                );
            }
        }
    }

    /// `tftp.root` (served over TFTP and `/ipxe/`, also with TFTP off) and
    /// `boot.assets_dir` must not contain lab.yaml's folder or `.pxelab/`, nor lie
    /// inside `.pxelab/`: lab.yaml may hold the k3s token and `.pxelab/` holds the lab
    /// secret and the operator key. The servers refuse dot-names and files outside
    /// their folder anyway; this makes the mistake an error before anything runs.
    /// Folders that do not exist yet are left to the other checks.
    pub(super) fn served_folders(&mut self) {
        let lab = self.lab;
        let dir = lab.dir();
        let dir = if dir.as_os_str().is_empty() {
            std::path::PathBuf::from(".")
        } else {
            dir
        };
        let Ok(dir) = std::fs::canonicalize(&dir) else {
            return;
        };
        let state = dir.join(".pxelab");
        let folders = [
            (
                [Seg::Key("tftp"), Seg::Key("root")],
                lab.resolve(&lab.file.tftp.root),
            ),
            ([Seg::Key("boot"), Seg::Key("assets_dir")], lab.assets_dir()),
        ];
        for (path, folder) in folders {
            let Ok(real) = std::fs::canonicalize(&folder) else {
                continue;
            };
            let what = if real.starts_with(&state) {
                "lies inside .pxelab/"
            } else if dir.starts_with(&real) {
                "contains lab.yaml's folder and .pxelab/"
            } else {
                continue;
            };
            self.error(
                &path,
                format!(
                    "{} {what}: every client could fetch lab.yaml and the lab's secrets (k3s token, lab secret, operator key); give it a folder of its own",
                    real.display()
                ),
            );
        }
    }
}
