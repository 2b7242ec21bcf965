//! The proxyDHCP decision: a pure function from a decoded request and the engine's boot
//! policy to a reply or a drop. No sockets, no clock: the table tests drive it directly.

use std::net::Ipv4Addr;

use dhcproto::v4::MessageType;

use crate::config::Lab;
use crate::engine::BootDecision;
use crate::mac::Mac;

use super::boot;
use super::reply::{self, Plan};
use super::request::{MsgType, Request};

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send these bytes.
    Reply(Reply),
    /// Do not answer; counted as dropped and reported with the reason.
    Drop(String),
    /// Not addressed to us (e.g. a REQUEST for the LAN's own DHCP server): no answer,
    /// nothing counted.
    Pass,
}

/// An encoded reply and what it says, for the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The encoded message.
    pub bytes: Vec<u8>,
    /// `offer`, `ack`, `nak`.
    pub msg: &'static str,
    /// The address given (server mode).
    pub yiaddr: Option<Ipv4Addr>,
    /// The boot file or URL given.
    pub boot_file: Option<String>,
}

/// The lower-case name of a reply type.
pub fn msg_name(m: MessageType) -> &'static str {
    match m {
        MessageType::Offer => "offer",
        MessageType::Ack => "ack",
        MessageType::Nak => "nak",
        _ => "other",
    }
}

/// Encodes a plan into a [`Verdict::Reply`].
pub fn encode(req: &Request, server: Ipv4Addr, plan: &Plan) -> Verdict {
    match reply::build(req, server, plan) {
        Ok(bytes) => Verdict::Reply(Reply {
            bytes,
            msg: msg_name(plan.msg),
            yiaddr: plan
                .lease
                .as_ref()
                .filter(|_| !plan.inform)
                .map(|l| l.yiaddr),
            boot_file: plan.boot.as_ref().map(|b| b.file.clone()),
        }),
        Err(e) => Verdict::Drop(e.to_string()),
    }
}

/// proxyDHCP: answer PXE/HTTP-boot clients with boot information only, never an address.
///
/// On the DHCP port only DISCOVERs get an OFFER; on the PXE port (4011) REQUESTs get an
/// ACK with the same boot file. `policy` is asked only for PXE clients (it may mark an
/// unknown MAC held, a side effect a plain client must not cause).
pub fn proxy(
    lab: &Lab,
    req: &Request,
    on_pxe_port: bool,
    policy: impl FnOnce(Mac) -> BootDecision,
) -> Verdict {
    let answer = match (on_pxe_port, req.msg) {
        (false, MsgType::Discover) => MessageType::Offer,
        (true, MsgType::Request | MsgType::Inform) => MessageType::Ack,
        _ => return Verdict::Pass,
    };
    if let Some(g) = req.relay() {
        // The answer would go to port 67 of `g`: only to relays the operator listed, or
        // a spoofed giaddr turns pxelab into a reflector at any address.
        if !lab.file.dhcp.relays.contains(&g) {
            return Verdict::Drop(format!(
                "{}: relayed by {g}, which is not in dhcp.relays",
                req.mac
            ));
        }
    }
    if !req.is_pxe_client() && !req.is_http_client() {
        return Verdict::Drop(format!("{} is not a PXE client", req.mac));
    }
    let target = match boot::select(lab, req) {
        Ok(t) => t,
        Err(e) => return Verdict::Drop(format!("{}: {e}", req.mac)),
    };
    match policy(req.mac) {
        BootDecision::Ignore => {
            return Verdict::Drop(format!("{}: unknown MAC, policy is ignore", req.mac))
        }
        BootDecision::Hold if target.pi_bootloader => {
            return Verdict::Drop(super::pipeline::Ignored::HeldPi(req.mac).to_string())
        }
        _ => {}
    }
    let plan = Plan {
        msg: answer,
        boot: Some(target),
        lease: None,
        no_pxedhcp: false,
        inform: false,
    };
    encode(req, lab.server_address, &plan)
}

#[cfg(test)]
mod tests {
    use super::super::request::{parse, tests::build};
    use super::*;
    use dhcproto::v4::{Decodable, Message};

