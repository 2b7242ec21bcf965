//! proxyDHCP beside another DHCP server on the same host: a raw IPv4 socket.
//!
//! The problem (pixiecore's `--dhcp-no-bind`): dnsmasq, ISC dhcpd and Kea bind
//! `0.0.0.0:67` without SO_REUSEPORT/SO_REUSEADDR (dnsmasq sets them only with
//! `--bind-interfaces`), and Linux refuses any other UDP bind of port 67 that overlaps
//! it (a specific address, the broadcast address or another device all overlap a
//! wildcard bound to no device). Taking port 67 first is worse: the LAN's server then
//! fails to start.
//!
//! The choice: in proxy mode pxelab never binds UDP port 67. It opens a raw
//! `AF_INET/SOCK_RAW/IPPROTO_UDP` socket bound to the lab interface with a classic BPF
//! filter that keeps only unfragmented UDP datagrams to port 67. The kernel hands every
//! such datagram to the raw socket *and* to whichever UDP socket holds the port, so both
//! servers see each DISCOVER; each answers what is its own (the LAN server the address,
//! pxelab the boot file). Replies leave through the same raw socket with a UDP header
//! built here (source port 67, as clients expect), the kernel adding the IP header. This
//! needs CAP_NET_RAW, which a server on port 67 has anyway.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use super::bind::BindError;

/// A raw UDP listener and sender for one port on one interface.
pub struct RawUdp {
    /// The raw socket, driven through tokio's UDP type: recvfrom/sendto are the same
    /// system calls on a raw socket (addresses carry port 0), and this avoids `unsafe`.
    fd: tokio::net::UdpSocket,
    /// A second raw socket for sending, bound to the source address (binding the
    /// receiving one would narrow what it receives to that destination address). Its
    /// filter drops everything, so nothing queues on it.
    tx: tokio::net::UdpSocket,
    port: u16,
    /// The source address the kernel will use (bound), for the UDP checksum.
    source: Option<Ipv4Addr>,
    /// Receive buffer for whole IP packets, allocated once (zeroing 64 KiB per packet
    /// was the largest single cost of proxy mode under perfdhcp).
    pkt: Vec<u8>,
}

/// The BPF program: IPv4 UDP, not a fragment, destination port `port`.
fn filter(port: u16) -> [SockFilter; 9] {
    [
        SockFilter::new(0x30, 0, 0, 9),               // ldb [9] (protocol)
        SockFilter::new(0x15, 0, 6, 17),              // jeq #17 else drop
        SockFilter::new(0x28, 0, 0, 6),               // ldh [6] (flags, fragment offset)
        SockFilter::new(0x45, 4, 0, 0x1fff),          // jset #0x1fff → drop
        SockFilter::new(0xb1, 0, 0, 0),               // ldxb 4*([0]&0xf)
        SockFilter::new(0x48, 0, 0, 2),               // ldh [x+2] (destination port)
        SockFilter::new(0x15, 0, 1, u32::from(port)), // jeq #port else drop
        SockFilter::new(0x06, 0, 0, 0xffff),          // accept
        SockFilter::new(0x06, 0, 0, 0),               // drop
    ]
}

