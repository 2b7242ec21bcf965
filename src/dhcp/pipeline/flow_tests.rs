//! Server mode's decisions over whole exchanges (DORA, renew, release, decline, the
//! range wrapping): a sequence of requests against one lease table and a clock, where
//! [`super::tests`] checks one request per row.

use std::net::Ipv4Addr;

use super::{decide, Handled};
use crate::config::plan::DhcpPlan;
use crate::config::Lab;
use crate::dhcp::decide::Verdict;
use crate::dhcp::leases::{self, Leases};
use crate::dhcp::request::{parse, tests::build, Request};
use crate::dhcp::settings::Settings;
use crate::engine::BootDecision;
use crate::mac::Mac;

fn lab() -> Lab {
    Lab::parse(
        std::path::Path::new("/tmp/lab.yaml"),
        "name: t\nserver_address: 10.0.0.1\nboot: {kernel: k}\n\
         dhcp: {mode: server, subnet: 10.0.0.0/24, range: [10.0.0.100, 10.0.0.102], lease_time: 1h, router: 10.0.0.1}\n\
         nodes:\n  - {mac: '02:00:00:00:00:0a', hostname: node-a, role: k3s-agent, ip: 10.0.0.10}\n",
    )
    .unwrap()
}

fn req(mac: u8, msg: u8, opts: &[(u8, &[u8])], ciaddr: [u8; 4]) -> Request {
    let mut o: Vec<(u8, &[u8])> = vec![(53, std::slice::from_ref(&msg))];
    o.extend_from_slice(opts);
    let mut b = build([2, 0, 0, 0, 0, mac], &o);
    b[12..16].copy_from_slice(&ciaddr);
    parse(&b).unwrap()
}

fn hold(_: Mac) -> BootDecision {
    BootDecision::Hold
}

fn reply(o: &Handled) -> &crate::dhcp::decide::Reply {
    match &o.verdict {
        Verdict::Reply(r) => r,
        v => panic!("expected a reply, got {v:?}"),
    }
}

const Z: [u8; 4] = [0; 4];
const SID: &[u8] = &[10, 0, 0, 1];

#[test]
fn settings_and_durations() {
    let s = settings(&lab());
    assert_eq!(s.mask(), Ipv4Addr::new(255, 255, 255, 0));
    assert_eq!(s.lease_secs, 3600);
}

#[test]
fn dora_reservation_and_pool() {
    let (s, l) = (settings(&lab()), lab());
    let mut t = Leases::default();
    // Reserved node.
    let o = decide(&s, &l, &mut t, &req(0x0a, 1, &[], Z), 1000, hold);
    assert_eq!(reply(&o).yiaddr, Some(Ipv4Addr::new(10, 0, 0, 10)));
    // Dynamic: lowest free, then the next.
    let a = decide(&s, &l, &mut t, &req(1, 1, &[], Z), 1000, hold);
    assert_eq!(reply(&a).yiaddr, Some(Ipv4Addr::new(10, 0, 0, 100)));
    let b = decide(&s, &l, &mut t, &req(2, 1, &[], Z), 1000, hold);
    assert_eq!(reply(&b).yiaddr, Some(Ipv4Addr::new(10, 0, 0, 101)));
    // REQUEST (selecting) → ACK and a bound lease.
    let ack = decide(
        &s,
        &l,
        &mut t,
        &req(1, 3, &[(54, SID), (50, &[10, 0, 0, 100])], Z),
        1001,
        hold,
    );
    assert_eq!(reply(&ack).msg, "ack");
    assert!(t.of_mac(&Mac([2, 0, 0, 0, 0, 1])).unwrap().bound);
    // Someone else asking for a held address: NAK.
    let nak = decide(
        &s,
        &l,
        &mut t,
        &req(3, 3, &[(50, &[10, 0, 0, 100])], Z),
        1002,
        hold,
    );
    assert_eq!(reply(&nak).msg, "nak");
    // Wrong subnet: NAK. Reservation holder asking for another address: NAK.
    let nak = decide(
        &s,
        &l,
        &mut t,
        &req(3, 3, &[(50, &[192, 168, 1, 5])], Z),
        1002,
        hold,
    );
    assert_eq!(reply(&nak).msg, "nak");
    let nak = decide(
        &s,
        &l,
        &mut t,
        &req(0x0a, 3, &[(50, &[10, 0, 0, 102])], Z),
        1002,
        hold,
    );
    assert_eq!(reply(&nak).msg, "nak");
    // Renew (ciaddr) → ACK + renew event.
    let renew = decide(&s, &l, &mut t, &req(1, 3, &[], [10, 0, 0, 100]), 2000, hold);
    assert_eq!(reply(&renew).msg, "ack");
    assert_eq!(
        renew.lease_event,
        Some(("renew", Ipv4Addr::new(10, 0, 0, 100)))
    );
    // REQUEST for another server: silence, offer forgotten.
    let other = decide(
        &s,
        &l,
        &mut t,
        &req(2, 3, &[(54, &[10, 0, 0, 9]), (50, &[10, 0, 0, 101])], Z),
        2000,
        hold,
    );
    assert_eq!(other.verdict, Verdict::Pass);
    assert!(t.of_mac(&Mac([2, 0, 0, 0, 0, 2])).is_none());
    // Pool exhaustion: 100 bound to 1, 101 and 102 offered, the fourth gets nothing.
    decide(&s, &l, &mut t, &req(4, 1, &[], Z), 2000, hold);
    decide(&s, &l, &mut t, &req(5, 1, &[], Z), 2000, hold);
    let none = decide(&s, &l, &mut t, &req(6, 1, &[], Z), 2000, hold);
    assert!(matches!(none.verdict, Verdict::Drop(_)));
    // Offers expire: after OFFER_SECS the address is free again.
    let later = decide(
        &s,
        &l,
        &mut t,
        &req(6, 1, &[], Z),
        2000 + leases::OFFER_SECS + 1,
        hold,
    );
    assert!(matches!(later.verdict, Verdict::Reply(_)));
}

