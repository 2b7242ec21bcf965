//! One architecture per boot: a node's kernel, initramfs and modloop must be built for
//! its CPU, and for one another. Each file's architecture is read from its contents
//! ([`super::image_arch`]), never its name; a file that says nothing is left alone.
//!
//! What is expected of whom:
//! - `boot.arch.<arch>`: that architecture;
//! - `boot:`: x86_64 in a mixed lab (one with a profile or an `arch:`), else only that
//!   its files agree;
//! - a node whose `arch` is set (or its role's): that architecture, for its own files
//!   and for the profile it falls back on (`boot:` when `boot.arch.<arch>` is missing);
//! - a Raspberry Pi's MAC with `pi:` set: aarch64 unless it has an `arch`;
//! - a node that overrides files without an `arch`: its files agree with one another.

use std::collections::HashMap;

use super::image_arch::{initramfs_arch, kernel_arch, modloop_arch};
use super::Validator;
use crate::config::spans::Seg;
use crate::config::Arch;

/// Which kind of boot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Kernel,
    Initrd,
    Modloop,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Kernel => "kernel",
            Kind::Initrd => "initramfs",
            Kind::Modloop => "modloop",
        }
    }
}

/// One boot file named in lab.yaml.
#[derive(Clone)]
struct BootFile<'a> {
    path: Vec<Seg<'a>>,
    name: &'a str,
    kind: Kind,
    /// The node's own override (not inherited from a profile).
    own: bool,
}

/// Architectures read from disk, once per file.
#[derive(Debug, Default)]
pub(super) struct ArchCache(HashMap<(Kind, String), Option<Arch>>);

fn set<'a>(
    prefix: &[Seg<'a>],
    kernel: &'a str,
    initrds: &'a [String],
    modloop: Option<&'a str>,
    own: bool,
) -> Vec<BootFile<'a>> {
    let at = |k: &'a str| {
        let mut p = prefix.to_vec();
        p.push(Seg::Key(k));
        p
    };
    let mut v = vec![BootFile {
        path: at("kernel"),
        name: kernel,
        kind: Kind::Kernel,
        own,
    }];
    for (i, n) in initrds.iter().enumerate() {
        let mut p = at("initrds");
        p.push(Seg::Index(i));
        v.push(BootFile {
            path: p,
            name: n,
            kind: Kind::Initrd,
            own,
        });
    }
    if let Some(m) = modloop {
        v.push(BootFile {
            path: at("modloop"),
            name: m,
            kind: Kind::Modloop,
            own,
        });
    }
    v
}

impl<'a> Validator<'a> {
    fn file_arch(&mut self, kind: Kind, name: &str) -> Option<Arch> {
        let dir = self.lab.assets_dir();
        *self
            .arches
            .0
            .entry((kind, name.to_string()))
            .or_insert_with(|| {
                let p = dir.join(name);
                match kind {
                    Kind::Kernel => kernel_arch(&p),
                    Kind::Initrd => initramfs_arch(&p),
                    Kind::Modloop => modloop_arch(&p),
                }
            })
    }

