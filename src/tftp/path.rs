//! Mapping a requested file name onto the TFTP root, refusing anything that could leave it.

use std::path::{Component, Path, PathBuf};

/// Why a file name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefused {
    /// Absolute path, `..`, backslash, NUL or an empty component.
    #[error("`{0}`: absolute paths and traversal are refused")]
    Traversal(String),
    /// The file does not exist (or is not a regular file) under the root.
    #[error("`{0}`: no such file")]
    NotFound(String),
}

/// Resolves `name` under `root`.
///
/// Only the *name* is policed: it must be relative, made of plain components, with no
/// `..`, backslash or NUL. Symlinks inside the root are followed, because the operator
/// put them there (Debian's own `/usr/lib/ipxe/ipxe.efi` links to `/boot/ipxe.efi`).
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, PathRefused> {
    let refuse = || PathRefused::Traversal(name.chars().take(200).collect());
    if name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.len() > 255
    {
        return Err(refuse());
    }
    let rel = Path::new(name);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(refuse());
    }
    let full = root.join(rel);
    if !full.is_file() {
        return Err(PathRefused::NotFound(name.chars().take(200).collect()));
    }
    Ok(full)
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
        assert!(resolve(&root, "./b.kpxe").is_err());
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "sub/../../x",
            "a\\..\\b",
            "",
        ] {
            assert!(
                matches!(resolve(&root, bad), Err(PathRefused::Traversal(_))),
                "{bad}"
            );
        }
        assert!(resolve(&root, "link").is_ok());
        assert!(matches!(
            resolve(&root, "sub"),
            Err(PathRefused::NotFound(_))
        ));
        assert!(matches!(
            resolve(&root, "nope"),
            Err(PathRefused::NotFound(_))
        ));
    }
}