#[test]
fn release_decline_inform_and_policy() {
    let (s, l) = (settings(&lab()), lab());
    let mut t = Leases::default();
    decide(
        &s,
        &l,
        &mut t,
        &req(1, 3, &[(50, &[10, 0, 0, 100])], Z),
        10,
        hold,
    );
    let rel = decide(&s, &l, &mut t, &req(1, 7, &[], [10, 0, 0, 100]), 11, hold);
    assert_eq!(rel.verdict, Verdict::Pass);
    assert_eq!(
        rel.lease_event,
        Some(("release", Ipv4Addr::new(10, 0, 0, 100)))
    );
    assert!(t.of_mac(&Mac([2, 0, 0, 0, 0, 1])).is_none());
    // Client 2 binds the released address, then finds it in use and declines it.
    decide(
        &s,
        &l,
        &mut t,
        &req(2, 3, &[(50, &[10, 0, 0, 100])], Z),
        12,
        hold,
    );
    let dec = decide(
        &s,
        &l,
        &mut t,
        &req(2, 4, &[(50, &[10, 0, 0, 100])], Z),
        12,
        hold,
    );
    assert_eq!(
        dec.lease_event,
        Some(("decline", Ipv4Addr::new(10, 0, 0, 100)))
    );
    let o = decide(&s, &l, &mut t, &req(3, 1, &[], Z), 13, hold);
    assert_eq!(
        reply(&o).yiaddr,
        Some(Ipv4Addr::new(10, 0, 0, 101)),
        "declined address reused"
    );
    let inf = decide(&s, &l, &mut t, &req(3, 8, &[], [10, 0, 0, 77]), 14, hold);
    assert_eq!(reply(&inf).msg, "ack");
    assert_eq!(reply(&inf).yiaddr, None);
    // iPXE client: script URL; ignore policy: silence for boot clients only.
    let ipxe = decide(&s, &l, &mut t, &req(7, 1, &[(77, b"iPXE")], Z), 15, hold);
    assert!(reply(&ipxe)
        .boot_file
        .as_deref()
        .unwrap()
        .contains("boot.ipxe?mac=02:00:00:00:00:07"));
    let pxe = req(8, 1, &[(60, b"PXEClient:Arch:00000:UNDI:002001")], Z);
    assert!(matches!(
        decide(&s, &l, &mut t, &pxe, 16, |_| BootDecision::Ignore).verdict,
        Verdict::Drop(_)
    ));
    let plain = req(9, 1, &[], Z);
    assert!(matches!(
        decide(&s, &l, &mut t, &plain, 100, |_| BootDecision::Ignore).verdict,
        Verdict::Reply(_)
    ));
}

