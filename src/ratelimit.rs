//! At most one event per client address per period, for refusals a single host can
//! cause by the thousand (a slow-header flood, silent TFTP requests): each one is
//! counted, but the event stream and the console get one line per host per period
//! saying how many were left unsaid, not thousands.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at most; past that, entries older than a period are dropped,
/// and if that is not enough the table starts afresh (a few extra events, never
/// unbounded memory).
const MAX_KEYS: usize = 4096;

/// Per-address event limiter.
#[derive(Debug)]
pub struct EventLimiter {
    every: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u64)>>,
}

impl EventLimiter {
    /// One event per address every `every`.
    pub fn new(every: Duration) -> EventLimiter {
        EventLimiter {
            every,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an event for `ip` may go out now: `Some(n)` with the number of events
    /// held back since the last one, `None` to stay quiet (this one is counted).
    pub fn allow(&self, ip: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let mut seen = crate::engine::lock(&self.seen);
        if seen.len() >= MAX_KEYS && !seen.contains_key(&ip) {
            let every = self.every;
            seen.retain(|_, (at, _)| now.duration_since(*at) < every);
            if seen.len() >= MAX_KEYS {
                seen.clear();
            }
        }
        match seen.get_mut(&ip) {
            Some((at, held)) if now.duration_since(*at) < self.every => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let n = *held;
                *at = now;
                *held = 0;
                Some(n)
            }
            None => {
                seen.insert(ip, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_address_per_period_with_the_rest_counted() {
        let l = EventLimiter::new(Duration::from_millis(200));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        assert_eq!(l.allow(a), Some(0));
        for _ in 0..1000 {
            assert_eq!(l.allow(a), None);
        }
        assert_eq!(l.allow(b), Some(0), "another address is not held back");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(l.allow(a), Some(1000));
        // Bounded memory whatever the number of addresses.
        for n in 0..(MAX_KEYS as u32 * 2) {
            l.allow(IpAddr::from(n.to_be_bytes()));
        }
        assert!(crate::engine::lock(&l.seen).len() <= MAX_KEYS);
    }
}
