//! The lease journal: `leases.json.journal` beside the lease file, one JSON line per
//! lease that changed, appended and `fdatasync`ed before the ACKs that wait on it go out.
//!
//! Why: every ACK waits until its lease is on disk ([`super::writer`]). Replacing the
//! whole lease file for that (temp file, fsync, rename, fsync the folder) took p50
//! 0.68 ms and p99 29 ms for a 100 KB file on the bench machine, and grew with the
//! table: at 5,000 DORA/s a third of the server's time went there and the ACK p99 was
//! 10 ms. Appending a few lines and `fdatasync`ing them took p99 0.5 ms on the same disk.
//!
//! The lease file stays the snapshot and the journal holds what changed since. Each
//! write is a batch with a sequence number one above the last, and the snapshot records
//! the number of the last batch it holds (`seq`). Reading applies the journal's lines
//! numbered above the snapshot's, in order. Each line is the final state of one MAC in
//! its batch (`put`: its bound lease; `drop`: no bound lease), so lines are idempotent
//! and their order inside a batch does not matter. A crash can leave:
//! - a half-written last line (the batch was never `fdatasync`ed, so no ACK waited on
//!   it): reading stops at the first line that is not whole and valid;
//! - a new snapshot with the old journal still there (the crash came between the rename
//!   and the truncation): its lines are numbered at or below the snapshot's and skipped.
//!
//! After a load with anything in the journal, and whenever the journal outgrows the
//! snapshot, the writer writes a snapshot and empties the journal before it appends
//! again, so nothing is ever appended after a torn line.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::leases::Lease;
use crate::mac::Mac;

/// The journal that goes with the lease file `leases`.
pub fn path_of(leases: &Path) -> PathBuf {
    let mut name = leases.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// One MAC's state after a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It holds this bound lease.
    Put(Lease),
    /// It holds no bound lease (released, expired, moved or given to another).
    Drop(Mac),
}

/// A journal line: `{"seq":N,"put":{…}}` or `{"seq":N,"drop":"52:54:…"}`.
#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    put: Option<Lease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drop: Option<Mac>,
}

/// What reading a journal found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The journal's size in bytes.
    pub bytes: u64,
    /// The highest batch number seen (applied or not).
    pub last_seq: u64,
    /// Lines applied (numbered above the snapshot's).
    pub applied: usize,
    /// Where reading stopped early: the 1-based line that was not whole and valid, and
    /// the bytes from it to the end that were left unread.
    pub torn: Option<(usize, u64)>,
}

/// Reads the journal at `path` (missing: empty) and hands every change numbered above
/// `after` to `apply`, in order.
pub fn replay(path: &Path, after: u64, mut apply: impl FnMut(Change)) -> std::io::Result<Replayed> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replayed::default()),
        Err(e) => return Err(e),
    };
    let mut out = Replayed {
        bytes: data.len() as u64,
        ..Replayed::default()
    };
    let mut at = 0usize;
    let mut number = 0usize;
    while at < data.len() {
        number += 1;
        let change = data[at..]
            .iter()
            .position(|&b| b == b'\n')
            .and_then(|end| {
                let line: Line = serde_json::from_slice(&data[at..at + end]).ok()?;
                Some((end, line))
            })
            .and_then(|(end, line)| {
                let change = match (line.put, line.drop) {
                    (Some(lease), None) if lease.bound => Change::Put(lease),
                    (None, Some(mac)) => Change::Drop(mac),
                    _ => return None,
                };
                Some((end, line.seq, change))
            });
        let Some((end, seq, change)) = change else {
            out.torn = Some((number, (data.len() - at) as u64));
            break;
        };
        out.last_seq = out.last_seq.max(seq);
        if seq > after {
            apply(change);
            out.applied += 1;
        }
        at += end + 1;
    }
    Ok(out)
}

