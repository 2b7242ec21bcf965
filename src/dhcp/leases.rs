//! Server-mode leases: who holds which address until when, kept in memory and in
//! `.pxelab/leases.json` (or `dhcp.leases_file`), replaced atomically
//! ([`crate::config::atomic::write_atomic`]) so a crash leaves the old file or the new one.
//!
//! Only bound leases are written; offers live in memory for [`OFFER_SECS`]. The file is
//! the snapshot; what changed since is in its journal ([`super::journal`]), both written
//! by [`super::writer`] and both read back at start, so a restarted pxelab keeps every
//! address where it was.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::journal::{self, Change, Replayed};
use crate::mac::Mac;

/// How long an offered address is kept for the client that was offered it.
pub const OFFER_SECS: u64 = 60;
/// How long a declined address (in use by someone unknown) is skipped.
pub const DECLINE_SECS: u64 = 600;
/// Most declined addresses remembered; past it the one declined first is forgotten
/// first, so no stream of DECLINEs can grow memory.
pub const DECLINED_CAP: usize = 256;

/// When a lease granted at `now` for `lease_secs` ends: never (`u64::MAX`, which
/// [`Leases::expire`] never reaches) for an infinite lease.
pub fn expiry(now: u64, lease_secs: u32) -> u64 {
    if lease_secs == crate::config::net::INFINITE_LEASE {
        u64::MAX
    } else {
        now.saturating_add(u64::from(lease_secs))
    }
}

/// One lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The client.
    pub mac: Mac,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Unix seconds when it ends.
    pub expires: u64,
    /// Bound (ACKed) or only offered.
    #[serde(default = "yes")]
    pub bound: bool,
    /// The hostname given, for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    /// The last journal batch this snapshot holds (0 in files from before the journal).
    #[serde(default)]
    seq: u64,
    leases: Vec<Lease>,
}

/// A lease file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// I/O.
    #[error("lease file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a lease file.
    #[error("lease file {path} is not valid: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// Encodes leases as the file's contents (compact JSON), holding journal batches up to
/// `seq`.
pub fn encode(seq: u64, leases: Vec<Lease>) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = encode_to(seq, leases, &mut out);
    out
}

/// Writes leases as the file's contents (the same bytes as [`encode`]) to `w`.
pub fn encode_to(seq: u64, leases: Vec<Lease>, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let f = File {
        version: 1,
        seq,
        leases,
    };
    serde_json::to_writer(w, &f).map_err(std::io::Error::other)
}

/// What [`Leases::load`] found on disk, for the writer to go on from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The snapshot's size in bytes (0: none).
    pub snapshot_bytes: u64,
    /// The highest batch number in the snapshot or the journal.
    pub seq: u64,
    /// What the journal held.
    pub journal: Replayed,
}

/// The lease table.
#[derive(Debug, Default)]
pub struct Leases {
    by_mac: BTreeMap<Mac, Lease>,
    by_ip: BTreeMap<Ipv4Addr, Mac>,
    declined: BTreeMap<Ipv4Addr, u64>,
    /// MACs whose bound lease changed since the last [`Leases::take_changed`].
    changed: BTreeSet<Mac>,
    loaded: Loaded,
    /// The address after the last one inserted: where a search for a free one starts.
    hint: Option<Ipv4Addr>,
}

