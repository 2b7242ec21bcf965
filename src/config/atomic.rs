//! Crash-safe file replacement: write a temporary file beside the target, fsync it,
//! rename it over the target, fsync the folder. A crash at any point leaves either the
//! old file or the new one, never a half-written one.
//!
//! The temporary file is created new (never opened if it exists), mode 0600, under a
//! random name: another local user can neither predict it nor read a secret through
//! it while it is being written. Private state (`.pxelab/`) goes through
//! [`write_private`] and [`create_private_dir`], so its folder is 0700 and its files
//! 0600 whichever part of pxelab (secrets, DHCP leases) creates them first.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `contents` atomically, keeping the old file's permissions (a new
/// file gets 0644: lab.yaml is the operator's to read).
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace(path, contents, Mode::KeepOr(0o644))
}

/// Replaces `path` with `contents` atomically, mode 0600 whatever it was.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace(path, contents, Mode::Exactly(0o600))
}

/// [`write_private`] for contents written by `fill` straight into the temporary file
/// (through a buffer), never held whole in memory: the lease file with tens of
/// thousands of leases is megabytes of JSON at every write.
pub fn write_private_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = write_temp_with(path, Mode::Exactly(0o600), |f| {
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, f);
        fill(&mut w)?;
        w.flush()
    })?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_folder(&folder_of(path));
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700 for the last component, and
/// tightens an existing one to 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.is_dir() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir)?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// The permissions a replaced file ends with.
#[derive(Clone, Copy)]
enum Mode {
    /// The old file's, else this.
    KeepOr(u32),
    /// This, always.
    Exactly(u32),
}

/// What every temporary file's name holds: `.NAME.pxelab-tmp-<random>`.
const TEMP_MARK: &str = ".pxelab-tmp-";

/// A fresh temporary path beside `path`: `.NAME.pxelab-tmp-<random>`.
fn temp_beside(dir: &Path, path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    dir.join(format!(".{name}{TEMP_MARK}{:016x}", rand::random::<u64>()))
}

/// Whether a file name is one of our temporary files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARK)
}

/// Removes our temporary files in `dir` last modified more than `age` ago: a writer
/// killed between creating and renaming its file (`kill -9`, power loss) leaves one, and
/// nothing else would ever remove it. Younger ones may belong to a write in progress.
/// Returns how many were removed.
pub fn sweep_stale_temps(dir: &Path, age: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        if !is_temp_name(&name.to_string_lossy()) {
            continue;
        }
        let old = e
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|d| d >= age);
        if old && std::fs::remove_file(e.path()).is_ok() {
            tracing::info!("removed stale temporary file {}", e.path().display());
            removed += 1;
        }
    }
    removed
}

/// The folder a file lives in (`.` for a bare name).
pub(crate) fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `contents` into a new temporary file beside `path` with the mode `mode` asks
/// for, fsynced. Returns its path; on error nothing is left behind.
fn write_temp(path: &Path, contents: &[u8], mode: Mode) -> std::io::Result<PathBuf> {
    write_temp_with(path, mode, |f| f.write_all(contents))
}

