//! Unpacking a verified netboot tarball: only the files pxelab serves (kernel,
//! initramfs, modloop of one flavour, and dtbs on aarch64) into a folder in the staging
//! area, then renamed into `assets_dir`.
//!
//! The staging area lies beside `assets_dir`, on the same filesystem, so the final step
//! is a rename: a node booting meanwhile reads the old file or the new one, never half
//! of one, and a refusal leaves `assets_dir` as it was. Tar member names are never used
//! as paths as they are: each component must be a plain name.

use std::fs::File;
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;

use super::{io_err, FetchError};

/// The staging folder for `assets_dir`: `.NAME.fetch` beside it.
pub fn staging_dir(assets_dir: &Path) -> PathBuf {
    let name = assets_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "assets".to_string());
    let parent = assets_dir.parent().unwrap_or(Path::new("."));
    parent.join(format!(".{name}.fetch"))
}

/// The top-level names a flavour's netboot files have in `assets_dir`.
pub fn wanted(flavour: &str, dtbs: bool) -> Vec<String> {
    let mut v = vec![
        format!("vmlinuz-{flavour}"),
        format!("initramfs-{flavour}"),
        format!("modloop-{flavour}"),
    ];
    if dtbs {
        v.push(format!("dtbs-{flavour}"));
    }
    v
}

/// A member's path below the tarball's `boot/` (or its root), as plain components.
fn member_path(path: &Path) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if parts.first().map(String::as_str) == Some("boot") {
        parts.remove(0);
    }
    Some(parts)
}

/// Extracts the `wanted` members of `tarball` into a fresh `dest` folder. Returns the
/// relative paths written.
pub fn extract(
    tarball: &Path,
    name: &str,
    wanted: &[String],
    dest: &Path,
) -> Result<Vec<String>, FetchError> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(io_err(dest))?;
    }
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    let bad = |message: String| FetchError::Unpack {
        file: name.to_string(),
        message,
    };
    let f = File::open(tarball).map_err(io_err(tarball))?;
    let mut archive = tar::Archive::new(GzDecoder::new(f));
    let mut written = Vec::new();
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let Some(parts) = member_path(&raw) else {
            return Err(bad(format!("unsafe member name {}", raw.display())));
        };
        let Some(top) = parts.first() else { continue };
        let whole_file = parts.len() == 1;
        let dtb = top.starts_with("dtbs-") && parts.len() > 1;
        if !wanted.contains(top) || !(whole_file || dtb) {
            continue;
        }
        let rel = parts.join("/");
        let out = dest.join(&rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut file = File::create(&out).map_err(io_err(&out))?;
        std::io::copy(&mut entry, &mut file)
            .map_err(|e| bad(format!("reading {}: {e}", raw.display())))?;
        file.sync_all().map_err(io_err(&out))?;
        written.push(rel);
    }
    for w in wanted {
        if !written
            .iter()
            .any(|r| r == w || r.starts_with(&format!("{w}/")))
        {
            return Err(bad(format!("no boot/{w} in the tarball")));
        }
    }
    written.sort();
    Ok(written)
}

/// Moves the top-level `names` from `staged` into `assets_dir` by rename (a folder
/// replaces the old one whole), then removes `staged`.
pub fn install(staged: &Path, assets_dir: &Path, names: &[String]) -> Result<(), FetchError> {
    std::fs::create_dir_all(assets_dir).map_err(io_err(assets_dir))?;
    for n in names {
        let from = staged.join(n);
        let to = assets_dir.join(n);
        if from.is_dir() && to.exists() {
            let old = staged.join(format!(".old-{n}"));
            std::fs::rename(&to, &old).map_err(io_err(&to))?;
            std::fs::rename(&from, &to).map_err(io_err(&to))?;
            std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
        } else {
            std::fs::rename(&from, &to).map_err(io_err(&to))?;
        }
    }
    std::fs::remove_dir_all(staged).map_err(io_err(staged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_plain() {
        assert_eq!(
            member_path(Path::new("./boot/vmlinuz-lts")),
            Some(vec!["vmlinuz-lts".to_string()])
        );
        assert_eq!(
            member_path(Path::new("boot/dtbs-lts/a/b.dtb")),
            Some(vec!["dtbs-lts".into(), "a".into(), "b.dtb".into()])
        );
        assert_eq!(member_path(Path::new("boot/../../etc/passwd")), None);
        assert_eq!(member_path(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn staging_is_beside_assets() {
        assert_eq!(
            staging_dir(Path::new("/lab/alpine-v3.21")),
            PathBuf::from("/lab/.alpine-v3.21.fetch")
        );
    }
}