impl Leases {
    /// Reads the lease file at `path` and then its journal; a missing file is an empty
    /// table. A journal cut short by a crash keeps its whole lines
    /// ([`journal::replay`]).
    pub fn load(path: &Path) -> Result<Leases, LeaseError> {
        let io = |source| LeaseError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut l = Leases::default();
        let mut seq = 0;
        match std::fs::read(path) {
            Ok(data) => {
                let f: File =
                    serde_json::from_slice(&data).map_err(|source| LeaseError::Format {
                        path: path.to_path_buf(),
                        source,
                    })?;
                for lease in f.leases.into_iter().filter(|l| l.bound) {
                    l.insert(lease);
                }
                seq = f.seq;
                l.loaded.snapshot_bytes = data.len() as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(io(source)),
        }
        let jpath = journal::path_of(path);
        let replayed =
            journal::replay(&jpath, seq, |c| l.apply(c)).map_err(|source| LeaseError::Io {
                path: jpath.clone(),
                source,
            })?;
        l.loaded.seq = seq.max(replayed.last_seq);
        l.loaded.journal = replayed;
        l.changed.clear();
        Ok(l)
    }

    /// What the last [`Leases::load`] found.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// Applies a journal line.
    fn apply(&mut self, change: Change) {
        match change {
            Change::Put(lease) => self.insert(lease),
            Change::Drop(mac) => {
                self.remove(&mac);
            }
        }
    }

    /// The bound leases (cheap to take under a lock; encode with [`encode`] outside it).
    pub fn bound(&self) -> Vec<Lease> {
        self.by_mac.values().filter(|l| l.bound).cloned().collect()
    }

    /// Takes the MACs whose bound lease changed since the last call.
    pub fn take_changed(&mut self) -> Vec<Mac> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    /// Whether any bound lease changed since the last [`Leases::take_changed`].
    pub fn has_changed(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Gives back MACs taken by [`Leases::take_changed`] whose write failed.
    pub fn restore_changed(&mut self, macs: Vec<Mac>) {
        self.changed.extend(macs);
    }

    /// The journal lines for `macs`: each one's state now.
    pub fn changes_of(&self, macs: &[Mac]) -> Vec<Change> {
        macs.iter()
            .map(|mac| match self.by_mac.get(mac) {
                Some(l) if l.bound => Change::Put(l.clone()),
                _ => Change::Drop(*mac),
            })
            .collect()
    }

    /// Where a search for a free address should start.
    pub fn hint(&self) -> Option<Ipv4Addr> {
        self.hint
    }

    /// The lease of a MAC (expired or not).
    pub fn of_mac(&self, mac: &Mac) -> Option<&Lease> {
        self.by_mac.get(mac)
    }

    /// Who holds `ip` right now (an unexpired offer or lease).
    pub fn holder(&self, ip: Ipv4Addr, now: u64) -> Option<Mac> {
        let mac = self.by_ip.get(&ip)?;
        self.by_mac
            .get(mac)
            .filter(|l| l.expires > now)
            .map(|l| l.mac)
    }

    /// Whether `ip` was declined recently.
    pub fn declined(&self, ip: Ipv4Addr, now: u64) -> bool {
        self.declined.get(&ip).is_some_and(|&t| t > now)
    }

    /// Records or replaces the lease of `lease.mac`.
    pub fn insert(&mut self, lease: Lease) {
        if let Some(old) = self.by_mac.remove(&lease.mac) {
            if self.by_ip.get(&old.ip) == Some(&old.mac) {
                self.by_ip.remove(&old.ip);
            }
            if old.bound {
                self.changed.insert(old.mac);
            }
        }
        // An address moves to its new holder; the previous holder's record goes.
        if let Some(prev) = self.by_ip.insert(lease.ip, lease.mac) {
            if prev != lease.mac {
                if let Some(p) = self.by_mac.remove(&prev) {
                    if p.bound {
                        self.changed.insert(p.mac);
                    }
                }
            }
        }
        if lease.bound {
            self.changed.insert(lease.mac);
        }
        self.hint = u32::from(lease.ip).checked_add(1).map(Ipv4Addr::from);
        self.by_mac.insert(lease.mac, lease);
    }

    /// Removes the lease of `mac`, returning it.
    pub fn remove(&mut self, mac: &Mac) -> Option<Lease> {
        let old = self.by_mac.remove(mac)?;
        if self.by_ip.get(&old.ip) == Some(mac) {
            self.by_ip.remove(&old.ip);
        }
        if old.bound {
            self.changed.insert(old.mac);
        }
        Some(old)
    }

    /// Marks `ip` declined (someone else answers ARP for it), within [`DECLINED_CAP`].
    pub fn decline(&mut self, ip: Ipv4Addr, now: u64) {
        self.declined.retain(|_, t| *t > now);
        if !self.declined.contains_key(&ip) && self.declined.len() >= DECLINED_CAP {
            let oldest = self
                .declined
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(ip, _)| *ip);
            if let Some(o) = oldest {
                self.declined.remove(&o);
            }
        }
        self.declined.insert(ip, now + DECLINE_SECS);
    }

    /// How many addresses are declined now.
    pub fn declined_count(&self) -> usize {
        self.declined.len()
    }

    /// Bound leases that ended at or before `now` and were not yet reported; each is
    /// reported once (it stays in the table so the client gets the same address back).
    pub fn expire(&mut self, now: u64) -> Vec<Lease> {
        let mut out = Vec::new();
        for l in self.by_mac.values_mut() {
            if l.bound && l.expires <= now {
                l.bound = false;
                out.push(l.clone());
            }
        }
        self.changed.extend(out.iter().map(|l| l.mac));
        self.declined.retain(|_, t| *t > now);
        out
    }

    /// Number of entries (offers and leases).
    pub fn len(&self) -> usize {
        self.by_mac.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_mac.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(n: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, n])
    }

