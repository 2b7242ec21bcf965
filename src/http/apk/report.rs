//! The cache's activity, counted per request and reported in summaries.
//!
//! A booting lab asks for dozens of packages per node: one `http-fetch` event each
//! would bury everything else in the console. Each answer is counted at once (the
//! engine's `apk_*` counters, in snapshots and the admin API), and an `apk-cache` event
//! says what happened since the previous one, at most once per [`REPORT_EVERY`]; a
//! failure to fetch from upstream carries its reason, so it is seen within seconds.

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::store::How;
use crate::engine::{ApkTally, Engine, EventKind};

/// At most one `apk-cache` event per this long.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// What happened since the last report.
#[derive(Debug, Default)]
pub struct Reporter {
    pending: Mutex<(Option<Instant>, ApkTally)>,
}

impl Reporter {
    /// Counts one answer (`Err`: the reason upstream could not give the file).
    pub fn count(&self, engine: &Engine, answer: &Result<How, String>, bytes: u64) {
        let c = engine.counters();
        let mut g = crate::engine::lock(&self.pending);
        let t = &mut g.1;
        match answer {
            Ok(How::Hit | How::Coalesced) => {
                c.apk_hits.fetch_add(1, Ordering::Relaxed);
                t.hits += 1;
            }
            Ok(How::Fetched) => {
                c.apk_fetched.fetch_add(1, Ordering::Relaxed);
                t.fetched += 1;
            }
            Ok(How::Stale) => {
                c.apk_hits.fetch_add(1, Ordering::Relaxed);
                t.stale += 1;
            }
            Err(e) => {
                c.apk_failed.fetch_add(1, Ordering::Relaxed);
                t.failed += 1;
                t.last_error = Some(e.clone());
            }
        }
        t.bytes += bytes;
        let due = g.0.is_none_or(|at| at.elapsed() >= REPORT_EVERY);
        if due {
            Self::report(engine, &mut g);
        }
    }

    /// Reports what is pending if [`REPORT_EVERY`] passed (the server calls this on a
    /// timer), or at once with `now`.
    pub fn flush(&self, engine: &Engine, now: bool) {
        let mut g = crate::engine::lock(&self.pending);
        let any = g.1 != ApkTally::default();
        if any && (now || g.0.is_none_or(|at| at.elapsed() >= REPORT_EVERY)) {
            Self::report(engine, &mut g);
        }
    }

    fn report(engine: &Engine, g: &mut (Option<Instant>, ApkTally)) {
        g.0 = Some(Instant::now());
        let tally = std::mem::take(&mut g.1);
        engine.emit(None, EventKind::ApkCache { tally });
    }
}
