//! The DHCP side of a simulated node: DISCOVER (and REQUEST when offered an address) as a
//! PXE ROM, as iPXE, or as the initramfs's `udhcpc`, unicast to the server on loopback.
//! The server answers to the packet's source address and port (its loopback mode).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use dhcproto::v4::{
    self, Architecture, DhcpOption, Flags, Message, MessageType, Opcode, OptionCode, UnknownOption,
};
use dhcproto::{Decodable, Decoder, Encodable};
use tokio::net::UdpSocket;

use crate::mac::Mac;

/// Who is asking: the options differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// The firmware PXE ROM (BIOS, option 93 = 0).
    PxeRom,
    /// iPXE after the chainload (options 77 `iPXE` and 175).
    Ipxe,
    /// The initramfs (`ip=dhcp`, busybox udhcpc): no PXE options.
    Udhcpc,
}

/// Why a DHCP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// A socket operation failed.
    #[error("dhcp {mac} to {server}: {source}")]
    Io {
        /// The client.
        mac: Mac,
        /// The server.
        server: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// No offer (or no ACK) after every retry.
    #[error("dhcp {mac} to {server}: no {waiting_for} after {tries} tries")]
    NoAnswer {
        /// The client.
        mac: Mac,
        /// The server.
        server: SocketAddr,
        /// OFFER or ACK.
        waiting_for: &'static str,
        /// Attempts.
        tries: u32,
    },
    /// The server said NAK.
    #[error("dhcp {mac}: NAK from {server}")]
    Nak {
        /// The client.
        mac: Mac,
        /// The server.
        server: SocketAddr,
    },
    /// A packet could not be encoded.
    #[error("dhcp {mac}: cannot encode: {detail}")]
    Encode {
        /// The client.
        mac: Mac,
        /// Why.
        detail: String,
    },
}

/// Where to send and how long to wait.
#[derive(Debug, Clone)]
pub struct DhcpTarget {
    /// The server's DHCP port (67 in a real lab).
    pub server: SocketAddr,
    /// The server's PXE boot-server port (4011), used when a proxy offer has no file.
    pub pxe_port: u16,
    /// Wait per attempt.
    pub timeout: Duration,
    /// Attempts per message.
    pub tries: u32,
}

/// What the exchange gave the node.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The address offered (None for a proxy offer).
    pub yiaddr: Option<Ipv4Addr>,
    /// Next server (siaddr).
    pub siaddr: Ipv4Addr,
    /// The boot file (header `file`, else option 67).
    pub boot_file: Option<String>,
    /// Whether this came from a proxy (no address).
    pub proxy: bool,
    /// Option 54, the server to name in a REQUEST.
    pub server_id: Option<Ipv4Addr>,
}

/// The client UUID a node sends in option 97 (type 0 + 16 bytes from the MAC).
pub fn uuid_for(mac: Mac) -> [u8; 16] {
    let o = mac.octets();
    let mut u = [0u8; 16];
    u[..4].copy_from_slice(&[0x53, 0x49, 0x4d, 0x00]);
    u[10..].copy_from_slice(&o);
    u
}