/// [`write_temp`] with the contents written by `fill`.
fn write_temp_with(
    path: &Path,
    mode: Mode,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    let tmp = temp_beside(&folder_of(path), path);
    let result = (|| {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let want = match mode {
                Mode::Exactly(m) => m,
                Mode::KeepOr(m) => std::fs::metadata(path)
                    .map(|meta| meta.permissions().mode() & 0o7777)
                    .unwrap_or(m),
            };
            if want != 0o600 {
                f.set_permissions(std::fs::Permissions::from_mode(want))?;
            }
        }
        fill(&mut f)?;
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A file streamed into place: written under a temporary name beside `path` (created
/// new, mode 0644), then [`Staged::commit`] fsyncs it and renames it over `path`. Dropped
/// without a commit (a failed or cut download), the temporary file is removed: `path`
/// only ever holds a whole file. For content too large to hold in memory.
pub struct Staged {
    file: std::fs::File,
    tmp: PathBuf,
    path: PathBuf,
    done: bool,
}

impl Staged {
    /// Starts a new file that will replace `path`.
    pub fn create(path: &Path) -> std::io::Result<Staged> {
        let tmp = temp_beside(&folder_of(path), path);
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o644);
        }
        let file = o.open(&tmp)?;
        Ok(Staged {
            file,
            tmp,
            path: path.to_path_buf(),
            done: false,
        })
    }

    /// The file being written (also readable, to check it before the commit).
    pub fn file(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    /// Makes the written file `path`: fsync, rename, fsync the folder.
    pub fn commit(mut self) -> std::io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.tmp, &self.path)?;
        self.done = true;
        sync_folder(&folder_of(&self.path));
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Makes a folder's entries (a new or renamed file) durable; best effort.
pub(crate) fn sync_folder(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn replace(path: &Path, contents: &[u8], mode: Mode) -> std::io::Result<()> {
    let tmp = write_temp(path, contents, mode)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_folder(&folder_of(path));
    Ok(())
}

/// Serialises [`replace_if_unchanged`] within this process.
static COMPARE_AND_SWAP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Replaces `path` with `contents` (keeping its mode, like [`write_atomic`]) only if it
/// still holds `expected`; `Ok(false)` when it does not, nothing changed.
///
/// Why more than compare-then-rename: another program's save (an editor's own
/// temp-and-rename) can land between the compare and the rename, and the rename then
/// threw it away (10 of 400 operator saves lost to concurrent adoptions). Here the slow
/// part (write, fsync) happens first; then, under one lock, the file is read again and
/// swapped with ours in one step (`renameat2(RENAME_EXCHANGE)`), which hands back the
/// file we displaced. If that is not `expected`, a save got in between the read and the
/// swap: it is swapped back into place (ours discarded) and the caller retries on top of
/// it. Where the file system cannot exchange, a plain rename right after the re-read
/// keeps the window as small as it can be.
pub fn replace_if_unchanged(
    path: &Path,
    expected: &[u8],
    contents: &[u8],
) -> std::io::Result<bool> {
    let dir = folder_of(path);
    let tmp = write_temp(path, contents, Mode::KeepOr(0o644))?;
    let _g = match COMPARE_AND_SWAP.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let result = swap_if_unchanged(path, &tmp, expected, contents);
    let _ = std::fs::remove_file(&tmp);
    if let Ok(true) = result {
        sync_folder(&dir);
    }
    result
}

fn swap_if_unchanged(
    path: &Path,
    tmp: &Path,
    expected: &[u8],
    contents: &[u8],
) -> std::io::Result<bool> {
    if std::fs::read(path)? != expected {
        return Ok(false);
    }
    let exchange = |a: &Path, b: &Path| {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            a,
            rustix::fs::CWD,
            b,
            rustix::fs::RenameFlags::EXCHANGE,
        )
    };
    match exchange(tmp, path) {
        Ok(()) => {}
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP) => {
            std::fs::rename(tmp, path)?;
            return Ok(true);
        }
        Err(e) => return Err(e.into()),
    }
    // `tmp` now holds what was at `path` the instant before the swap.
    let displaced = std::fs::read(tmp)?;
    if displaced == expected {
        return Ok(true);
    }
    // Someone saved in between: put their file back.
    exchange(tmp, path).map_err(std::io::Error::from)?;
    if std::fs::read(tmp).is_ok_and(|t| t != contents) {
        // Yet another save landed while ours was in place: the newest one wins.
        std::fs::rename(tmp, path)?;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn private_state_is_0700_and_0600_and_lab_yaml_keeps_its_mode() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("lab/.pxelab");
        create_private_dir(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
        let leases = state.join("leases.json");
        write_private(&leases, b"{}").unwrap();
        assert_eq!(mode(&leases), 0o600);
        // An existing 0755 folder is tightened.
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
        let lab = d.path().join("lab/lab.yaml");
        write_atomic(&lab, b"a").unwrap();
        assert_eq!(mode(&lab), 0o644);
        std::fs::set_permissions(&lab, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&lab, b"b").unwrap();
        assert_eq!(mode(&lab), 0o640);
        assert_eq!(std::fs::read(&lab).unwrap(), b"b");
        // Nothing temporary is left behind.
        let names: Vec<String> = std::fs::read_dir(d.path().join("lab"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("pxelab-tmp")), "{names:?}");
    }

    #[test]
    fn a_streamed_private_write_is_whole_0600_or_absent() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("leases.json");
        write_private_with(&p, |w| w.write_all(&[b'x'; 200_000])).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), vec![b'x'; 200_000]);
        assert_eq!(mode(&p), 0o600);
        // A fill that fails half-way leaves the old file and no temporary one.
        let err = write_private_with(&p, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&p).unwrap().len(), 200_000);
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["leases.json".to_string()]);
    }

    #[test]
    fn replace_if_unchanged_refuses_a_file_that_changed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lab.yaml");
        std::fs::write(&p, b"one").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(replace_if_unchanged(&p, b"one", b"two").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(mode(&p), 0o640);
        assert!(!replace_if_unchanged(&p, b"one", b"three").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["lab.yaml"]);
    }

    #[test]
    fn stale_temporary_files_are_swept_young_ones_and_others_kept() {
        let d = tempfile::tempdir().unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let stale = d.path().join(".lab.yaml.pxelab-tmp-0123456789abcdef");
        let young = d.path().join(".leases.json.pxelab-tmp-fedcba9876543210");
        let other = d.path().join("lab.yaml");
        for p in [&stale, &young, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        for p in [&stale, &other] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        let age = std::time::Duration::from_secs(5);
        assert_eq!(sweep_stale_temps(d.path(), age), 1);
        assert!(!stale.exists() && young.exists() && other.exists());
        assert_eq!(sweep_stale_temps(&d.path().join("missing"), age), 0);
    }
}
