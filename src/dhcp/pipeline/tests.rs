//! Table tests of server mode's pipeline: one row per (request kind, lease-table state,
//! `unknown:` policy) → the typed outcome and the requesting client's lease afterwards.
//! Every row runs the real steps over a real lease table; the reply step has its own
//! test below (the words events carry).

use std::net::Ipv4Addr;

use super::*;
use crate::config::plan::DhcpPlan;
use crate::config::UnknownPolicy;
use crate::dhcp::decide::Verdict;
use crate::dhcp::leases::Lease;
use crate::dhcp::request::{parse, tests::build};

const NOW: u64 = 10_000;
const PXE: &[u8] = b"PXEClient:Arch:00000:UNDI:002001";
const SID: &[u8] = &[10, 0, 0, 1];

/// A lease-table entry before the request: (MAC's last byte, address's last byte).
#[derive(Clone, Copy)]
enum Held {
    Offered(u8, u8),
    Bound(u8, u8),
    Expired(u8, u8),
    Declined(u8),
}

struct Row {
    name: &'static str,
    unknown: &'static str,
    state: &'static [Held],
    /// Option 53's value: 1 DISCOVER, 3 REQUEST, 4 DECLINE, 7 RELEASE, 8 INFORM.
    kind: u8,
    mac: u8,
    opts: &'static [(u8, &'static [u8])],
    ciaddr: [u8; 4],
    giaddr: [u8; 4],
    want: &'static str,
    /// The requesting MAC's lease afterwards: `-`, `offered IP` or `bound IP`.
    then: &'static str,
}

fn lab(unknown: &str) -> Lab {
    Lab::parse(
        std::path::Path::new("/tmp/lab.yaml"),
        &format!(
            "name: t\nserver_address: 10.0.0.1\nboot: {{kernel: k}}\nunknown: {unknown}\n\
             dhcp: {{mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.102], lease_time: 1h}}\n\
             nodes:\n  - {{mac: '02:00:00:00:00:0a', hostname: node-a, role: k3s-agent, ip: 10.0.0.10}}\n\
             \x20 - {{mac: '02:00:00:00:00:0b', hostname: node-b, role: k3s-agent}}\n\
             \x20 - {{mac: '02:00:00:00:00:0c', hostname: node-c, role: k3s-agent, ip: 10.0.0.102}}\n"
        ),
    )
    .unwrap()
}

fn mac(last: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, last])
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

/// The engine's boot policy over `lab`, as [`crate::engine::Engine::decide`] applies it.
fn policy(lab: &Lab, m: Mac) -> BootDecision {
    if let Some(n) = lab.node_by_mac(&m) {
        return BootDecision::Boot(n.clone());
    }
    match &lab.file.unknown {
        UnknownPolicy::Hold => BootDecision::Hold,
        UnknownPolicy::Ignore => BootDecision::Ignore,
        UnknownPolicy::Adopt(_) => {
            let mut n = lab.file.nodes[1].clone();
            n.mac = m;
            BootDecision::Boot(n)
        }
    }
}

fn table(state: &[Held]) -> Leases {
    let mut t = Leases::default();
    for h in state {
        let (m, a, expires, bound) = match *h {
            Held::Offered(m, a) => (m, a, NOW + 30, false),
            Held::Bound(m, a) => (m, a, NOW + 1000, true),
            Held::Expired(m, a) => (m, a, NOW - 1, true),
            Held::Declined(a) => {
                t.decline(ip(a), NOW - 10);
                continue;
            }
        };
        t.insert(Lease {
            mac: mac(m),
            ip: ip(a),
            expires,
            bound,
            hostname: None,
        });
    }
    t
}

fn refused(r: &Refused) -> &'static str {
    match r {
        Refused::OutsideSubnet(_) => "outside-subnet",
        Refused::ServerAddress(_) => "server-address",
        Refused::NotItsReservation { .. } => "not-its-reservation",
        Refused::OutsideRange(_) => "outside-range",
        Refused::ReservedForOther(_) => "reserved-for-other",
        Refused::HeldByOther { .. } => "held-by-other",
        Refused::Declined(_) => "declined",
    }
}

