//! What pxelab keeps in `.pxelab/` besides the node secrets: the instance lock that
//! keeps a second `pxelab up` of the same lab from starting, and the admin API's bearer
//! token.
//!
//! One running instance per lab: two instances shared the DHCP and TFTP ports, split the
//! traffic between them and both rewrote one lease file. The lock is an `flock` on
//! `.pxelab/lock` (released by the kernel when the process ends, however it ends, so a
//! `kill -9` never leaves a stale lock), and the file holds the owner's PID and lab.yaml
//! so the second instance can say whom it collided with.
//!
//! The admin token is made anew at each start and written 0600 into the 0700 folder: only
//! a user who can read `.pxelab/` (the operator, root) can drive the admin API, which
//! otherwise any local user could reach on 127.0.0.1.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::config::atomic::{create_private_dir, write_private};
use crate::config::Lab;

/// The lock file inside `.pxelab/`.
pub const LOCK_FILE: &str = "lock";
/// The admin API's bearer token inside `.pxelab/`.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Why the state folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another process holds the lab's lock.
    #[error(
        "another pxelab ({holder}) is already running the lab {lab}; stop it first \
         (two instances would share the boot ports and the lease file; lock: {lock})"
    )]
    AlreadyRunning {
        /// `PID 1234`, or why the PID is unknown.
        holder: String,
        /// lab.yaml.
        lab: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A file could not be created, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The exclusive right to run one lab, held until dropped (or the process ends).
#[derive(Debug)]
pub struct InstanceLock {
    file: std::fs::File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lab's lock, creating `.pxelab/` (0700) and the lock file (0600) when
    /// missing. Fails at once, naming the holder's PID, when another process has it.
    pub fn acquire(lab: &Lab) -> Result<InstanceLock, StateError> {
        let dir = lab.state_dir();
        create_private_dir(&dir).map_err(io(&dir))?;
        let path = dir.join(LOCK_FILE);
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(true).create(true).truncate(false);
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut file = o.open(&path).map_err(io(&path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut held = String::new();
                let _ = file.read_to_string(&mut held);
                let holder = held
                    .lines()
                    .next()
                    .and_then(|l| l.trim().parse::<u32>().ok())
                    .map(|pid| format!("PID {pid}"))
                    .unwrap_or_else(|| "PID not recorded yet".to_string());
                return Err(StateError::AlreadyRunning {
                    holder,
                    lab: lab.path.clone(),
                    lock: path,
                });
            }
            Err(e) => return Err(io(&path)(e.into())),
        }
        // Ours now: record who holds it (read by a second instance's error message).
        let record = format!("{}\n{}\n", std::process::id(), lab.path.display());
        file.set_len(0).map_err(io(&path))?;
        file.rewind().map_err(io(&path))?;
        file.write_all(record.as_bytes()).map_err(io(&path))?;
        Ok(InstanceLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // The file stays (unlinking it would let a third process lock a new inode while
        // a second still waits on this one); emptied, it names no one. Closing the file
        // releases the lock.
        let _ = self.file.set_len(0);
    }
}

/// Makes a fresh admin token and writes it to `.pxelab/admin-token` (0600).
pub fn create_admin_token(lab: &Lab) -> Result<String, StateError> {
    let dir = lab.state_dir();
    create_private_dir(&dir).map_err(io(&dir))?;
    let bytes: [u8; 32] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(ADMIN_TOKEN_FILE);
    write_private(&path, token.as_bytes()).map_err(io(&path))?;
    Ok(token)
}

/// Reads the running instance's admin token; `None` when there is none (no instance
/// ever started here). A file this user may not read is an error that says so.
pub fn read_admin_token(lab: &Lab) -> Result<Option<String>, StateError> {
    let path = lab.state_dir().join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Some(t.trim().to_string()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io { path, source }),
    }
}

/// Removes temporary files that writers killed mid-write left beside lab.yaml and in
/// `.pxelab/` (see [`crate::config::atomic`]); only those older than a few seconds, so a
/// write in progress in another process keeps its file. Returns how many went.
pub fn sweep_stale_temp_files(lab: &Lab) -> usize {
    let age = std::time::Duration::from_secs(5);
    [lab.dir(), lab.state_dir()]
        .iter()
        .map(|d| crate::config::atomic::sweep_stale_temps(d, age))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn lab(dir: &Path) -> Lab {
        let path = dir.join("lab.yaml");
        let text = "name: t\nboot: {kernel: k}\n";
        std::fs::write(&path, text).unwrap();
        Lab::parse(&path, text).unwrap()
    }

    #[test]
    fn a_second_lock_names_the_first_holder_and_the_lock_frees_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let lab = lab(d.path());
        let first = InstanceLock::acquire(&lab).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&lab.state_dir()), 0o700);
        assert_eq!(mode(first.path()), 0o600);
        // flock is per open file: a second open in this process collides like another
        // process would.
        let err = InstanceLock::acquire(&lab).unwrap_err().to_string();
        assert!(
            err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("lab.yaml"), "{err}");
        drop(first);
        let again = InstanceLock::acquire(&lab).unwrap();
        drop(again);
    }

    #[test]
    fn the_admin_token_is_private_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let lab = lab(d.path());
        assert_eq!(read_admin_token(&lab).unwrap(), None);
        let t = create_admin_token(&lab).unwrap();
        assert_eq!(t.len(), 64);
        let p = lab.state_dir().join(ADMIN_TOKEN_FILE);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_admin_token(&lab).unwrap().as_deref(), Some(t.as_str()));
        assert_ne!(create_admin_token(&lab).unwrap(), t, "a new one per start");
    }
}