impl RawUdp {
    /// Opens the raw socket on `interface`, filtered to UDP port `port`. `source` is
    /// bound when it is an address of this host.
    pub fn open(interface: &str, port: u16, source: Ipv4Addr) -> Result<RawUdp, BindError> {
        let rx = Self::socket(interface, port, &filter(port))?;
        super::bind::deep_receive_queue(&rx);
        let tx = Self::socket(interface, port, &[SockFilter::new(0x06, 0, 0, 0)])?;
        let bound = tx
            .bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())
            .is_ok();
        let tokio = |s: Socket| {
            let std_sock: std::net::UdpSocket = s.into();
            tokio::net::UdpSocket::from_std(std_sock).map_err(|e| BindError {
                what: "register raw socket for",
                addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)),
                interface: Some(interface.to_string()),
                source: e,
            })
        };
        Ok(RawUdp {
            fd: tokio(rx)?,
            tx: tokio(tx)?,
            port,
            source: bound.then_some(source),
            pkt: vec![0u8; 65536],
        })
    }

    fn socket(interface: &str, port: u16, prog: &[SockFilter]) -> Result<Socket, BindError> {
        let err = |what, e| BindError {
            what,
            addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)),
            interface: Some(interface.to_string()),
            source: e,
        };
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))
            .map_err(|e| err("open raw UDP socket for", e))?;
        s.attach_filter(prog)
            .map_err(|e| err("attach BPF filter for", e))?;
        s.bind_device(Some(interface.as_bytes()))
            .map_err(|e| err("bind raw socket to device for", e))?;
        s.set_broadcast(true)
            .map_err(|e| err("set SO_BROADCAST on raw socket for", e))?;
        s.set_nonblocking(true)
            .map_err(|e| err("set non-blocking raw socket for", e))?;
        Ok(s)
    }

    /// Receives the next datagram to our port: (payload, source address).
    pub async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        loop {
            let (n, _) = self.fd.recv_from(&mut self.pkt).await?;
            if let Some((from, payload)) = parse_ipv4_udp(&self.pkt[..n], self.port) {
                let len = payload.len().min(buf.len());
                buf[..len].copy_from_slice(&payload[..len]);
                // A datagram larger than the buffer is reported at its full length so
                // the decoder refuses it as oversized.
                return Ok((payload.len(), from));
            }
        }
    }

    /// Sends `payload` from our port to `to` (broadcast or unicast).
    pub async fn send(&self, payload: &[u8], to: SocketAddrV4) -> std::io::Result<()> {
        let dgram = udp_datagram(self.source, self.port, to, payload);
        let dest = SocketAddr::V4(SocketAddrV4::new(*to.ip(), 0));
        self.tx.send_to(&dgram, dest).await.map(|_| ())
    }
}

/// Splits an IPv4 packet into (source, UDP payload) when it is UDP to `port`.
pub fn parse_ipv4_udp(p: &[u8], port: u16) -> Option<(SocketAddr, &[u8])> {
    let first = *p.first()?;
    if first >> 4 != 4 || p.get(9) != Some(&17) {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
    let end = total.min(p.len());
    let udp = p.get(ihl..end)?;
    if udp.len() < 8 {
        return None;
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let ulen = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if dport != port || ulen < 8 || ulen > udp.len() {
        return None;
    }
    Some((SocketAddr::V4(SocketAddrV4::new(src, sport)), &udp[8..ulen]))
}

/// A UDP header plus payload; the checksum is computed when the source is known, else 0
/// ("no checksum", allowed for IPv4).
pub fn udp_datagram(
    src: Option<Ipv4Addr>,
    sport: u16,
    to: SocketAddrV4,
    payload: &[u8],
) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut d = Vec::with_capacity(usize::from(len));
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&to.port().to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    if let Some(s) = src {
        let mut sum: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                let w = if c.len() == 2 {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], 0])
                };
                sum += u32::from(w);
            }
        };
        add(&s.octets());
        add(&to.ip().octets());
        add(&[0, 17]);
        add(&len.to_be_bytes());
        add(&d);
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let mut c = !(sum as u16);
        if c == 0 {
            c = 0xffff;
        }
        d[6..8].copy_from_slice(&c.to_be_bytes());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_udp_round_trip_and_checksum() {
        let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
        let udp = udp_datagram(Some(Ipv4Addr::new(10, 0, 0, 2)), 68, to, b"hello");
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 2, 255, 255, 255, 255,
        ];
        ip.extend_from_slice(&udp);
        let total = ip.len() as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let (from, payload) = parse_ipv4_udp(&ip, 67).unwrap();
        assert_eq!(from.to_string(), "10.0.0.2:68");
        assert_eq!(payload, b"hello");
        assert!(parse_ipv4_udp(&ip, 68).is_none());
        assert!(parse_ipv4_udp(&ip[..25], 67).is_none());
        // The checksum verifies: summing the pseudo-header and datagram gives 0xffff.
        let mut sum: u32 = 0;
        for c in [10u16 << 8, 2, 0xffff, 0xffff, 17, udp.len() as u16] {
            sum += u32::from(c);
        }
        for c in udp.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }
}
