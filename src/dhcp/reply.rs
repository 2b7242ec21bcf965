//! Building replies with dhcproto: proxy OFFER/ACK and server OFFER/ACK/NAK.

use std::net::Ipv4Addr;

use dhcproto::v4::{
    DhcpOption, Encodable, Encoder, Flags, Message, MessageType, Opcode, OptionCode, UnknownOption,
};

use super::boot::BootTarget;
use super::request::Request;

/// Address configuration handed out in server mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The address given.
    pub yiaddr: Ipv4Addr,
    /// Subnet mask.
    pub mask: Ipv4Addr,
    /// Lease time in seconds.
    pub lease_secs: u32,
    /// Default gateway.
    pub router: Option<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// Domain name.
    pub domain: Option<String>,
    /// Hostname (from the lab node).
    pub hostname: Option<String>,
}

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// OFFER, ACK or NAK.
    pub msg: MessageType,
    /// Boot information, if any.
    pub boot: Option<BootTarget>,
    /// Address information (server mode), if any.
    pub lease: Option<Lease>,
    /// Option 175.176 = 1 (server mode, iPXE client): skip the ProxyDHCP wait.
    pub no_pxedhcp: bool,
    /// Only answer with options (INFORM ACK: no yiaddr, no lease time).
    pub inform: bool,
}

/// An encoding failure (a bug, never a client's fault).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode DHCP reply for {mac}: {source}")]
pub struct EncodeFailed {
    /// The client.
    pub mac: crate::mac::Mac,
    /// Why.
    pub source: dhcproto::error::EncodeError,
}

fn unknown(code: u8, data: Vec<u8>) -> DhcpOption {
    DhcpOption::Unknown(UnknownOption::new(OptionCode::from(code), data))
}

/// Option 43 for PXE firmware: {6: 8} (skip boot-server discovery, use the file), plus
/// the Raspberry Pi boot ROM's sub-options 9 and 10.
fn pxe_vendor_options(pi: bool) -> Vec<u8> {
    let mut v = vec![6, 1, 8];
    if pi {
        let menu = b"\x00\x00\x11Raspberry Pi Boot";
        v.push(9);
        v.push(menu.len() as u8);
        v.extend_from_slice(menu);
        v.extend_from_slice(&[10, 4, 0, b'P', b'X', b'E']);
    }
    v.push(255);
    v
}

/// The BOOTP broadcast flag (RFC 1542 §3.1.1).
const BROADCAST_FLAG: u16 = 0x8000;