fn ignored(i: &Ignored) -> &'static str {
    match i {
        Ignored::RelayOutside { .. } => "relay-outside",
        Ignored::Policy(_) => "policy",
        Ignored::PoolExhausted(_) => "pool-exhausted",
        Ignored::RequestWithoutAddress(_) => "request-without-address",
        Ignored::DeclineWithoutAddress(_) => "decline-without-address",
        Ignored::DeclineNotHeld { .. } => "decline-not-held",
        Ignored::InformOutside { .. } => "inform-outside",
        Ignored::HeldPi(_) => "held-pi",
    }
}

/// `offer 10.0.0.100 +boot`, `nak held-by-other`, `ignore policy`, …
fn summary(o: &Outcome) -> String {
    let grant = |word: &str, g: &Grant| {
        let boot = if g.boot.is_some() { " +boot" } else { "" };
        format!("{word} {}{boot}", g.ip)
    };
    match o {
        Outcome::Offer(g) => grant("offer", g),
        Outcome::Ack(g) => grant("ack", g),
        Outcome::Renew(g) => grant("renew", g),
        Outcome::Inform(g) => grant("inform", g),
        Outcome::Nak(r) => format!("nak {}", refused(r)),
        Outcome::Released(a) => format!("released {a}"),
        Outcome::Declined(a) => format!("declined {a}"),
        Outcome::Pass(Passed::OtherServer(_)) => "pass other-server".into(),
        Outcome::Pass(Passed::NotHeld) => "pass not-held".into(),
        Outcome::Ignore(i) => format!("ignore {}", ignored(i)),
    }
}

fn lease_of(t: &Leases, m: Mac) -> String {
    match t.of_mac(&m) {
        None => "-".into(),
        Some(l) if l.bound => format!("bound {}", l.ip),
        Some(l) => format!("offered {}", l.ip),
    }
}

const Z: [u8; 4] = [0; 4];
const ALL_TAKEN: &[Held] = &[Held::Bound(7, 100), Held::Offered(8, 101)];