/// Builds one client message.
pub fn build(
    mac: Mac,
    asker: Asker,
    xid: u32,
    kind: MessageType,
    lease: Option<&Lease>,
) -> Message {
    let chaddr = mac.octets();
    let mut m = Message::new(
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &chaddr,
    );
    m.set_opcode(Opcode::BootRequest)
        .set_xid(xid)
        .set_flags(Flags::default().set_broadcast());
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    if kind == MessageType::Request {
        if let Some(ip) = lease.and_then(|l| l.yiaddr) {
            o.insert(DhcpOption::RequestedIpAddress(ip));
            // Option 54 from the offer names the server; siaddr is only the next server.
            let sid = lease
                .and_then(|l| l.server_id)
                .or(lease.map(|l| l.siaddr))
                .unwrap_or(ip);
            o.insert(DhcpOption::ServerIdentifier(sid));
        }
    }
    o.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::Hostname,
        OptionCode::DomainName,
        OptionCode::VendorExtensions,
        OptionCode::ClassIdentifier,
        OptionCode::TFTPServerName,
        OptionCode::BootfileName,
    ]));
    match asker {
        Asker::PxeRom | Asker::Ipxe => {
            o.insert(DhcpOption::ClassIdentifier(
                b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
            ));
            o.insert(DhcpOption::ClientSystemArchitecture(Architecture::from(
                0u16,
            )));
            let mut guid = vec![0u8];
            guid.extend_from_slice(&uuid_for(mac));
            o.insert(DhcpOption::ClientMachineIdentifier(guid));
            if asker == Asker::Ipxe {
                o.insert(DhcpOption::UserClass(b"iPXE".to_vec()));
                // iPXE feature flags: PXE ext (16), HTTP (19), DNS (23), bzImage (24), …
                o.insert(DhcpOption::Unknown(UnknownOption::new(
                    OptionCode::from(175u8),
                    vec![16, 1, 1, 19, 1, 1, 23, 1, 1, 24, 1, 1, 33, 1, 1],
                )));
            }
        }
        Asker::Udhcpc => {
            o.insert(DhcpOption::ClassIdentifier(b"udhcp 1.37.0".to_vec()));
        }
    }
    m
}

/// Decodes a server reply for this client and transaction; anything else is `None`.
pub fn parse_reply(buf: &[u8], mac: Mac, xid: u32) -> Option<(MessageType, Lease)> {
    let m = Message::decode(&mut Decoder::new(buf)).ok()?;
    if m.opcode() != Opcode::BootReply || m.xid() != xid || m.chaddr().get(..6)? != mac.octets() {
        return None;
    }
    let kind = match m.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(t)) => *t,
        _ => return None,
    };
    let header_file = m
        .fname_str()
        .and_then(|r| r.ok())
        .map(|s| s.trim_end_matches('\0').to_string())
        .filter(|s| !s.is_empty());
    let opt_file = match m.opts().get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(b)) => Some(String::from_utf8_lossy(b).to_string()),
        _ => None,
    };
    let yiaddr = Some(m.yiaddr()).filter(|a| !a.is_unspecified());
    let server_id = match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(a)) => Some(*a),
        _ => None,
    };
    Some((
        kind,
        Lease {
            yiaddr,
            siaddr: m.siaddr(),
            boot_file: header_file.or(opt_file),
            proxy: yiaddr.is_none(),
            server_id,
        },
    ))
}

#[allow(clippy::too_many_arguments)]
async fn exchange(
    socket: &UdpSocket,
    to: SocketAddr,
    packet: &[u8],
    mac: Mac,
    xid: u32,
    target: &DhcpTarget,
    want: &[MessageType],
    waiting_for: &'static str,
) -> Result<Lease, DhcpError> {
    let io = |source| DhcpError::Io {
        mac,
        server: to,
        source,
    };
    let mut buf = vec![0u8; 1500];
    for _ in 0..target.tries {
        socket.send_to(packet, to).await.map_err(io)?;
        let deadline = tokio::time::Instant::now() + target.timeout;
        loop {
            let r = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
            let Ok(r) = r else { break };
            let (n, _) = r.map_err(io)?;
            match parse_reply(&buf[..n], mac, xid) {
                Some((MessageType::Nak, _)) => return Err(DhcpError::Nak { mac, server: to }),
                Some((t, lease)) if want.contains(&t) => return Ok(lease),
                _ => continue,
            }
        }
    }
    Err(DhcpError::NoAnswer {
        mac,
        server: to,
        waiting_for,
        tries: target.tries,
    })
}

