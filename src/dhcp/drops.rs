//! Dropped packets: counted exactly, reported at most once a second.
//!
//! Every dropped packet used to be its own `dhcp-dropped` event: 45,000 garbage packets
//! made 9.4 MB of stdout and pushed everything else out of the console. Now the counter
//! (`dhcp_dropped`) still counts each one, and one event a second at most carries how
//! many were dropped since the last, by reason, with the last sender and reason.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::engine::{Engine, EventKind};

/// At most one event per this long.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Distinct reasons kept per event; the rest are counted under `other`.
const MAX_REASONS: usize = 16;

/// The drops of one DHCP server (shared by its listeners).
#[derive(Debug, Default)]
pub struct Drops {
    state: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    last_report: Option<Instant>,
    count: u64,
    by_reason: BTreeMap<String, u64>,
    last: Option<(SocketAddr, String)>,
}

/// A reason without the MAC, addresses and numbers that make each one unique, so that
/// drops of one kind add up under one key (`relayed by …, which is not in dhcp.relays`).
pub fn reason_kind(reason: &str) -> String {
    let numeric = |w: &str| w.chars().any(|c| c.is_ascii_digit());
    let words: Vec<&str> = reason
        .split_whitespace()
        .enumerate()
        // A leading `52:54:00:…:` names the client: not part of the kind.
        .filter(|(i, w)| !(*i == 0 && numeric(w) && w.ends_with(':')))
        .map(|(_, w)| if numeric(w) { "…" } else { w })
        .collect();
    words.join(" ").chars().take(80).collect()
}

impl Drops {
    /// Counts a dropped packet and reports it now if a second passed since the last
    /// report, else with the next one.
    pub fn drop_packet(&self, engine: &Engine, from: SocketAddr, reason: String) {
        engine
            .counters()
            .dhcp_dropped
            .fetch_add(1, Ordering::Relaxed);
        let mut p = crate::engine::lock(&self.state);
        p.count += 1;
        let kind = reason_kind(&reason);
        let key = if p.by_reason.len() < MAX_REASONS || p.by_reason.contains_key(&kind) {
            kind
        } else {
            "other".to_string()
        };
        *p.by_reason.entry(key).or_default() += 1;
        p.last = Some((from, reason));
        if p.last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            Self::report(engine, &mut p);
        }
    }

    /// Reports what is pending if a second passed since the last report (the listeners
    /// call this on a timer), or at once with `now`.
    pub fn flush(&self, engine: &Engine, now: bool) {
        let mut p = crate::engine::lock(&self.state);
        if p.count > 0 && (now || p.last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY)) {
            Self::report(engine, &mut p);
        }
    }

    fn report(engine: &Engine, p: &mut Pending) {
        let Some((from, reason)) = p.last.take() else {
            return;
        };
        p.last_report = Some(Instant::now());
        let count = std::mem::take(&mut p.count);
        let by_reason = std::mem::take(&mut p.by_reason);
        engine.emit(
            None,
            EventKind::DhcpDropped {
                from,
                reason,
                count,
                by_reason,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_of_one_kind_share_a_key() {
        assert_eq!(
            reason_kind("52:54:00:00:00:01: relayed by 10.1.0.1, which is not in dhcp.relays"),
            "relayed by … which is not in dhcp.relays"
        );
        assert_eq!(reason_kind("bad magic cookie"), "bad magic cookie");
        assert_eq!(
            reason_kind("truncated: 12 bytes, a DHCP message needs at least 240"),
            reason_kind("truncated: 99 bytes, a DHCP message needs at least 240")
        );
    }

    /// A flood: the counter counts each packet, the events are few and add up to it.
    #[tokio::test]
    async fn a_flood_is_counted_exactly_and_reported_once_a_second() {
        let lab = crate::config::Lab::parse(
            std::path::Path::new("/tmp/lab.yaml"),
            "name: t\nboot: {kernel: k}\n",
        )
        .unwrap();
        let engine = Engine::new(lab);
        let mut rx = engine.subscribe();
        let drops = Drops::default();
        let from: SocketAddr = "10.0.0.9:68".parse().unwrap();
        let start = Instant::now();
        let n = 45_000u64;
        for i in 0..n {
            drops.drop_packet(&engine, from, format!("truncated: {} bytes", i % 240));
            if i % 5000 == 0 {
                drops.flush(&engine, false);
            }
        }
        drops.flush(&engine, true);
        let secs = start.elapsed().as_secs();
        assert_eq!(engine.counters().dhcp_dropped.load(Ordering::Relaxed), n);
        let (mut events, mut total) = (0u64, 0u64);
        while let Ok(ev) = rx.try_recv() {
            if let EventKind::DhcpDropped {
                count, by_reason, ..
            } = ev.kind
            {
                events += 1;
                total += count;
                assert_eq!(by_reason.values().sum::<u64>(), count);
                assert_eq!(by_reason.len(), 1, "{by_reason:?}");
            }
        }
        assert_eq!(total, n, "the events add up to the counter");
        assert!(events <= secs + 2, "{events} events in {secs} s");
    }
}