/// DECLINE (RFC 2131 §4.3.3): honoured only from the client that holds the address.
#[test]
fn decline_only_from_the_holder() {
    let (s, l) = (settings(&lab()), lab());
    let a100: &[u8] = &[10, 0, 0, 100];
    let ip100 = Ipv4Addr::new(10, 0, 0, 100);
    struct Case {
        what: &'static str,
        from: u8,
        opts: Vec<(u8, &'static [u8])>,
        dropped: bool,
        lease_kept: bool,
    }
    let cases = [
        Case {
            what: "another MAC declines the holder's address",
            from: 9,
            opts: vec![(50, &[10, 0, 0, 100]), (54, SID)],
            dropped: true,
            lease_kept: true,
        },
        Case {
            what: "another MAC without a server id",
            from: 9,
            opts: vec![(50, &[10, 0, 0, 100])],
            dropped: true,
            lease_kept: true,
        },
        Case {
            what: "the holder declines an address it does not hold",
            from: 1,
            opts: vec![(50, &[10, 0, 0, 101]), (54, SID)],
            dropped: true,
            lease_kept: true,
        },
        Case {
            what: "a DECLINE for another server",
            from: 1,
            opts: vec![(50, &[10, 0, 0, 100]), (54, &[10, 0, 0, 9])],
            dropped: false,
            lease_kept: true,
        },
        Case {
            what: "a DECLINE without an address",
            from: 1,
            opts: vec![(54, SID)],
            dropped: true,
            lease_kept: true,
        },
        Case {
            what: "the holder declines its own address",
            from: 1,
            opts: vec![(50, &[10, 0, 0, 100]), (54, SID)],
            dropped: false,
            lease_kept: false,
        },
    ];
    for c in cases {
        let mut t = Leases::default();
        let ack = decide(&s, &l, &mut t, &req(1, 3, &[(50, a100)], Z), 10, hold);
        assert_eq!(reply(&ack).msg, "ack");
        let o = decide(&s, &l, &mut t, &req(c.from, 4, &c.opts, Z), 11, hold);
        assert_eq!(
            matches!(o.verdict, Verdict::Drop(_)),
            c.dropped,
            "{}: {:?}",
            c.what,
            o.verdict
        );
        let kept = t
            .of_mac(&Mac([2, 0, 0, 0, 0, 1]))
            .is_some_and(|l| l.ip == ip100);
        assert_eq!(kept, c.lease_kept, "{}", c.what);
        assert_eq!(t.declined(ip100, 12), !c.lease_kept, "{}", c.what);
        // The holder can still renew unless it declined.
        let renew = decide(&s, &l, &mut t, &req(1, 3, &[], [10, 0, 0, 100]), 13, hold);
        let want = if c.lease_kept { "ack" } else { "nak" };
        assert_eq!(reply(&renew).msg, want, "{}", c.what);
    }
}

/// Server mode's settings: the DHCP plan lab.yaml's validation built.
pub(super) fn settings(lab: &Lab) -> Settings {
    match lab.plan().ok().map(|p| &p.dhcp) {
        Some(DhcpPlan::Server(s)) => s.clone(),
        other => panic!("expected server mode, got {other:?}"),
    }
}

/// `lease_time: infinite`: the ACK says 0xffffffff (RFC 2131's infinity) without T1/T2,
/// and the lease table never lets the address go.
#[test]
fn an_infinite_lease_is_acked_as_such_and_never_expires() {
    use dhcproto::v4::{Decodable, DhcpOption, Message, OptionCode};
    let text = lab()
        .source
        .replace("lease_time: 1h", "lease_time: infinite");
    let l = Lab::parse(std::path::Path::new("/tmp/lab.yaml"), &text).unwrap();
    let s = settings(&l);
    assert_eq!(s.lease_secs, u32::MAX);
    let mut t = Leases::default();
    decide(&s, &l, &mut t, &req(1, 1, &[], Z), 1000, hold);
    let ack = decide(
        &s,
        &l,
        &mut t,
        &req(1, 3, &[(54, SID), (50, &[10, 0, 0, 100])], Z),
        1001,
        hold,
    );
    let m = Message::from_bytes(&reply(&ack).bytes).unwrap();
    assert!(matches!(
        m.opts().get(OptionCode::AddressLeaseTime),
        Some(DhcpOption::AddressLeaseTime(0xffff_ffff))
    ));
    assert!(m.opts().get(OptionCode::Renewal).is_none());
    assert!(m.opts().get(OptionCode::Rebinding).is_none());
    let mac = Mac([2, 0, 0, 0, 0, 1]);
    assert_eq!(t.of_mac(&mac).unwrap().expires, u64::MAX);
    assert!(t.expire(u64::MAX - 1).is_empty());
    assert_eq!(
        t.holder(Ipv4Addr::new(10, 0, 0, 100), 10_000_000_000),
        Some(mac)
    );
}
