//! One flavour per boot: Alpine's kernel, initramfs and modloop come in flavours (`lts`,
//! `virt`, `rpi`), and a node boots only when all three are of the same one: the
//! initramfs loads the kernel's modules from the modloop, and a `virt` modloop holds no
//! module of an `lts` kernel (the seed lost hours to `modloop-virt` beside
//! `vmlinuz-lts`). This is an error: such a node never finishes booting.
//!
//! A file's flavour is what follows `vmlinuz-`, `initramfs-` or `modloop-` in its name
//! when that is one of Alpine's kernel flavours ([`FLAVOURS`]); for the kernel, the
//! version string it was built with wins when it can be read ([`super::bzimage`]),
//! since a name can lie. Files without a flavour in their name (the test image's
//! `vmlinuz`, microcode, a `vmlinuz-special` of one's own) are left alone. Checked for
//! `boot:` and for every node that overrides any of the three.

use std::collections::{BTreeMap, HashMap};

use super::bzimage::{kernel_version, version_flavour};
use super::Validator;
use crate::config::spans::Seg;

/// The file-name prefixes that carry a flavour, and what each file is.
const PREFIXES: [(&str, &str); 3] = [
    ("vmlinuz-", "kernel"),
    ("initramfs-", "initramfs"),
    ("modloop-", "modloop"),
];

/// Alpine's kernel flavours (aports `main/linux-lts`, `linux-virt`, `linux-rpi`, and
/// community's `linux-edge`, `linux-stable`, `linux-asahi`): only these count in a name.
pub const FLAVOURS: [&str; 8] = [
    "lts", "virt", "rpi", "rpi2", "rpi4", "edge", "stable", "asahi",
];

/// The flavour in a file name (`modloop-virt` → `virt`), for names of that `prefix`.
fn name_flavour<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let f = name.strip_prefix(prefix)?;
    FLAVOURS.contains(&f).then_some(f)
}

/// What is known of one boot file's flavour.
struct Part<'a> {
    /// Where it is named in lab.yaml.
    path: Vec<Seg<'a>>,
    /// Its file name.
    name: &'a str,
    /// Its flavour.
    flavour: String,
    /// How the flavour is known, when not from the name.
    because: Option<String>,
}

impl<'a> Validator<'a> {
    /// The kernel's flavour, with the version string when it was read (cached per name:
    /// a lab of thousands of nodes names a few kernels).
    fn kernel_flavour(&mut self, name: &str) -> Option<(String, Option<String>)> {
        let version = self
            .cache
            .kernel_versions
            .entry(name.to_string())
            .or_insert_with(|| kernel_version(&self.lab.assets_dir().join(name)))
            .clone();
        if let Some(v) = version {
            if let Some(f) = version_flavour(&v) {
                return Some((f.to_string(), Some(v)));
            }
        }
        name_flavour(name, PREFIXES[0].0).map(|f| (f.to_string(), None))
    }

    /// The flavours of the kernel, initramfs and modloop files in `assets_dir`, for the
    /// hint: `lts (vmlinuz-lts, initramfs-lts, modloop-lts); virt (modloop-virt)`.
    fn flavours_found(&mut self) -> String {
        if let Some(s) = &self.cache.flavours_found {
            return s.clone();
        }
        let dir = self.lab.assets_dir();
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        for name in names {
            for (prefix, _) in PREFIXES {
                if let Some(f) = name_flavour(&name, prefix) {
                    found.entry(f.to_string()).or_default().push(name.clone());
                }
            }
        }
        let s = if found.is_empty() {
            format!("no flavoured files in {}", dir.display())
        } else {
            let groups: Vec<String> = found
                .into_iter()
                .map(|(f, mut files)| {
                    files.sort_by_key(|n| PREFIXES.iter().position(|(p, _)| n.starts_with(p)));
                    format!("{f} ({})", files.join(", "))
                })
                .collect();
            format!("flavours in {}: {}", dir.display(), groups.join("; "))
        };
        self.cache.flavours_found = Some(s.clone());
        s
    }

