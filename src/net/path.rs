//! Mapping a requested file name onto a served folder (the TFTP root, the assets
//! folder), refusing anything that could leave it. TFTP, `/ipxe/` and `/assets/` all
//! go through [`resolve`]: this is the one place that decides what is inside.
//!
//! The rule, in two halves:
//! - the *name* must be relative and made of plain components: no `..`, `.`, empty
//!   component, backslash or NUL, and no component starting with a dot (`.pxelab`,
//!   `.git`, hidden files: an operator who points `tftp.root` at lab.yaml's folder
//!   must not publish the lab secret);
//! - the *real path* (symlinks resolved) must be a regular file inside the root
//!   (itself canonicalised), and no component of it below the root may start with a
//!   dot either. Symlinks are followed only when they land inside: Debian's
//!   `/usr/lib/ipxe/82540em.rom` → `qemu/pxe-e1000.rom` works, a link to `/etc/passwd`
//!   does not.

use std::path::{Component, Path, PathBuf};

/// Why a file name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefused {
    /// Absolute path, `..`, `.`, backslash, NUL or an empty component.
    #[error("`{0}`: absolute paths and traversal are refused")]
    Traversal(String),
    /// A component starting with a dot (`.pxelab`, `.git`, a hidden file), in the name
    /// or in the real path under the root.
    #[error("`{0}`: hidden files and folders are not served")]
    Hidden(String),
    /// The real path (symlinks resolved) lies outside the root.
    #[error("`{0}`: leads outside the served folder")]
    Outside(String),
    /// The file does not exist (or is not a regular file) under the root, or the root
    /// itself is missing.
    #[error("`{0}`: no such file")]
    NotFound(String),
}

/// Longest name considered (TFTP's and HTTP's names are short; a long one is hostile).
pub const MAX_NAME: usize = 255;

fn hidden(c: Component<'_>) -> bool {
    matches!(c, Component::Normal(s) if s.as_encoded_bytes().first() == Some(&b'.'))
}

/// Checks the name alone (no disk access): relative, plain, not hidden.
pub fn check_name(name: &str) -> Result<&Path, PathRefused> {
    let shown = || name.chars().take(200).collect::<String>();
    if name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.len() > MAX_NAME
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(PathRefused::Traversal(shown()));
    }
    let rel = Path::new(name);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(PathRefused::Traversal(shown()));
    }
    if rel.components().any(hidden) {
        return Err(PathRefused::Hidden(shown()));
    }
    Ok(rel)
}

/// Resolves `name` under `root` to the real path of a regular file inside it (see the
/// module doc for the rule). The path returned has no symlinks left, so opening it
/// opens what was checked.
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, PathRefused> {
    let rel = check_name(name)?;
    let shown = || name.chars().take(200).collect::<String>();
    let root = std::fs::canonicalize(root).map_err(|_| PathRefused::NotFound(shown()))?;
    let full = std::fs::canonicalize(root.join(rel)).map_err(|_| PathRefused::NotFound(shown()))?;
    let Ok(below) = full.strip_prefix(&root) else {
        return Err(PathRefused::Outside(shown()));
    };
    if below.components().any(hidden) {
        return Err(PathRefused::Hidden(shown()));
    }
    match std::fs::metadata(&full) {
        Ok(m) if m.is_file() => Ok(full),
        _ => Err(PathRefused::NotFound(shown())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.efi"), b"x").unwrap();
        std::fs::write(root.join("b.kpxe"), b"x").unwrap();
        std::os::unix::fs::symlink(root.join("b.kpxe"), root.join("link")).unwrap();
        assert!(resolve(&root, "b.kpxe").is_ok());
        assert!(resolve(&root, "sub/a.efi").is_ok());
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "sub/../../x",
            "a\\..\\b",
            "",
            "./b.kpxe",
            "sub//a.efi",
            "sub/./a.efi",
            "b.kpxe/",
        ] {
            assert!(
                matches!(resolve(&root, bad), Err(PathRefused::Traversal(_))),
                "{bad}"
            );
        }
        assert_eq!(resolve(&root, "link").unwrap(), root.join("b.kpxe"));
        assert!(matches!(
            resolve(&root, "sub"),
            Err(PathRefused::NotFound(_))
        ));
        assert!(matches!(
            resolve(&root, "nope"),
            Err(PathRefused::NotFound(_))
        ));
        assert!(matches!(
            resolve(&root.join("missing-root"), "b.kpxe"),
            Err(PathRefused::NotFound(_))
        ));
    }

    #[test]
    fn symlinks_out_of_the_root_and_hidden_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(dir.path()).unwrap();
        let root = top.join("root");
        std::fs::create_dir_all(root.join(".pxelab")).unwrap();
        std::fs::create_dir_all(root.join("qemu")).unwrap();
        std::fs::write(root.join(".pxelab/lab-secret"), b"s").unwrap();
        std::fs::write(root.join(".hidden.efi"), b"h").unwrap();
        std::fs::write(root.join("qemu/pxe-e1000.rom"), b"rom").unwrap();
        std::fs::write(top.join("outside"), b"o").unwrap();
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        };
        // Debian's layout: a relative link to a file inside the root is served.
        link("qemu/pxe-e1000.rom", "82540em.rom");
        link("/etc/passwd", "passwd");
        link("../outside", "up");
        link(".pxelab/lab-secret", "secret");
        link(top.to_str().unwrap(), "topdir");
        assert_eq!(
            resolve(&root, "82540em.rom").unwrap(),
            root.join("qemu/pxe-e1000.rom")
        );
        for (name, want) in [
            ("passwd", "outside"),
            ("up", "outside"),
            ("topdir/outside", "outside"),
            ("secret", "hidden"),
            (".pxelab/lab-secret", "hidden"),
            (".hidden.efi", "hidden"),
            ("qemu/.x", "hidden"),
        ] {
            let got = resolve(&root, name);
            let ok = match want {
                "outside" => matches!(got, Err(PathRefused::Outside(_))),
                _ => matches!(got, Err(PathRefused::Hidden(_))),
            };
            assert!(ok, "{name}: {got:?}");
        }
        // A root given through a symlink is canonicalised first.
        std::os::unix::fs::symlink(&root, top.join("alias")).unwrap();
        assert!(resolve(&top.join("alias"), "82540em.rom").is_ok());
    }
}