/// Builds the reply to `req` from `server` according to `plan`.
pub fn build(req: &Request, server: Ipv4Addr, plan: &Plan) -> Result<Vec<u8>, EncodeFailed> {
    // A relay can deliver a reply that carries no address (a proxy offer, a NAK) only by
    // broadcast on the client's segment; without the broadcast bit it would unicast to
    // yiaddr 0.0.0.0, i.e. nowhere (dnsmasq's relay drops it). RFC 2131 §4.3.2 asks for
    // the bit on relayed NAKs; the same reasoning holds for proxy offers.
    let addressless = plan.msg == MessageType::Nak || plan.lease.is_none();
    let flags = if !req.giaddr.is_unspecified() && addressless {
        req.flags | BROADCAST_FLAG
    } else {
        req.flags
    };
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply)
        .set_xid(req.xid)
        .set_flags(Flags::new(flags))
        .set_giaddr(req.giaddr)
        .set_chaddr(&req.chaddr[..6])
        .set_siaddr(Ipv4Addr::UNSPECIFIED);
    if plan.inform {
        m.set_ciaddr(req.ciaddr);
    }
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(plan.msg));
    o.insert(DhcpOption::ServerIdentifier(server));
    if plan.msg == MessageType::Nak {
        o.insert(DhcpOption::Message("address not valid here".to_string()));
        return encode(req, m);
    }
    if let Some(l) = &plan.lease {
        if !plan.inform {
            m.set_yiaddr(l.yiaddr);
        }
        let o = m.opts_mut();
        o.insert(DhcpOption::SubnetMask(l.mask));
        if !plan.inform {
            o.insert(DhcpOption::AddressLeaseTime(l.lease_secs));
            // An infinite lease (0xffffffff) is never renewed: no T1/T2, as dnsmasq.
            if l.lease_secs != crate::config::net::INFINITE_LEASE {
                o.insert(DhcpOption::Renewal(l.lease_secs / 2));
                o.insert(DhcpOption::Rebinding(l.lease_secs / 8 * 7));
            }
        }
        if let Some(r) = l.router {
            o.insert(DhcpOption::Router(vec![r]));
        }
        if !l.dns.is_empty() {
            o.insert(DhcpOption::DomainNameServer(l.dns.clone()));
        }
        if let Some(d) = &l.domain {
            o.insert(DhcpOption::DomainName(d.clone()));
        }
        if let Some(h) = &l.hostname {
            o.insert(DhcpOption::Hostname(h.clone()));
        }
    }
    if let Some(b) = &plan.boot {
        m.set_siaddr(server);
        m.set_sname_str(server.to_string());
        if b.file.len() < 128 {
            m.set_fname_str(&b.file);
        }
        let o = m.opts_mut();
        o.insert(DhcpOption::BootfileName(b.file.as_bytes().to_vec()));
        if let Some(c) = b.class {
            o.insert(DhcpOption::ClassIdentifier(c.as_bytes().to_vec()));
        }
        if let Some(u) = req.uuid_raw() {
            o.insert(DhcpOption::ClientMachineIdentifier(u.to_vec()));
        }
        if b.pxe_discovery_control || b.raspberry_pi {
            o.insert(DhcpOption::VendorExtensions(pxe_vendor_options(
                b.raspberry_pi,
            )));
        }
        if b.raspberry_pi {
            o.insert(DhcpOption::TFTPServerName(server.to_string().into_bytes()));
        }
        if b.ipxe && plan.no_pxedhcp {
            // iPXE encapsulated options: 176 (no-pxedhcp) = 1.
            o.insert(unknown(175, vec![176, 1, 1]));
        }
    }
    encode(req, m)
}

