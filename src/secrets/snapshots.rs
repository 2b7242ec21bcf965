//! Where the k3s server's datastore snapshots live: `.pxelab/snapshots/`, one
//! `<mac>-<UTC time>-<why>.tar.gz` each (mode 0600: a snapshot holds the cluster's CA
//! keys and token), the newest `k3s.snapshots.keep` per server kept.
//!
//! Storage only: taking one is [`crate::watch::snapshot`], serving the newest to the
//! server's next boot is the HTTP server's `/snapshot/<mac>` route. A snapshot is written
//! under a temporary name (created new, 0600), synced and renamed, so a crash never
//! leaves half an archive under a real name and the newest is always whole.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::SecretsError;
use crate::mac::Mac;

/// The folder inside `.pxelab/`.
pub const SNAPSHOT_DIR: &str = "snapshots";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretsError + '_ {
    move |source| SecretsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `.pxelab/snapshots/`.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join(SNAPSHOT_DIR)
}

fn prefix(mac: Mac) -> String {
    format!("{}-", mac.compact())
}

/// The snapshots of `mac`, oldest first.
pub fn list(state_dir: &Path, mac: Mac) -> Vec<PathBuf> {
    let p = prefix(mac);
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir(state_dir))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&p) && n.ends_with(".tar.gz"))
        })
        .collect();
    // The time stamp sorts as text.
    out.sort();
    out
}

/// The newest snapshot of `mac`, if any.
pub fn newest(state_dir: &Path, mac: Mac) -> Option<PathBuf> {
    list(state_dir, mac).pop()
}

/// A snapshot being written.
pub struct Pending {
    file: tokio::fs::File,
    tmp: PathBuf,
    dest: PathBuf,
    bytes: u64,
    done: bool,
}

/// Starts a snapshot of `mac` taken for `why` (`scheduled`, `before-reboot`).
pub async fn begin(state_dir: &Path, mac: Mac, why: &str) -> Result<Pending, SecretsError> {
    let d = dir(state_dir);
    crate::config::atomic::create_private_dir(&d).map_err(io(&d))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let dest = d.join(format!("{}{stamp}-{why}.tar.gz", prefix(mac)));
    let tmp = d.join(format!(
        ".{}{stamp}.tmp{}-{:08x}",
        prefix(mac),
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut o = tokio::fs::OpenOptions::new();
    o.write(true).create_new(true).mode(0o600);
    let file = o.open(&tmp).await.map_err(io(&tmp))?;
    Ok(Pending {
        file,
        tmp,
        dest,
        bytes: 0,
        done: false,
    })
}

impl Pending {
    /// Appends a piece of the archive.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), SecretsError> {
        self.bytes += data.len() as u64;
        self.file.write_all(data).await.map_err(io(&self.tmp))
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Syncs, gives the snapshot its name and removes all but the newest `keep` of the
    /// node. Refuses (and removes) what is not a gzip archive.
    pub async fn commit(mut self, mac: Mac, keep: usize) -> Result<PathBuf, SecretsError> {
        self.file.flush().await.map_err(io(&self.tmp))?;
        self.file.sync_all().await.map_err(io(&self.tmp))?;
        let head = {
            let mut h = [0u8; 2];
            let f = std::fs::File::open(&self.tmp).map_err(io(&self.tmp))?;
            use std::io::Read;
            let n = (&f).take(2).read(&mut h).map_err(io(&self.tmp))?;
            h[..n].to_vec()
        };
        if head != [0x1f, 0x8b] {
            return Err(SecretsError::Bad {
                path: self.dest.clone(),
                message: format!("not a gzip archive ({} bytes): not kept", self.bytes),
            });
        }
        tokio::fs::rename(&self.tmp, &self.dest)
            .await
            .map_err(io(&self.dest))?;
        self.done = true;
        if let Some(state_dir) = self.dest.parent().and_then(Path::parent) {
            let all = list(state_dir, mac);
            let extra = all.len().saturating_sub(keep.max(1));
            for old in &all[..extra] {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(self.dest.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kept_newest_last_private_and_pruned() {
        let d = tempfile::tempdir().unwrap();
        let mac: Mac = "52:54:00:00:00:01".parse().unwrap();
        let other: Mac = "52:54:00:00:00:02".parse().unwrap();
        assert!(newest(d.path(), mac).is_none());
        let mut names = Vec::new();
        for i in 0..4u8 {
            let mut p = begin(d.path(), mac, "scheduled").await.unwrap();
            p.write(&[0x1f, 0x8b, i]).await.unwrap();
            names.push(p.commit(mac, 3).await.unwrap());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let mut p = begin(d.path(), other, "scheduled").await.unwrap();
        p.write(&[0x1f, 0x8b]).await.unwrap();
        p.commit(other, 3).await.unwrap();
        assert_eq!(list(d.path(), mac), names[1..].to_vec());
        assert_eq!(newest(d.path(), mac).as_ref(), names.last());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&names[3]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Not an archive: refused, and no temporary file left.
        let mut p = begin(d.path(), mac, "scheduled").await.unwrap();
        p.write(b"oops").await.unwrap();
        assert!(p.commit(mac, 3).await.is_err());
        let left: Vec<_> = std::fs::read_dir(dir(d.path()))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(left.len(), 4, "{left:?}");
    }
}
