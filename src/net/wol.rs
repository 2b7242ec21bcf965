//! Wake-on-LAN: the magic packet (6 × 0xFF, then the MAC 16 times) sent as a UDP
//! broadcast to port 9 of the lab interface's subnet.
//!
//! The socket is bound to the interface (SO_BINDTODEVICE) so the packet leaves on the
//! lab's NIC and no other, whatever the routing table says. The subnet-directed
//! broadcast (`192.168.1.255`) is taken from the interface's connected route in
//! `/proc/net/route`; an interface without one gets the limited broadcast
//! (`255.255.255.255`), which the bound device still confines to that link.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// The port magic packets go to (the discard service, as `wakeonlan` and `etherwake -b`).
pub const WOL_PORT: u16 = 9;

/// Why a magic packet could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum WolError {
    /// The socket could not be set up on the interface.
    #[error(transparent)]
    Bind(#[from] super::bind::BindError),
    /// Sending failed.
    #[error("cannot send the magic packet to {to} on {interface}: {source}")]
    Send {
        /// The interface.
        interface: String,
        /// Where it was going.
        to: SocketAddrV4,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The 102-byte magic packet for `mac`.
pub fn magic_packet(mac: [u8; 6]) -> Vec<u8> {
    let mut p = vec![0xff; 6];
    for _ in 0..16 {
        p.extend_from_slice(&mac);
    }
    p
}

/// The broadcast address of `interface`'s subnet, from `/proc/net/route`'s text: the
/// most specific route on the interface with no gateway (its connected subnet).
pub fn subnet_broadcast(route_table: &str, interface: &str) -> Option<Ipv4Addr> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
    route_table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 || f[0] != interface {
                return None;
            }
            let (dest, gateway, mask) = (hex(f[1])?, hex(f[2])?, hex(f[7])?);
            (gateway == 0 && mask != 0 && mask != u32::MAX).then_some((mask, dest))
        })
        .max_by_key(|(mask, _)| mask.count_ones())
        .map(|(mask, dest)| Ipv4Addr::from(dest | !mask))
}

/// Where a magic packet for a machine on `interface` goes: the subnet's broadcast
/// address (else the limited broadcast), port [`WOL_PORT`].
pub fn destination(interface: &str) -> SocketAddrV4 {
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let ip = subnet_broadcast(&table, interface).unwrap_or(Ipv4Addr::BROADCAST);
    SocketAddrV4::new(ip, WOL_PORT)
}

/// Sends the magic packet for `mac` out of `interface` only; returns where it went.
pub fn wake(interface: &str, mac: [u8; 6]) -> Result<SocketAddrV4, WolError> {
    let to = destination(interface);
    let sock = super::bind::bind_udp(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), Some(interface))?;
    sock.set_nonblocking(false)
        .and_then(|_| sock.send_to(&magic_packet(mac), SocketAddr::V4(to)))
        .map_err(|source| WolError::Send {
            interface: interface.to_string(),
            to,
            source,
        })?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packet_is_six_ff_and_sixteen_macs() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let p = magic_packet(mac);
        assert_eq!(p.len(), 102);
        assert_eq!(&p[..6], &[0xff; 6]);
        for i in 0..16 {
            assert_eq!(&p[6 + 6 * i..12 + 6 * i], &mac);
        }
    }

    #[test]
    fn the_broadcast_comes_from_the_connected_route() {
        // 0.0.0.0/0 via 192.168.1.1 and 192.168.1.0/24 on eth0, 10.77.0.0/24 on veth0.
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
veth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            subnet_broadcast(table, "eth0"),
            Some(Ipv4Addr::new(192, 168, 1, 255))
        );
        assert_eq!(
            subnet_broadcast(table, "veth0"),
            Some(Ipv4Addr::new(10, 77, 0, 255))
        );
        assert_eq!(subnet_broadcast(table, "wlan0"), None);
    }
}
