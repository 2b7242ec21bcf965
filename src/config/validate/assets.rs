//! Checks of what is served as files: boot asset names fit for a URL, assets and iPXE
//! binaries on disk, and served folders that do not expose lab.yaml or `.pxelab/`.

use super::{alpine_release, valid_asset_name, Validator, ALPINE_NETBOOT_URL};
use crate::config::spans::Seg;

/// The files of every `boot.arch` profile, with where lab.yaml names them.
fn profile_files(lab: &crate::config::Lab) -> Vec<(Vec<Seg<'_>>, &str)> {
    let mut v = Vec::new();
    for (arch, p) in &lab.file.boot.arch {
        let at = |k| {
            vec![
                Seg::Key("boot"),
                Seg::Key("arch"),
                Seg::Key(arch.as_str()),
                k,
            ]
        };
        v.push((at(Seg::Key("kernel")), p.kernel.as_str()));
        for (i, n) in p.initrds.iter().enumerate() {
            let mut path = at(Seg::Key("initrds"));
            path.push(Seg::Index(i));
            v.push((path, n.as_str()));
        }
        if let Some(m) = &p.modloop {
            v.push((at(Seg::Key("modloop")), m.as_str()));
        }
    }
    v
}

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
        names.extend(profile_files(lab));
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
            if let Some(m) = &node.modloop {
                names.push((
                    vec![Seg::Key("nodes"), Seg::Index(i), Seg::Key("modloop")],
                    m,
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
        want.extend(profile_files(lab).into_iter().map(|(p, n)| (p, n, false)));
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
    }

    /// `tftp.root` (served over TFTP and `/ipxe/`, also with TFTP off), `pi.firmware`
    /// and `boot.assets_dir` must not contain lab.yaml's folder or `.pxelab/`, nor lie
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
        let mut folders = vec![
            (
                [Seg::Key("tftp"), Seg::Key("root")],
                lab.resolve(&lab.file.tftp.root),
            ),
            ([Seg::Key("boot"), Seg::Key("assets_dir")], lab.assets_dir()),
        ];
        if let Some(pi) = &lab.file.pi {
            folders.push((
                [Seg::Key("pi"), Seg::Key("firmware")],
                lab.resolve(&pi.firmware),
            ));
            let start = lab.resolve(&pi.firmware).join("start4.elf");
            if !start.is_file() {
                self.warn(
                    &[Seg::Key("pi"), Seg::Key("firmware")],
                    format!(
                        "{} is not there: a Pi 4 / CM4 bootloader loads it first (copy the boot folder of Raspberry Pi's firmware release: start4.elf, fixup4.dat, bcm2711-rpi-4-b.dtb, overlays/)",
                        start.display()
                    ),
                );
            }
        }
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