fn encode(req: &Request, m: Message) -> Result<Vec<u8>, EncodeFailed> {
    let mut buf = Vec::with_capacity(548);
    m.encode(&mut Encoder::new(&mut buf))
        .map_err(|source| EncodeFailed {
            mac: req.mac,
            source,
        })?;
    // Pad to the 300-byte BOOTP minimum some old ROMs insist on.
    if buf.len() < 300 {
        buf.resize(300, 0);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::super::request::{parse, tests::build as req_bytes};
    use super::*;
    use dhcproto::v4::Decodable;

    fn target(file: &str, pi: bool) -> BootTarget {
        BootTarget {
            file: file.into(),
            class: Some("PXEClient"),
            ipxe: false,
            pxe_discovery_control: true,
            raspberry_pi: pi,
            pi_bootloader: pi,
        }
    }

    #[test]
    fn relayed_replies_without_an_address_ask_the_relay_to_broadcast() {
        let mut b = req_bytes(
            [0x52, 0x54, 0, 0, 0, 1],
            &[(53, &[1]), (60, b"PXEClient:Arch:00000:UNDI:002001")],
        );
        b[10] = 0; // the client did not ask for broadcast
        b[24..28].copy_from_slice(&[10, 78, 1, 1]); // relayed
        let relayed = parse(&b).unwrap();
        let proxy = Plan {
            msg: MessageType::Offer,
            boot: Some(target("undionly.kpxe", false)),
            lease: None,
            no_pxedhcp: false,
            inform: false,
        };
        let server = "10.78.2.1".parse().unwrap();
        let flags = |req: &Request, plan: &Plan| {
            Message::from_bytes(&build(req, server, plan).unwrap())
                .unwrap()
                .flags()
                .broadcast()
        };
        assert!(flags(&relayed, &proxy), "relayed proxy offer");
        let nak = Plan {
            msg: MessageType::Nak,
            boot: None,
            ..proxy.clone()
        };
        assert!(flags(&relayed, &nak), "relayed NAK");
        // Not relayed: the client's own choice stands (replies go out broadcast anyway).
        b[24..28].copy_from_slice(&[0, 0, 0, 0]);
        let direct = parse(&b).unwrap();
        assert!(!flags(&direct, &proxy));
    }

    #[test]
    fn proxy_offer_has_what_firmware_reads() {
        let mut uuid = vec![0u8];
        uuid.extend(1..=16u8);
        let req = parse(&req_bytes(
            [0xdc, 0xa6, 0x32, 1, 2, 3],
            &[
                (53, &[1]),
                (60, b"PXEClient:Arch:00000:UNDI:002001"),
                (97, &uuid),
            ],
        ))
        .unwrap();
        let plan = Plan {
            msg: MessageType::Offer,
            boot: Some(target("undionly.kpxe", true)),
            lease: None,
            no_pxedhcp: false,
            inform: false,
        };
        let bytes = build(&req, "10.0.0.1".parse().unwrap(), &plan).unwrap();
        let m = Message::from_bytes(&bytes).unwrap();
        assert_eq!(m.opcode(), Opcode::BootReply);
        assert_eq!(m.xid(), 0x1234_5678);
        assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(m.siaddr(), "10.0.0.1".parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            m.fname_str()
                .unwrap()
                .unwrap()
                .trim_end_matches(char::from(0)),
            "undionly.kpxe"
        );
        assert_eq!(
            m.sname_str()
                .unwrap()
                .unwrap()
                .trim_end_matches(char::from(0)),
            "10.0.0.1"
        );
        assert_eq!(m.chaddr(), &[0xdc, 0xa6, 0x32, 1, 2, 3]);
        let o = m.opts();
        assert_eq!(o.msg_type(), Some(MessageType::Offer));
        assert!(
            matches!(o.get(OptionCode::ServerIdentifier), Some(DhcpOption::ServerIdentifier(a)) if a.octets() == [10, 0, 0, 1])
        );
        assert!(
            matches!(o.get(OptionCode::ClassIdentifier), Some(DhcpOption::ClassIdentifier(c)) if c == b"PXEClient")
        );
        assert!(
            matches!(o.get(OptionCode::ClientMachineIdentifier), Some(DhcpOption::ClientMachineIdentifier(c)) if *c == uuid)
        );
        assert!(
            matches!(o.get(OptionCode::TFTPServerName), Some(DhcpOption::TFTPServerName(c)) if c == b"10.0.0.1")
        );
        let Some(DhcpOption::VendorExtensions(v43)) = o.get(OptionCode::VendorExtensions) else {
            panic!("no option 43");
        };
        assert_eq!(&v43[..3], &[6, 1, 8]);
        assert!(v43.windows(17).any(|w| w == b"Raspberry Pi Boot"));
    }

    #[test]
    fn server_ack_carries_lease_and_no_pxedhcp() {
        let req = parse(&req_bytes([2, 0, 0, 0, 0, 1], &[(53, &[3]), (77, b"iPXE")])).unwrap();
        let plan = Plan {
            msg: MessageType::Ack,
            boot: Some(BootTarget {
                file: "http://10.0.0.1:8080/boot.ipxe?mac=02:00:00:00:00:01".into(),
                class: None,
                ipxe: true,
                pxe_discovery_control: false,
                raspberry_pi: false,
                pi_bootloader: false,
            }),
            lease: Some(Lease {
                yiaddr: "10.0.0.50".parse().unwrap(),
                mask: "255.255.255.0".parse().unwrap(),
                lease_secs: 3600,
                router: Some("10.0.0.254".parse().unwrap()),
                dns: vec!["10.0.0.53".parse().unwrap()],
                domain: Some("lab".into()),
                hostname: Some("node-1".into()),
            }),
            no_pxedhcp: true,
            inform: false,
        };
        let bytes = build(&req, "10.0.0.1".parse().unwrap(), &plan).unwrap();
        let m = Message::from_bytes(&bytes).unwrap();
        assert_eq!(m.yiaddr(), "10.0.0.50".parse::<Ipv4Addr>().unwrap());
        let o = m.opts();
        assert!(matches!(
            o.get(OptionCode::AddressLeaseTime),
            Some(DhcpOption::AddressLeaseTime(3600))
        ));
        assert!(
            matches!(o.get(OptionCode::Hostname), Some(DhcpOption::Hostname(h)) if h == "node-1")
        );
        let Some(DhcpOption::Unknown(u)) = o.get(OptionCode::from(175)) else {
            panic!("no option 175");
        };
        assert_eq!(u.data(), &[176, 1, 1]);
        assert!(o.get(OptionCode::VendorExtensions).is_none());
    }
}
