use super::*;

fn mac(n: u32) -> Mac {
    let b = n.to_be_bytes();
    Mac([0x02, 0, b[0], b[1], b[2], b[3]])
}

fn ev(seq: u64, kind: EventKind) -> Event {
    Event {
        seq,
        at_ms: seq * 1000,
        mac: Some(mac(7)),
        hostname: None,
        kind,
    }
}

#[test]
fn a_power_cycle_of_ipxe_firmware_is_a_new_boot_with_the_last_one_kept() {
    use crate::engine::event::K3sStep;
    let listed: NodeEntry = yaml_serde::from_str(&format!(
        "{{mac: '{}', hostname: n, role: k3s-agent, ip: 10.0.0.5}}",
        mac(7)
    ))
    .unwrap();
    let mut inv = Inventory::new();
    inv.sync_with(std::slice::from_ref(&listed));
    let discover = EventKind::DhcpDiscover {
        msg: "discover".into(),
        arch: Some(0),
        vendor_class: Some("PXEClient:Arch:00000:UNDI:002001".into()),
        uuid: None,
        relay: None,
        ipxe: true,
        pxe_port: false,
    };
    let script = EventKind::HttpFetch {
        path: "/boot.ipxe".into(),
        client: "10.0.0.5".parse().unwrap(),
        what: FetchKind::Script,
        status: 200,
        bytes: 1,
        ms: 1,
    };
    let rec = inv.entry(mac(7));
    let mut seq = 0;
    let mut feed = |rec: &mut NodeRecord, kind: EventKind| {
        seq += 1;
        rec.apply(&ev(seq, kind));
    };
    feed(rec, discover.clone());
    feed(rec, script.clone());
    feed(
        rec,
        EventKind::LogLine {
            file: "k3s.log".into(),
            line: "first boot".into(),
        },
    );
    feed(
        rec,
        EventKind::K3s {
            step: K3sStep::Joined,
        },
    );
    assert_eq!((rec.state, rec.boot), (NodeState::Joined, 1));
    // Powered off and on: QEMU's ROM asks as iPXE first thing.
    feed(rec, discover);
    assert_eq!((rec.state, rec.boot), (NodeState::IpxeLoaded, 2));
    assert_eq!(
        rec.timeline.len(),
        1,
        "the new boot's timeline starts fresh"
    );
    assert!(rec.log_tail.is_empty());
    assert_eq!(rec.boot_started_ms, Some(5000));
    let prev = rec.previous_boot.as_ref().expect("previous boot kept");
    assert_eq!((prev.number, prev.state), (1, NodeState::Joined));
    assert_eq!(prev.timeline.len(), 3);
    assert_eq!(prev.log_tail.len(), 1);
    assert_eq!(prev.started_ms, Some(1000));
    // The new boot moves on normally.
    feed(rec, script.clone());
    assert_eq!((rec.state, rec.boot), (NodeState::ScriptServed, 2));
    feed(
        rec,
        EventKind::K3s {
            step: K3sStep::Joined,
        },
    );
    // Another host asking for this node's script does not restart it; the node, at
    // its fixed address, does.
    let mut foreign = script.clone();
    if let EventKind::HttpFetch { client, .. } = &mut foreign {
        *client = "10.0.0.66".parse().unwrap();
    }
    feed(rec, foreign);
    assert_eq!((rec.state, rec.boot), (NodeState::Joined, 2));
    feed(rec, script);
    assert_eq!((rec.state, rec.boot), (NodeState::ScriptServed, 3));
}

#[test]
fn unknown_machines_are_bounded_oldest_first_and_known_ones_kept() {
    let listed: NodeEntry = yaml_serde::from_str(&format!(
        "{{mac: '{}', hostname: n, role: k3s-agent}}",
        mac(0)
    ))
    .unwrap();
    let mut inv = Inventory::new();
    inv.sync_with(std::slice::from_ref(&listed));
    let extra = 10;
    for n in 1..=(UNKNOWN_CAP as u32 + extra) {
        inv.entry(mac(n));
    }
    assert_eq!(inv.len(), UNKNOWN_CAP + 1);
    assert_eq!(inv.forgotten(), u64::from(extra));
    assert!(
        inv.get(&mac(0)).is_some_and(|r| r.known),
        "a listed node stays"
    );
    assert!(inv.get(&mac(1)).is_none() && inv.get(&mac(extra)).is_none());
    assert!(inv.get(&mac(extra + 1)).is_some());
    // A machine seen again after being forgotten is simply new again.
    inv.entry(mac(1));
    assert!(inv.get(&mac(1)).is_some());
    assert!(inv.get(&mac(extra + 1)).is_none());
    assert_eq!(inv.len(), UNKNOWN_CAP + 1);
    // Adopted (listed) machines leave the queue's reach.
    let adopted: NodeEntry = yaml_serde::from_str(&format!(
        "{{mac: '{}', hostname: m, role: k3s-agent}}",
        mac(extra + 2)
    ))
    .unwrap();
    inv.sync_with(&[listed, adopted]);
    for n in 0..(UNKNOWN_CAP as u32) {
        inv.entry(mac(1_000_000 + n));
    }
    assert!(inv.get(&mac(0)).is_some_and(|r| r.known));
    assert!(inv.get(&mac(extra + 2)).is_some_and(|r| r.known));
    assert_eq!(inv.len(), UNKNOWN_CAP + 2);
}