    fn lab() -> Lab {
        Lab::parse(
            std::path::Path::new("/tmp/lab.yaml"),
            "name: t\nserver_address: 10.0.0.1\nboot: {kernel: k}\n",
        )
        .unwrap()
    }

    const MAC: [u8; 6] = [0x52, 0x54, 0, 1, 2, 3];
    const PXE: &[u8] = b"PXEClient:Arch:00000:UNDI:002001";

    fn hold(_: Mac) -> BootDecision {
        BootDecision::Hold
    }

    #[test]
    fn relayed_requests_only_from_listed_relays() {
        let mut b = build(MAC, &[(53, &[1]), (60, PXE)]);
        b[24..28].copy_from_slice(&[10, 1, 0, 1]);
        let d = parse(&b).unwrap();
        let v = proxy(&lab(), &d, false, hold);
        assert!(
            matches!(&v, Verdict::Drop(r) if r.contains("not in dhcp.relays")),
            "{v:?}"
        );
        let listed = Lab::parse(
            std::path::Path::new("/tmp/lab.yaml"),
            "name: t\nserver_address: 10.0.0.1\nboot: {kernel: k}\ndhcp: {relays: [10.1.0.1]}\n",
        )
        .unwrap();
        assert!(matches!(proxy(&listed, &d, false, hold), Verdict::Reply(_)));
        b[24..28].copy_from_slice(&[10, 1, 0, 2]);
        let other = parse(&b).unwrap();
        assert!(matches!(
            proxy(&listed, &other, false, hold),
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn offers_on_67_acks_on_4011() {
        let d = parse(&build(MAC, &[(53, &[1]), (60, PXE)])).unwrap();
        let Verdict::Reply(r) = proxy(&lab(), &d, false, hold) else {
            panic!("no offer")
        };
        assert_eq!(r.msg, "offer");
        assert_eq!(r.boot_file.as_deref(), Some("undionly.kpxe"));
        assert_eq!(r.yiaddr, None);
        let m = Message::from_bytes(&r.bytes).unwrap();
        assert!(m.yiaddr().is_unspecified());

        let q = parse(&build(MAC, &[(53, &[3]), (60, PXE)])).unwrap();
        assert_eq!(proxy(&lab(), &q, false, hold), Verdict::Pass);
        let Verdict::Reply(r) = proxy(&lab(), &q, true, hold) else {
            panic!("no ack")
        };
        assert_eq!(r.msg, "ack");
        assert_eq!(r.boot_file.as_deref(), Some("undionly.kpxe"));
    }

    #[test]
    fn plain_and_ignored_clients_get_nothing() {
        let plain = parse(&build(MAC, &[(53, &[1]), (60, b"udhcp 1.35.0")])).unwrap();
        let mut asked = false;
        let v = proxy(&lab(), &plain, false, |_| {
            asked = true;
            BootDecision::Hold
        });
        assert!(matches!(v, Verdict::Drop(_)));
        assert!(!asked, "a plain client must not reach the boot policy");
        let pxe = parse(&build(MAC, &[(53, &[1]), (60, PXE)])).unwrap();
        assert!(matches!(
            proxy(&lab(), &pxe, false, |_| BootDecision::Ignore),
            Verdict::Drop(_)
        ));
        // iPXE without option 60 is not answered in proxy mode either.
        let ipxe = parse(&build(MAC, &[(53, &[1]), (77, b"iPXE")])).unwrap();
        assert!(matches!(
            proxy(&lab(), &ipxe, false, hold),
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn held_ipxe_client_gets_the_script_url() {
        let d = parse(&build(MAC, &[(53, &[1]), (60, PXE), (77, b"iPXE")])).unwrap();
        let Verdict::Reply(r) = proxy(&lab(), &d, false, hold) else {
            panic!("no offer")
        };
        assert_eq!(
            r.boot_file.as_deref(),
            Some("http://10.0.0.1:8080/boot.ipxe?mac=52:54:00:01:02:03")
        );
    }
}