    /// Files of `files` whose architecture is not `want`, with theirs.
    fn wrong(&mut self, files: &[BootFile<'a>], want: Arch) -> Vec<(BootFile<'a>, Arch)> {
        let mut out = Vec::new();
        for f in files {
            if let Some(a) = self.file_arch(f.kind, f.name) {
                if a != want {
                    out.push((f.clone(), a));
                }
            }
        }
        out
    }

    /// The first architecture any of `files` says.
    fn first_arch(&mut self, files: &[BootFile<'a>]) -> Option<(BootFile<'a>, Arch)> {
        files
            .iter()
            .find_map(|f| self.file_arch(f.kind, f.name).map(|a| (f.clone(), a)))
    }

    pub(super) fn arches(&mut self) {
        let lab = self.lab;
        let b = &lab.file.boot;
        let mixed = !b.arch.is_empty()
            || lab.file.roles.values().any(|r| r.arch.is_some())
            || lab.file.nodes.iter().any(|n| n.arch.is_some());
        let base = set(
            &[Seg::Key("boot")],
            &b.kernel,
            &b.initrds,
            b.modloop.as_deref(),
            false,
        );
        if mixed {
            for (f, a) in self.wrong(&base, Arch::X86_64) {
                let msg = format!(
                    "{} is an {a} {} (read from the file), but boot: is the x86_64 profile of a mixed lab: move it to boot.arch.{a}",
                    f.name,
                    f.kind.what()
                );
                self.error(&f.path, msg);
            }
        } else {
            self.agree(&base, "boot:");
        }
        for (arch, p) in &b.arch {
            let files = set(
                &[Seg::Key("boot"), Seg::Key("arch"), Seg::Key(arch.as_str())],
                &p.kernel,
                &p.initrds,
                p.modloop.as_deref(),
                false,
            );
            for (f, a) in self.wrong(&files, *arch) {
                let msg = format!(
                    "{} is an {a} {} (read from the file), not {arch}: boot.arch.{arch} boots {arch} machines",
                    f.name,
                    f.kind.what()
                );
                self.error(&f.path, msg);
            }
        }
        for (i, n) in lab.file.nodes.iter().enumerate() {
            // A Pi on its bootloader (`pi:`) boots as aarch64 unless lab.yaml says.
            let pi = lab.file.pi.is_some() && n.mac.is_raspberry_pi();
            let configured =
                crate::render::files::configured_arch(lab, n).or(pi.then_some(Arch::Aarch64));
            let own_any = n.kernel.is_some() || n.initrds.is_some() || n.modloop.is_some();
            if configured.is_none() && !own_any {
                continue;
            }
            let arch = configured.unwrap_or(Arch::DEFAULT);
            let (prefix, from_profile): (Vec<Seg<'a>>, bool) = match b.arch.get(&arch) {
                Some(_) => (
                    vec![Seg::Key("boot"), Seg::Key("arch"), Seg::Key(arch.as_str())],
                    true,
                ),
                None => (vec![Seg::Key("boot")], false),
            };
            let p = b.arch.get(&arch);
            let kernel = p.map(|p| p.kernel.as_str()).unwrap_or(&b.kernel);
            let initrds = p.map(|p| p.initrds.as_slice()).unwrap_or(&b.initrds);
            let modloop = p
                .map(|p| p.modloop.as_deref())
                .unwrap_or(b.modloop.as_deref());
            let node = [Seg::Key("nodes"), Seg::Index(i)];
            let mut files: Vec<BootFile<'a>> = Vec::new();
            let inherited = set(&prefix, kernel, initrds, modloop, false);
            let own = |k: &'a str| {
                let mut p = node.to_vec();
                p.push(Seg::Key(k));
                p
            };
            match &n.kernel {
                Some(k) => files.push(BootFile {
                    path: own("kernel"),
                    name: k,
                    kind: Kind::Kernel,
                    own: true,
                }),
                None => files.extend(inherited.iter().filter(|f| f.kind == Kind::Kernel).cloned()),
            }
            match &n.initrds {
                Some(v) => {
                    for (j, x) in v.iter().enumerate() {
                        let mut p = own("initrds");
                        p.push(Seg::Index(j));
                        files.push(BootFile {
                            path: p,
                            name: x,
                            kind: Kind::Initrd,
                            own: true,
                        });
                    }
                }
                None => files.extend(inherited.iter().filter(|f| f.kind == Kind::Initrd).cloned()),
            }
            match &n.modloop {
                Some(m) => files.push(BootFile {
                    path: own("modloop"),
                    name: m,
                    kind: Kind::Modloop,
                    own: true,
                }),
                None => files.extend(
                    inherited
                        .iter()
                        .filter(|f| f.kind == Kind::Modloop)
                        .cloned(),
                ),
            }
            let Some(arch) = configured else {
                self.agree_own(i, &files);
                continue;
            };
            let why = if n.arch.is_some() {
                format!("nodes[{i}] ({}) is {arch}", n.hostname)
            } else if crate::render::files::configured_arch(lab, n).is_none() {
                format!(
                    "nodes[{i}] ({}) is {arch} (a Raspberry Pi netbooting with pi:)",
                    n.hostname
                )
            } else {
                format!("nodes[{i}] ({}) is {arch} (role {})", n.hostname, n.role)
            };
            let key = own(if n.arch.is_some() {
                "arch"
            } else if pi && crate::render::files::configured_arch(lab, n).is_none() {
                "mac"
            } else {
                "role"
            });
            for (f, a) in self.wrong(&files, arch) {
                if f.own {
                    let msg = format!(
                        "{} is an {a} {} (read from the file), but {why}",
                        f.name,
                        f.kind.what()
                    );
                    self.error(&f.path, msg);
                } else if !from_profile {
                    let msg = format!(
                        "{why} but boots {} {}, an {a} {} (read from the file): add boot.arch.{arch} or give it its own `{}`",
                        crate::config::report::path_name(&f.path),
                        f.name,
                        f.kind.what(),
                        match f.kind {
                            Kind::Initrd => "initrds",
                            k => k.what(),
                        }
                    );
                    self.error(&key, msg);
                }
            }
        }
    }

    /// The files of `boot:` agree with one another (a lab without architectures).
    fn agree(&mut self, files: &[BootFile<'a>], who: &str) {
        let Some((first, a)) = self.first_arch(files) else {
            return;
        };
        for (f, b) in self.wrong(files, a) {
            let msg = format!(
                "{} is an {b} {} but {who} {} {} is {a} (read from the files): one boot needs one architecture",
                f.name,
                f.kind.what(),
                first.kind.what(),
                first.name
            );
            self.error(&f.path, msg);
        }
    }

    /// A node without `arch` that overrides files: its own files agree with the rest.
    fn agree_own(&mut self, i: usize, files: &[BootFile<'a>]) {
        let Some((first, a)) = self.first_arch(files) else {
            return;
        };
        for (f, b) in self.wrong(files, a) {
            let (blamed, other, ba, oa) = if f.own {
                (f, first.clone(), b, a)
            } else if first.own {
                (first.clone(), f, a, b)
            } else {
                continue;
            };
            let msg = format!(
                "{} is an {ba} {} but nodes[{i}] also boots {} {}, an {oa} {} (read from the files): one boot needs one architecture",
                blamed.name,
                blamed.kind.what(),
                crate::config::report::path_name(&other.path),
                other.name,
                other.kind.what()
            );
            self.error(&blamed.path, msg);
        }
    }
}