macro_rules! row {
    ($name:expr, $unknown:expr, $state:expr, $kind:expr, $mac:expr, $opts:expr, $ci:expr, $gi:expr => $want:expr, $then:expr) => {
        Row {
            name: $name,
            unknown: $unknown,
            state: $state,
            kind: $kind,
            mac: $mac,
            opts: $opts,
            ciaddr: $ci,
            giaddr: $gi,
            want: $want,
            then: $then,
        }
    };
}

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // DISCOVER
    row!("discover, new MAC", "hold", &[], 1, 1, &[], Z, Z => "offer 10.0.0.100", "offered 10.0.0.100"),
    row!("discover, new PXE client", "hold", &[], 1, 1, &[(60, PXE)], Z, Z => "offer 10.0.0.100 +boot", "offered 10.0.0.100"),
    row!("discover, known with reservation", "hold", &[], 1, 0x0a, &[(60, PXE)], Z, Z => "offer 10.0.0.10 +boot", "offered 10.0.0.10"),
    row!("discover, known without reservation", "hold", &[], 1, 0x0b, &[], Z, Z => "offer 10.0.0.100", "offered 10.0.0.100"),
    row!("discover, bound lease kept", "hold", &[Held::Bound(1, 101)], 1, 1, &[], Z, Z => "offer 10.0.0.101", "bound 10.0.0.101"),
    row!("discover, asks a free address", "hold", &[], 1, 1, &[(50, &[10, 0, 0, 101])], Z, Z => "offer 10.0.0.101", "offered 10.0.0.101"),
    row!("discover, asks a reserved address", "hold", &[], 1, 1, &[(50, &[10, 0, 0, 102])], Z, Z => "offer 10.0.0.100", "offered 10.0.0.100"),
    row!("discover, asks a taken address", "hold", &[Held::Bound(2, 100)], 1, 1, &[(50, &[10, 0, 0, 100])], Z, Z => "offer 10.0.0.101", "offered 10.0.0.101"),
    row!("discover, pool exhausted", "hold", ALL_TAKEN, 1, 1, &[], Z, Z => "ignore pool-exhausted", "-"),
    row!("discover, pool exhausted, reservation still given", "hold", ALL_TAKEN, 1, 0x0a, &[], Z, Z => "offer 10.0.0.10", "offered 10.0.0.10"),
    row!("discover, expired leases are free", "hold", &[Held::Bound(2, 100), Held::Expired(3, 101)], 1, 1, &[], Z, Z => "offer 10.0.0.101", "offered 10.0.0.101"),
    row!("discover, declined address skipped", "hold", &[Held::Declined(100)], 1, 1, &[], Z, Z => "offer 10.0.0.101", "offered 10.0.0.101"),
    row!("discover, unknown PXE under ignore", "ignore", &[], 1, 1, &[(60, PXE)], Z, Z => "ignore policy", "-"),
    row!("discover, unknown plain client under ignore", "ignore", &[], 1, 1, &[], Z, Z => "offer 10.0.0.100", "offered 10.0.0.100"),
    row!("discover, listed PXE under ignore", "ignore", &[], 1, 0x0b, &[(60, PXE)], Z, Z => "offer 10.0.0.100 +boot", "offered 10.0.0.100"),
    row!("discover, unknown PXE under adopt", "{adopt: k3s-agent}", &[], 1, 1, &[(60, PXE)], Z, Z => "offer 10.0.0.100 +boot", "offered 10.0.0.100"),
    row!("discover, unknown iPXE under hold", "hold", &[], 1, 1, &[(77, b"iPXE")], Z, Z => "offer 10.0.0.100 +boot", "offered 10.0.0.100"),
    row!("discover, relay in the subnet", "hold", &[], 1, 1, &[], Z, [10, 0, 0, 254] => "offer 10.0.0.100", "offered 10.0.0.100"),
    row!("discover, relay outside the subnet", "hold", &[], 1, 1, &[], Z, [10, 9, 0, 1] => "ignore relay-outside", "-"),
    // REQUEST
    row!("request, the offered address", "hold", &[Held::Offered(1, 100)], 3, 1, &[(54, SID), (50, &[10, 0, 0, 100])], Z, Z => "ack 10.0.0.100", "bound 10.0.0.100"),
    row!("request, another server chosen", "hold", &[Held::Offered(1, 100)], 3, 1, &[(54, &[10, 0, 0, 99]), (50, &[10, 0, 0, 100])], Z, Z => "pass other-server", "-"),
    row!("request, address held by another", "hold", &[Held::Bound(2, 100)], 3, 1, &[(50, &[10, 0, 0, 100])], Z, Z => "nak held-by-other", "-"),
    row!("request, address outside the subnet", "hold", &[], 3, 1, &[(50, &[192, 168, 1, 5])], Z, Z => "nak outside-subnet", "-"),
    row!("request, address outside the range", "hold", &[], 3, 1, &[(50, &[10, 0, 0, 50])], Z, Z => "nak outside-range", "-"),
    row!("request, the server's address", "hold", &[], 3, 1, &[(50, &[10, 0, 0, 1])], Z, Z => "nak server-address", "-"),
    row!("request, another node's reservation", "hold", &[], 3, 1, &[(50, &[10, 0, 0, 102])], Z, Z => "nak reserved-for-other", "-"),
    row!("request, reservation outside the range", "hold", &[], 3, 1, &[(50, &[10, 0, 0, 10])], Z, Z => "nak outside-range", "-"),
    row!("request, reserved node asks another", "hold", &[], 3, 0x0a, &[(50, &[10, 0, 0, 100])], Z, Z => "nak not-its-reservation", "-"),
    row!("request, reserved node asks its own", "hold", &[Held::Offered(0x0a, 10)], 3, 0x0a, &[(54, SID), (50, &[10, 0, 0, 10])], Z, Z => "ack 10.0.0.10", "bound 10.0.0.10"),
    row!("request, declined address", "hold", &[Held::Declined(100)], 3, 1, &[(50, &[10, 0, 0, 100])], Z, Z => "nak declined", "-"),
    row!("request, renewing (ciaddr)", "hold", &[Held::Bound(1, 100)], 3, 1, &[], [10, 0, 0, 100], Z => "renew 10.0.0.100", "bound 10.0.0.100"),
    row!("request, rebinding an expired lease", "hold", &[Held::Expired(1, 100)], 3, 1, &[], [10, 0, 0, 100], Z => "renew 10.0.0.100", "bound 10.0.0.100"),
    row!("request, init-reboot with bound lease", "hold", &[Held::Bound(1, 100)], 3, 1, &[(50, &[10, 0, 0, 100])], Z, Z => "renew 10.0.0.100", "bound 10.0.0.100"),
    row!("request, without an address", "hold", &[], 3, 1, &[], Z, Z => "ignore request-without-address", "-"),
    row!("request, unknown PXE under ignore", "ignore", &[], 3, 1, &[(60, PXE), (50, &[10, 0, 0, 100])], Z, Z => "ignore policy", "-"),
    row!("request, unknown PXE under adopt", "{adopt: k3s-agent}", &[Held::Offered(1, 100)], 3, 1, &[(60, PXE), (54, SID), (50, &[10, 0, 0, 100])], Z, Z => "ack 10.0.0.100 +boot", "bound 10.0.0.100"),
    row!("request, relay outside the subnet", "hold", &[Held::Offered(1, 100)], 3, 1, &[(50, &[10, 0, 0, 100])], Z, [172, 16, 0, 1] => "ignore relay-outside", "offered 10.0.0.100"),
    // RELEASE
    row!("release, its lease", "hold", &[Held::Bound(1, 100)], 7, 1, &[], [10, 0, 0, 100], Z => "released 10.0.0.100", "-"),
    row!("release, not its lease", "hold", &[Held::Bound(1, 100)], 7, 1, &[], [10, 0, 0, 101], Z => "pass not-held", "bound 10.0.0.100"),
    row!("release, no lease", "hold", &[Held::Bound(2, 100)], 7, 1, &[], [10, 0, 0, 100], Z => "pass not-held", "-"),
    // DECLINE
    row!("decline, by the holder", "hold", &[Held::Bound(1, 100)], 4, 1, &[(54, SID), (50, &[10, 0, 0, 100])], Z, Z => "declined 10.0.0.100", "-"),
    row!("decline, by another client", "hold", &[Held::Bound(2, 100)], 4, 1, &[(50, &[10, 0, 0, 100])], Z, Z => "ignore decline-not-held", "-"),
    row!("decline, without an address", "hold", &[Held::Bound(1, 100)], 4, 1, &[], Z, Z => "ignore decline-without-address", "bound 10.0.0.100"),
    row!("decline, to another server", "hold", &[Held::Bound(1, 100)], 4, 1, &[(54, &[10, 0, 0, 99]), (50, &[10, 0, 0, 100])], Z, Z => "pass other-server", "bound 10.0.0.100"),
    // INFORM
    row!("inform, in the subnet", "hold", &[], 8, 1, &[], [10, 0, 0, 77], Z => "inform 10.0.0.77", "-"),
    row!("inform, PXE client under hold", "hold", &[], 8, 1, &[(60, PXE)], [10, 0, 0, 77], Z => "inform 10.0.0.77 +boot", "-"),
    row!("inform, PXE client under ignore", "ignore", &[], 8, 1, &[(60, PXE)], [10, 0, 0, 77], Z => "inform 10.0.0.77", "-"),
    row!("inform, outside the subnet", "hold", &[], 8, 1, &[], [192, 168, 9, 9], Z => "ignore inform-outside", "-"),
];

