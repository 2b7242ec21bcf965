//! An engine that mirrors a pxelab running elsewhere (`pxelab attach`), and what the
//! running one hands out to be mirrored.
//!
//! Why here: the attached console must show what the server's own console would. The
//! mirror is seeded with the server's records ([`Engine::records_at`] there,
//! [`Engine::mirror_reset`] here) and then applies each streamed event through the very
//! code a local event goes through ([`Engine::ingest`]), so states, timelines, boots and
//! failures are computed once, the same way. Nothing here touches a file or a socket.

use std::sync::atomic::Ordering;

use tokio::sync::broadcast;

use super::inventory::Inventory;
use super::{lock, Engine, Event, NodeRecord, ServerStatus, Snapshot};
use crate::config::Lab;

impl Engine {
    /// Every node's full record and the number of the last event applied to them: all
    /// events up to it are in the records, none after (numbers are taken under the same
    /// lock). A mirror applies only the streamed events numbered above it.
    pub fn records_at(&self) -> (u64, Vec<NodeRecord>) {
        let inv = lock(&self.inner.inventory);
        let seq = self.inner.seq.load(Ordering::Acquire);
        (seq, inv.iter().cloned().collect())
    }

    /// The last events (at most [`super::RECENT_CAP`], log lines aside), oldest first:
    /// what the event pane of a console that starts now has missed.
    pub fn recent_events(&self) -> Vec<Event> {
        lock(&self.inner.recent).iter().cloned().collect()
    }

    /// [`Engine::recent_events`] and a subscription to every event after them: none
    /// twice, none missed.
    pub fn subscribe_with_recent(&self) -> (broadcast::Receiver<Event>, Vec<Event>) {
        let recent = lock(&self.inner.recent);
        (self.inner.bus.subscribe(), recent.iter().cloned().collect())
    }

    /// Applies an event that happened on the mirrored server: its number, time and
    /// hostname are kept; the node, servers and bus are updated as for a local event.
    pub fn ingest(&self, ev: Event) {
        self.publish(ev, false);
    }

    /// Makes this engine a copy of a server's state: its lab (secrets redacted), its
    /// records as of event `seq`, its servers and counters (from `snap`), its recent
    /// events.
    pub fn mirror_reset(
        &self,
        lab: Lab,
        seq: u64,
        records: Vec<NodeRecord>,
        snap: &Snapshot,
        recent: Vec<Event>,
    ) {
        *lock(&self.inner.inventory) = Inventory::restore(records);
        *lock(&self.inner.recent) = recent
            .into_iter()
            .rev()
            .take(super::RECENT_CAP)
            .rev()
            .collect();
        self.put_lab(lab);
        self.inner.seq.store(seq, Ordering::Release);
        *lock(&self.inner.servers) = snap.servers.clone();
        self.mirror_counters(snap);
        self.bump();
    }

    /// Puts a server's lab in force here after it changed there (its `config-loaded`
    /// event has been ingested), announcing nothing.
    pub fn mirror_lab(&self, lab: Lab) {
        self.put_lab(lab);
        self.bump();
    }

    /// Takes a server's counters (some count what no event reports, e.g. dropped DHCP).
    pub fn mirror_counters(&self, snap: &Snapshot) {
        let c = &self.inner.counters;
        c.dhcp_dropped.store(snap.dhcp_dropped, Ordering::Relaxed);
        c.http_refused.store(snap.http_refused, Ordering::Relaxed);
        c.tftp_refused.store(snap.tftp_refused, Ordering::Relaxed);
        c.events.store(snap.events, Ordering::Relaxed);
        c.unknown_forgotten
            .store(snap.unknown_forgotten, Ordering::Relaxed);
        self.bump();
    }

    /// Sets one server's state as the mirror sees it (the link to the server itself).
    pub fn mirror_server(&self, status: ServerStatus) {
        {
            let mut s = lock(&self.inner.servers);
            match s.iter_mut().find(|x| x.source == status.source) {
                Some(x) => *x = status,
                None => s.push(status),
            }
        }
        self.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EventKind, NodeState};
    use super::*;
    use crate::mac::Mac;

    fn lab() -> Lab {
        let text = "name: t\nboot: {kernel: k}\nunknown: hold\nnodes:\n  - {mac: 52:54:00:00:00:01, hostname: a, role: k3s-server}\n";
        Lab::parse(std::path::Path::new("/nonexistent/lab.yaml"), text).unwrap()
    }

    #[test]
    fn a_mirror_seeded_then_fed_the_stream_equals_the_server() {
        let server = Engine::new(lab());
        let known: Mac = "52:54:00:00:00:01".parse().unwrap();
        let held: Mac = "52:54:00:00:00:99".parse().unwrap();
        server.emit(Some(known), super::super::tests::pxe_discover(false));
        server.emit(Some(held), super::super::tests::pxe_discover(false));
        server.decide(held);
        let mut rx = server.subscribe();
        let (seq, records) = server.records_at();
        let mirror = Engine::new(lab());
        mirror.mirror_reset(
            lab(),
            seq,
            records,
            &server.snapshot(),
            server.recent_events(),
        );
        // Later events reach the mirror through the stream (some before the seed's
        // number, which it must skip: here the seed is exact, so none).
        server.emit(
            Some(known),
            EventKind::LogLine {
                file: "messages".into(),
                line: "hello".into(),
            },
        );
        server.emit(Some(held), super::super::tests::pxe_discover(false));
        while let Ok(ev) = rx.try_recv() {
            assert!(ev.seq > seq);
            mirror.ingest(ev);
        }
        for mac in [known, held] {
            assert_eq!(mirror.node(&mac), server.node(&mac), "{mac}");
        }
        assert_eq!(mirror.node(&held).unwrap().state, NodeState::Held);
        let (s, m) = (server.snapshot(), mirror.snapshot());
        assert_eq!((s.nodes, s.events), (m.nodes, m.events));
        // The event pane's history too (log lines aside).
        assert_eq!(mirror.recent_events(), server.recent_events());
        assert_eq!(mirror.recent_events().len(), 4);
        // A local event after the mirror's continues its numbering.
        assert_eq!(
            mirror.emit(None, EventKind::ConfigLoaded { nodes: 1 }).seq,
            s.events + 1
        );
    }
}