/// The bytes of batch `seq`: one line per change.
pub fn encode(seq: u64, changes: Vec<Change>) -> Vec<u8> {
    let mut out = Vec::with_capacity(changes.len() * 128);
    for c in changes {
        let line = match c {
            Change::Put(lease) => Line {
                seq,
                put: Some(lease),
                drop: None,
            },
            Change::Drop(mac) => Line {
                seq,
                put: None,
                drop: Some(mac),
            },
        };
        // Plain data: serializing into a Vec cannot fail.
        if serde_json::to_writer(&mut out, &line).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

/// Appends `bytes` to the journal (created 0600, its folder 0700, if missing) and
/// `fdatasync`s them. Returns the journal's size after.
///
/// The file is opened for each batch, not kept open: a journal moved or deleted under a
/// running pxelab must fail the next write, not swallow leases into a file no one will
/// read.
pub fn append(path: &Path, bytes: &[u8]) -> std::io::Result<u64> {
    let folder = crate::config::atomic::folder_of(path);
    crate::config::atomic::create_private_dir(&folder)?;
    let existed = path.exists();
    let mut o = std::fs::OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    if !existed {
        crate::config::atomic::sync_folder(&folder);
    }
    Ok(f.metadata()?.len())
}

/// Empties the journal (durably); a missing one is already empty.
pub fn truncate(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => {
            f.set_len(0)?;
            f.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn lease(n: u8) -> Lease {
        Lease {
            mac: Mac([2, 0, 0, 0, 0, n]),
            ip: Ipv4Addr::new(10, 0, 0, n),
            expires: 1000,
            bound: true,
            hostname: None,
        }
    }

    fn read(path: &Path, after: u64) -> (Vec<Change>, Replayed) {
        let mut got = Vec::new();
        let r = replay(path, after, |c| got.push(c)).unwrap();
        (got, r)
    }

    #[test]
    fn batches_append_and_replay_in_order_above_the_snapshot() {
        let d = tempfile::tempdir().unwrap();
        let p = path_of(&d.path().join("state/leases.json"));
        assert!(p.ends_with("state/leases.json.journal"));
        assert_eq!(read(&p, 0).1, Replayed::default());
        let n1 = append(&p, &encode(1, vec![Change::Put(lease(1))])).unwrap();
        let b2 = encode(2, vec![Change::Put(lease(2)), Change::Drop(lease(1).mac)]);
        let n2 = append(&p, &b2).unwrap();
        assert_eq!(n2, n1 + b2.len() as u64);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(&d.path().join("state")), 0o700);
        let (all, r) = read(&p, 0);
        assert_eq!(
            all,
            vec![
                Change::Put(lease(1)),
                Change::Put(lease(2)),
                Change::Drop(lease(1).mac)
            ]
        );
        assert_eq!((r.last_seq, r.applied, r.torn, r.bytes), (2, 3, None, n2));
        // A snapshot that holds batch 1 skips it.
        let (after1, r) = read(&p, 1);
        assert_eq!(after1.len(), 2);
        assert_eq!(r.last_seq, 2);
        truncate(&p).unwrap();
        assert_eq!(read(&p, 0).0, vec![]);
        truncate(&d.path().join("none.journal")).unwrap();
    }

    /// A crash mid-append leaves a line cut anywhere: reading keeps every whole line
    /// before it and says where it stopped.
    #[test]
    fn a_torn_tail_keeps_the_whole_lines_before_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("leases.json.journal");
        let whole = encode(1, vec![Change::Put(lease(1)), Change::Put(lease(2))]);
        let next = encode(2, vec![Change::Put(lease(3))]);
        for cut in 1..next.len() {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&next[..cut]);
            std::fs::write(&p, &bytes).unwrap();
            let (got, r) = read(&p, 0);
            assert_eq!(
                got,
                vec![Change::Put(lease(1)), Change::Put(lease(2))],
                "{cut}"
            );
            assert_eq!(r.torn, Some((3, cut as u64)), "{cut}");
        }
        // Garbage and lines that say nothing stop reading too.
        for bad in [&b"{oops}\n"[..], b"{\"seq\":3}\n", b"\x00\x00\x00\n"] {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(bad);
            std::fs::write(&p, &bytes).unwrap();
            assert_eq!(read(&p, 0).1.torn, Some((3, bad.len() as u64)));
        }
    }
}