#[test]
fn every_row_gets_its_outcome() {
    let mut wrong = Vec::new();
    for r in ROWS {
        let lab = lab(r.unknown);
        let s = settings(&lab);
        let mut t = table(r.state);
        let mut o: Vec<(u8, &[u8])> = vec![(53, std::slice::from_ref(&r.kind))];
        o.extend_from_slice(r.opts);
        let mut b = build(mac(r.mac).0, &o);
        b[12..16].copy_from_slice(&r.ciaddr);
        b[24..28].copy_from_slice(&r.giaddr);
        let req = parse(&b).unwrap();
        let got = outcome(&s, &lab, &mut t, &req, NOW, |m| policy(&lab, m));
        let (got, then) = (summary(&got), lease_of(&t, mac(r.mac)));
        if got != r.want || then != r.then {
            wrong.push(format!(
                "{}: got `{got}` / `{then}`, want `{}` / `{}`",
                r.name, r.want, r.then
            ));
        }
    }
    assert!(ROWS.len() >= 30, "the table covers the cases");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_nak_never_reaches_the_policy() {
    let lab = lab("hold");
    let s = settings(&lab);
    let mut t = table(&[Held::Bound(2, 100)]);
    let req = parse(&build(
        mac(1).0,
        &[(53, &[3]), (60, PXE), (50, &[10, 0, 0, 100])],
    ))
    .unwrap();
    let mut asked = false;
    let o = outcome(&s, &lab, &mut t, &req, NOW, |_| {
        asked = true;
        BootDecision::Hold
    });
    assert!(matches!(o, Outcome::Nak(Refused::HeldByOther { holder, .. }) if holder == mac(2)));
    assert!(!asked, "a held machine must not be marked held by a NAK");
}

#[test]
fn replies_keep_the_event_words() {
    let lab = lab("hold");
    let s = settings(&lab);
    let req = parse(&build(mac(1).0, &[(53, &[3])])).unwrap();
    let g = Grant {
        ip: ip(100),
        boot: None,
    };
    let msg = |h: &Handled| match &h.verdict {
        Verdict::Reply(r) => r.msg.to_string(),
        Verdict::Drop(why) => format!("drop: {why}"),
        Verdict::Pass => "pass".into(),
    };
    let cases = [
        (Outcome::Offer(g.clone()), "offer", None, false),
        (Outcome::Ack(g.clone()), "ack", None, true),
        (
            Outcome::Renew(g.clone()),
            "ack",
            Some(("renew", ip(100))),
            true,
        ),
        (Outcome::Inform(g), "ack", None, false),
        (Outcome::Nak(Refused::Declined(ip(100))), "nak", None, false),
        (
            Outcome::Released(ip(100)),
            "pass",
            Some(("release", ip(100))),
            false,
        ),
        (
            Outcome::Declined(ip(100)),
            "pass",
            Some(("decline", ip(100))),
            false,
        ),
        (Outcome::Pass(Passed::NotHeld), "pass", None, false),
        (
            Outcome::Ignore(Ignored::Policy(mac(1))),
            "drop: 02:00:00:00:00:01: unknown MAC, policy is ignore",
            None,
            false,
        ),
    ];
    for (o, want, event, bound) in cases {
        let name = format!("{o:?}");
        let h = respond(&s, &lab, &req, o);
        assert_eq!(msg(&h), want, "{name}");
        assert_eq!(h.lease_event, event, "{name}");
        assert_eq!(h.bound, bound, "{name}");
    }
}

/// Server mode's settings: the DHCP plan lab.yaml's validation built.
pub(super) fn settings(lab: &Lab) -> Settings {
    match lab.plan().ok().map(|p| &p.dhcp) {
        Some(DhcpPlan::Server(s)) => s.clone(),
        other => panic!("expected server mode, got {other:?}"),
    }
}