/// Runs DISCOVER → OFFER, then REQUEST → ACK when the offer carries an address, or a
/// PXE REQUEST on the boot-server port when a proxy offer carries no boot file.
pub async fn acquire(
    socket: &UdpSocket,
    mac: Mac,
    asker: Asker,
    target: &DhcpTarget,
) -> Result<Lease, DhcpError> {
    let xid: u32 = rand::random();
    let enc = |m: &Message| {
        m.to_vec().map_err(|e| DhcpError::Encode {
            mac,
            detail: e.to_string(),
        })
    };
    let discover = enc(&build(mac, asker, xid, MessageType::Discover, None))?;
    let offer = exchange(
        socket,
        target.server,
        &discover,
        mac,
        xid,
        target,
        &[MessageType::Offer],
        "OFFER",
    )
    .await?;
    if offer.yiaddr.is_some() {
        let req = enc(&build(mac, asker, xid, MessageType::Request, Some(&offer)))?;
        let ack = exchange(
            socket,
            target.server,
            &req,
            mac,
            xid,
            target,
            &[MessageType::Ack],
            "ACK",
        )
        .await?;
        return Ok(Lease {
            boot_file: ack.boot_file.or(offer.boot_file),
            ..ack
        });
    }
    if offer.boot_file.is_none() && asker != Asker::Udhcpc {
        let mut pxe = target.server;
        pxe.set_port(target.pxe_port);
        let req = enc(&build(mac, asker, xid, MessageType::Request, None))?;
        return exchange(
            socket,
            pxe,
            &req,
            mac,
            xid,
            target,
            &[MessageType::Ack],
            "PXE ACK",
        )
        .await;
    }
    Ok(offer)
}

/// Re-exported so callers need not name dhcproto.
pub use v4::MessageType as DhcpMessageType;

#[cfg(test)]
mod tests {
    use super::*;

    fn mac() -> Mac {
        "52:54:00:12:34:56".parse().unwrap()
    }

    #[test]
    fn pxe_discover_has_pxe_options() {
        let m = build(mac(), Asker::PxeRom, 7, MessageType::Discover, None);
        let bytes = m.to_vec().unwrap();
        let back = Message::decode(&mut Decoder::new(&bytes)).unwrap();
        match back.opts().get(OptionCode::ClassIdentifier) {
            Some(DhcpOption::ClassIdentifier(v)) => {
                assert_eq!(v, b"PXEClient:Arch:00000:UNDI:002001")
            }
            o => panic!("no option 60: {o:?}"),
        }
        match back.opts().get(OptionCode::ClientMachineIdentifier) {
            Some(DhcpOption::ClientMachineIdentifier(v)) => {
                assert_eq!(v.len(), 17);
                assert_eq!(v[0], 0);
            }
            o => panic!("no option 97: {o:?}"),
        }
        assert!(back.opts().get(OptionCode::UserClass).is_none());
    }

    #[test]
    fn ipxe_discover_says_ipxe() {
        let m = build(mac(), Asker::Ipxe, 7, MessageType::Discover, None);
        let bytes = m.to_vec().unwrap();
        let back = Message::decode(&mut Decoder::new(&bytes)).unwrap();
        match back.opts().get(OptionCode::UserClass) {
            Some(DhcpOption::UserClass(v)) => assert_eq!(v, b"iPXE"),
            o => panic!("no option 77: {o:?}"),
        }
        assert!(back.opts().get(OptionCode::from(175u8)).is_some());
    }

    #[test]
    fn reply_for_someone_else_is_ignored() {
        let mut m = build(mac(), Asker::PxeRom, 9, MessageType::Discover, None);
        m.set_opcode(Opcode::BootReply);
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Offer));
        let bytes = m.to_vec().unwrap();
        assert!(parse_reply(&bytes, mac(), 9).is_some());
        assert!(parse_reply(&bytes, mac(), 10).is_none());
        let other: Mac = "52:54:00:00:00:01".parse().unwrap();
        assert!(parse_reply(&bytes, other, 9).is_none());
        assert!(parse_reply(b"garbage", mac(), 9).is_none());
    }
}