/// Heap and inline bytes a record holds at least (its struct, its deques' slots, the
/// strings in them): what the memory bound of issue 16 is made of.
fn record_bytes(r: &NodeRecord) -> usize {
    fn deque(t: &VecDeque<TimelineEntry>, l: &VecDeque<String>) -> usize {
        t.capacity() * std::mem::size_of::<TimelineEntry>()
            + t.iter()
                .map(|e| {
                    e.text.capacity()
                        + match &e.kind {
                            Cow::Owned(k) => k.capacity(),
                            Cow::Borrowed(_) => 0,
                        }
                })
                .sum::<usize>()
            + l.capacity() * std::mem::size_of::<String>()
            + l.iter().map(String::capacity).sum::<usize>()
    }
    std::mem::size_of::<NodeRecord>()
        + deque(&r.timeline, &r.log_tail)
        + r.previous_boot
            .as_deref()
            .map_or(0, |p| deque(&p.timeline, &p.log_tail))
        + r.last_event.as_ref().map_or(0, String::capacity)
}

fn hold_round(m: Mac, seq: u64) -> Event {
    Event {
        seq,
        at_ms: seq * 3000,
        mac: Some(m),
        hostname: None,
        kind: EventKind::HttpFetch {
            path: format!("/boot.ipxe?mac={m}"),
            client: "127.1.0.10".parse().unwrap(),
            what: FetchKind::HoldScript,
            status: 200,
            bytes: 190,
            ms: 0,
        },
    }
}

#[test]
fn a_machine_not_in_the_lab_keeps_a_short_history_so_the_unknown_cap_fits_in_memory() {
    let m = mac(9);
    let mut inv = Inventory::new();
    let log = |seq: u64| Event {
        seq,
        at_ms: seq,
        mac: Some(m),
        hostname: None,
        kind: EventKind::LogLine {
            file: "messages".into(),
            line: format!("syslog line {seq} of a machine lab.yaml does not list"),
        },
    };
    // Held in the wait loop far past every cap, and talking to syslog.
    for seq in 0..1000 {
        inv.entry(m).apply(&hold_round(m, seq));
        inv.entry(m).apply(&log(seq));
    }
    let rec = inv.get(&m).unwrap();
    assert_eq!(rec.timeline.len(), UNKNOWN_TIMELINE_CAP);
    assert_eq!(rec.log_tail.len(), UNKNOWN_LOG_CAP);
    assert_eq!(
        rec.timeline.back().unwrap().at_ms,
        999 * 3000,
        "the newest kept"
    );
    assert!(matches!(rec.timeline[0].kind, Cow::Borrowed("http-fetch")));
    // Its share of the bound: 4,096 of them in well under half of 64 MB (the whole
    // record, both boots' histories full, not just this boot's).
    let one = record_bytes(rec);
    assert!(one < 10 * 1024, "{one} bytes for one unknown machine");
    assert!(
        2 * one * UNKNOWN_CAP < 64 << 20,
        "{one} bytes × {UNKNOWN_CAP}"
    );

    // Listed in lab.yaml (adopted): the long history applies from then on.
    let listed: NodeEntry = yaml_serde::from_str(&format!(
        "{{mac: '{m}', hostname: n, role: k3s-agent, ip: 10.0.0.5}}"
    ))
    .unwrap();
    inv.sync_with(std::slice::from_ref(&listed));
    for seq in 1000..2000 {
        inv.entry(m).apply(&hold_round(m, seq));
        inv.entry(m).apply(&log(seq));
    }
    let rec = inv.get(&m).unwrap();
    assert_eq!(rec.timeline.len(), TIMELINE_CAP);
    assert_eq!(rec.log_tail.len(), LOG_CAP);
    // Out of lab.yaml again: cut back to the short history, newest kept, room returned.
    inv.sync_with(&[]);
    let rec = inv.get(&m).unwrap();
    assert_eq!(rec.timeline.len(), UNKNOWN_TIMELINE_CAP);
    assert_eq!(rec.log_tail.len(), UNKNOWN_LOG_CAP);
    assert_eq!(rec.timeline.back().unwrap().at_ms, 1999 * 3000);
    assert!(rec.timeline.capacity() < 2 * UNKNOWN_TIMELINE_CAP);
    assert!(rec.log_tail.capacity() < 2 * UNKNOWN_LOG_CAP);
    assert!(record_bytes(rec) < 10 * 1024);
}