    #[test]
    fn table_keeps_one_holder_per_address_and_round_trips() {
        let mut t = Leases::default();
        let ip: Ipv4Addr = "10.0.0.10".parse().unwrap();
        t.insert(Lease {
            mac: m(1),
            ip,
            expires: 100,
            bound: true,
            hostname: None,
        });
        assert_eq!(t.holder(ip, 50), Some(m(1)));
        assert_eq!(t.holder(ip, 100), None);
        t.insert(Lease {
            mac: m(2),
            ip,
            expires: 200,
            bound: true,
            hostname: None,
        });
        assert!(t.of_mac(&m(1)).is_none());
        assert_eq!(t.holder(ip, 150), Some(m(2)));
        assert_eq!(t.take_changed(), vec![m(1), m(2)]);
        assert!(t.take_changed().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.json");
        // Streamed (as the lease writer does) or encoded whole: the same bytes.
        let mut streamed = Vec::new();
        encode_to(0, t.bound(), &mut streamed).unwrap();
        assert_eq!(streamed, encode(0, t.bound()));
        std::fs::write(&p, &streamed).unwrap();
        let back = Leases::load(&p).unwrap();
        assert_eq!(back.of_mac(&m(2)).unwrap().ip, ip);
        assert!(Leases::load(&dir.path().join("none.json"))
            .unwrap()
            .is_empty());
        std::fs::write(&p, b"{oops").unwrap();
        assert!(matches!(Leases::load(&p), Err(LeaseError::Format { .. })));
    }

    #[test]
    fn the_declined_set_is_bounded_oldest_first() {
        let mut t = Leases::default();
        let ip = |n: u32| Ipv4Addr::from(0x0a00_0000 + n);
        for n in 0..(DECLINED_CAP as u32 + 100) {
            t.decline(ip(n), 1000 + u64::from(n));
        }
        assert_eq!(t.declined_count(), DECLINED_CAP);
        assert!(!t.declined(ip(0), 1000), "the oldest went first");
        assert!(t.declined(ip(DECLINED_CAP as u32 + 99), 1000));
        // Expired ones leave on their own.
        t.decline(ip(1), 1000 + DECLINE_SECS + 10_000);
        assert_eq!(t.declined_count(), 1);
    }

    #[test]
    fn an_infinite_lease_never_expires() {
        let mut t = Leases::default();
        let mac: Mac = "52:54:00:00:00:09".parse().unwrap();
        t.insert(Lease {
            mac,
            ip: Ipv4Addr::new(10, 0, 0, 9),
            expires: expiry(1_000, crate::config::net::INFINITE_LEASE),
            bound: true,
            hostname: None,
        });
        assert_eq!(expiry(1_000, 3600), 4_600);
        for now in [1_001, 4_600, u64::MAX - 1] {
            assert!(t.expire(now).is_empty(), "expired at {now}");
            assert_eq!(t.holder(Ipv4Addr::new(10, 0, 0, 9), now), Some(mac));
        }
        // It survives a restart: the file keeps u64::MAX as it is.
        let back: File =
            serde_json::from_slice(&encode(0, vec![t.of_mac(&mac).unwrap().clone()])).unwrap();
        assert_eq!(back.leases[0].expires, u64::MAX);
    }

    #[test]
    fn expiry_is_reported_once() {
        let mut t = Leases::default();
        t.insert(Lease {
            mac: m(1),
            ip: "10.0.0.10".parse().unwrap(),
            expires: 10,
            bound: true,
            hostname: None,
        });
        assert_eq!(t.expire(5).len(), 0);
        assert_eq!(t.expire(10).len(), 1);
        assert_eq!(t.expire(20).len(), 0);
    }

    /// The snapshot and its journal read back as one table: lines the snapshot already
    /// holds are skipped, later ones applied, and a torn tail costs only itself.
    #[test]
    fn a_snapshot_and_its_journal_load_as_one_table() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.json");
        let l = |n: u8, ip: u8| Lease {
            mac: m(n),
            ip: Ipv4Addr::new(10, 0, 0, ip),
            expires: 1000,
            bound: true,
            hostname: None,
        };
        // Snapshot at batch 2: m1 at .1, m2 at .2.
        std::fs::write(&p, encode(2, vec![l(1, 1), l(2, 2)])).unwrap();
        let mut j = journal::encode(2, vec![Change::Drop(m(1))]);
        j.extend(journal::encode(
            3,
            vec![Change::Put(l(3, 3)), Change::Drop(m(2))],
        ));
        j.extend(journal::encode(4, vec![Change::Put(l(4, 3))]));
        j.extend(b"{\"seq\":5,\"put\":{\"mac\":\"02:00");
        std::fs::write(journal::path_of(&p), &j).unwrap();
        let t = Leases::load(&p).unwrap();
        // Batch 2 was in the snapshot: m1 stays.
        assert_eq!(t.of_mac(&m(1)).unwrap().ip, Ipv4Addr::new(10, 0, 0, 1));
        assert!(t.of_mac(&m(2)).is_none());
        // m4 took .3 from m3.
        assert!(t.of_mac(&m(3)).is_none());
        assert_eq!(t.holder(Ipv4Addr::new(10, 0, 0, 3), 5), Some(m(4)));
        let loaded = t.loaded();
        assert_eq!(loaded.seq, 4);
        assert_eq!(loaded.journal.applied, 3);
        assert_eq!(loaded.journal.torn.map(|(line, _)| line), Some(5));
        assert!(loaded.snapshot_bytes > 0);
    }
}