    pub(super) fn flavours(&mut self) {
        let lab = self.lab;
        let b = &lab.file.boot;
        let kernel = (
            vec![Seg::Key("boot"), Seg::Key("kernel")],
            b.kernel.as_str(),
        );
        let initrds: Vec<(Vec<Seg<'_>>, &str)> = b
            .initrds
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    vec![Seg::Key("boot"), Seg::Key("initrds"), Seg::Index(i)],
                    n.as_str(),
                )
            })
            .collect();
        let modloop = b
            .modloop
            .as_deref()
            .map(|m| (vec![Seg::Key("boot"), Seg::Key("modloop")], m));
        self.one_boot(None, kernel.clone(), &initrds, modloop.clone());
        for (i, n) in lab.file.nodes.iter().enumerate() {
            if n.kernel.is_none() && n.initrds.is_none() && n.modloop.is_none() {
                continue;
            }
            let at = |k| vec![Seg::Key("nodes"), Seg::Index(i), Seg::Key(k)];
            let k = match &n.kernel {
                Some(k) => (at("kernel"), k.as_str()),
                None => kernel.clone(),
            };
            let ir: Vec<(Vec<Seg<'_>>, &str)> = match &n.initrds {
                Some(v) => v
                    .iter()
                    .enumerate()
                    .map(|(j, x)| {
                        let mut p = at("initrds");
                        p.push(Seg::Index(j));
                        (p, x.as_str())
                    })
                    .collect(),
                None => initrds.clone(),
            };
            let m = match &n.modloop {
                Some(m) => Some((at("modloop"), m.as_str())),
                None => modloop.clone(),
            };
            self.one_boot(Some(i), k, &ir, m);
        }
    }

    /// Checks one boot's files. For a node, only what it overrides is blamed on it;
    /// a mismatch between its override and `boot:` is reported at the override, with the
    /// key it lacks.
    fn one_boot(
        &mut self,
        node: Option<usize>,
        kernel: (Vec<Seg<'a>>, &'a str),
        initrds: &[(Vec<Seg<'a>>, &'a str)],
        modloop: Option<(Vec<Seg<'a>>, &'a str)>,
    ) {
        let mut parts: Vec<Part<'a>> = Vec::new();
        if let Some((flavour, version)) = self.kernel_flavour(kernel.1) {
            let named = name_flavour(kernel.1, PREFIXES[0].0);
            let because = version.map(|v| {
                if named.is_some_and(|n| n != flavour) {
                    format!("its version string says {v}, whatever its name")
                } else {
                    format!("its version string says {v}")
                }
            });
            parts.push(Part {
                path: kernel.0,
                name: kernel.1,
                flavour,
                because,
            });
        }
        let rest = initrds
            .iter()
            .map(|(p, n)| (p.clone(), *n, PREFIXES[1].0))
            .chain(modloop.map(|(p, n)| (p, n, PREFIXES[2].0)));
        for (path, name, prefix) in rest {
            if let Some(f) = name_flavour(name, prefix) {
                parts.push(Part {
                    path,
                    name,
                    flavour: f.to_string(),
                    because: None,
                });
            }
        }
        let Some((first, others)) = parts.split_first() else {
            return;
        };
        let node_key = node.map(|i| [Seg::Key("nodes"), Seg::Index(i)]);
        let own = |p: &Part<'_>| node_key.as_ref().is_none_or(|k| p.path.starts_with(k));
        for p in others.iter().filter(|p| p.flavour != first.flavour) {
            if node.is_some() && !own(p) && !own(first) {
                continue; // both from `boot:`, reported there
            }
            // Blame the side that is this node's own (for `boot:`, the later file).
            let (blamed, other) = if own(p) || !own(first) {
                (p, first)
            } else {
                (first, p)
            };
            let hint = match node {
                Some(i) if !own(other) => {
                    let key = PREFIXES
                        .iter()
                        .find(|(pre, _)| other.name.starts_with(pre))
                        .map(|(_, what)| match *what {
                            "initramfs" => "initrds",
                            w => w,
                        })
                        .unwrap_or("modloop");
                    format!(
                        "give nodes[{i}] its own `{key}` of flavour `{}`; ",
                        blamed.flavour
                    )
                }
                _ => String::new(),
            };
            let found = self.flavours_found();
            let says = |x: &Part<'_>| {
                x.because
                    .as_ref()
                    .map(|b| format!(" ({b})"))
                    .unwrap_or_default()
            };
            let msg = format!(
                "{} is flavour `{}`{} but {} {} is `{}`{}: Alpine boots only a kernel, initramfs and modloop of one flavour ({hint}{found})",
                blamed.name,
                blamed.flavour,
                says(blamed),
                crate::config::report::path_name(&other.path),
                other.name,
                other.flavour,
                says(other),
            );
            let path = blamed.path.clone();
            self.error(&path, msg);
        }
    }
}

/// What the flavour check learns from disk once per validation.
#[derive(Debug, Default)]
pub(super) struct Cache {
    /// Kernel file name → its version string, if it has one.
    kernel_versions: HashMap<String, Option<String>>,
    /// The hint naming the flavours in `assets_dir`.
    flavours_found: Option<String>,
}
