use super::*;
use crate::engine::event::{ActionStatus, CloudPhase, Event, FetchKind, K3sFailure};

const MAC: &str = "52:54:00:00:00:01";
const T0: u64 = 1_800_000_000_000;

/// A record driven through `events` at the given offsets (ms after T0).
fn record(events: &[(u64, EventKind)]) -> NodeRecord {
    let mut r = NodeRecord::new(MAC.parse().unwrap());
    for (i, (at, kind)) in events.iter().enumerate() {
        r.apply(&Event {
            seq: i as u64 + 1,
            at_ms: T0 + at,
            mac: None,
            hostname: None,
            kind: kind.clone(),
        });
    }
    r
}

fn fetch(what: FetchKind, path: &str) -> EventKind {
    EventKind::HttpFetch {
        path: path.into(),
        client: "10.0.0.5".parse().unwrap(),
        what,
        status: 200,
        bytes: 1,
        ms: 1,
    }
}

fn to_initrd() -> Vec<(u64, EventKind)> {
    vec![
        (0, fetch(FetchKind::Script, "/boot.ipxe")),
        (1_000, fetch(FetchKind::Kernel, "/assets/vmlinuz-lts")),
        (2_000, fetch(FetchKind::Initrd, "/assets/initramfs-lts")),
    ]
}

fn d() -> Deadlines {
    Deadlines {
        nocloud: 60,
        ssh: 120,
        bootstrap: 300,
        k3s_start: 100,
        k3s_join: 200,
        ready: 50,
    }
}

#[test]
fn no_stall_before_the_deadline_and_one_after() {
    let r = record(&to_initrd());
    assert_eq!(r.state, NodeState::Initrd);
    assert_eq!(check(&r, T0 + 2_000 + 59_999, &d(), 22), None);
    let s = check(&r, T0 + 2_000 + 60_000, &d(), 22).expect("stalled");
    assert_eq!((s.step.as_str(), s.waited_s), ("initrd", 60));
    assert!(s.hint.contains("no network in the initramfs"), "{}", s.hint);
    assert!(s.hint.contains("ip=dhcp"), "{}", s.hint);
    assert!(s.last_seen.contains("Initrd"), "{}", s.last_seen);
    // A deadline of 0 is off.
    let off = Deadlines { nocloud: 0, ..d() };
    assert_eq!(check(&r, T0 + 10_000_000, &off, 22), None);
}

#[test]
fn modloop_without_nocloud_points_at_tiny_cloud() {
    let mut ev = to_initrd();
    ev.push((5_000, fetch(FetchKind::Modloop, "/assets/modloop-lts")));
    let s = check(&record(&ev), T0 + 100_000, &d(), 22).expect("stalled");
    assert!(s.hint.contains("ds= the last word"), "{}", s.hint);
}

#[test]
fn nocloud_without_ssh_names_the_port() {
    let mut ev = to_initrd();
    ev.push((10_000, fetch(FetchKind::MetaData, "/nocloud/x/meta-data")));
    let r = record(&ev);
    assert_eq!(check(&r, T0 + 10_000 + 119_000, &d(), 2222), None);
    let s = check(&r, T0 + 10_000 + 120_000, &d(), 2222).expect("stalled");
    assert_eq!(s.step, "config-fetched");
    assert!(s.hint.contains("port 2222") && s.hint.contains("sshd not started"));
}

#[test]
fn tiny_cloud_names_the_action_it_is_stuck_in() {
    let mut ev = to_initrd();
    ev.push((10_000, fetch(FetchKind::MetaData, "/nocloud/x/meta-data")));
    ev.push((
        20_000,
        EventKind::SshUp {
            addr: "10.0.0.5:22".parse().unwrap(),
        },
    ));
    ev.push((
        21_000,
        EventKind::TinyCloud {
            phase: CloudPhase::Main,
            action: "userdata_packages".into(),
            status: ActionStatus::Starting,
        },
    ));
    let r = record(&ev);
    assert_eq!(r.state, NodeState::TinyCloud);
    let s = check(&r, T0 + 21_000 + 300_000, &d(), 22).expect("stalled");
    assert!(s.hint.contains("main/userdata_packages"), "{}", s.hint);
}

#[test]
fn k3s_silent_or_waiting_after_start() {
    let mut ev = to_initrd();
    ev.push((10_000, fetch(FetchKind::MetaData, "/nocloud/x/meta-data")));
    ev.push((30_000, EventKind::TinyCloudComplete));
    ev.push((
        31_000,
        EventKind::K3s {
            step: crate::engine::event::K3sStep::Starting {
                version: "v1.30.1+k3s1".into(),
            },
        },
    ));
    let silent = record(&ev);
    let s = check(&silent, T0 + 31_000 + 200_000, &d(), 22).expect("stalled");
    assert!(s.hint.contains("went silent"), "{}", s.hint);
    ev.push((
        40_000,
        EventKind::NodeWaiting {
            reason: K3sFailure::ServerNotReady,
            summary: K3sFailure::ServerNotReady.summary(""),
            line: "l".into(),
        },
    ));
    let waiting = record(&ev);
    let s = check(&waiting, T0 + 31_000 + 200_000, &d(), 22).expect("stalled");
    assert!(s.hint.contains("waits for its k3s server"), "{}", s.hint);
    // Counted from reaching the step, not from the last event.
    assert_eq!(check(&waiting, T0 + 31_000 + 199_000, &d(), 22), None);
}

#[test]
fn ready_failed_and_early_states_never_stall() {
    let mut ev = to_initrd();
    ev.push((
        3_000,
        EventKind::NodeFailed {
            reason: K3sFailure::TokenMismatch,
            line: "l".into(),
            summary: "s".into(),
            msg: "m".into(),
        },
    ));
    assert_eq!(check(&record(&ev), T0 + 100_000_000, &d(), 22), None);
    let early = record(&to_initrd()[..2]);
    assert_eq!(early.state, NodeState::Kernel);
    assert_eq!(check(&early, T0 + 100_000_000, &d(), 22), None);
}
