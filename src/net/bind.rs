//! Socket plumbing shared by the DHCP and TFTP servers: UDP sockets bound to the lab
//! interface (SO_BINDTODEVICE) with SO_BROADCAST.
//!
//! Never SO_REUSEADDR or SO_REUSEPORT: with them a second `pxelab up` (or any other
//! program setting them) bound the same DHCP and TFTP ports and Linux split the clients
//! between the two servers. UDP has no TIME_WAIT, so a restarted server gets its port
//! back at once without them. Proxy mode shares port 67 with the LAN's DHCP server
//! through a raw socket instead ([`super::raw`]), which needs neither.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

/// A socket could not be set up.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot {what} {addr}{}: {source}{}",
    .interface.as_ref().map(|i| format!(" on {i}")).unwrap_or_default(),
    privilege_hint(source)
)]
pub struct BindError {
    /// What was attempted (`bind UDP`, `open raw socket on`).
    pub what: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// The interface, when one was asked for.
    pub interface: Option<String>,
    /// The OS error.
    pub source: std::io::Error,
}

/// What to do when the OS refused for lack of privilege: ports below 1024 need
/// CAP_NET_BIND_SERVICE, proxy mode's raw socket CAP_NET_RAW.
fn privilege_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            " (boot servers need root: `sudo pxelab up`, or give the binary \
             cap_net_bind_service,cap_net_raw with setcap)"
        }
        _ => "",
    }
}

/// Binds a non-blocking UDP socket on `addr`, on `interface` when given, exclusively: a
/// port another socket holds is refused (`Address in use`), never shared.
pub fn bind_udp(
    addr: SocketAddrV4,
    interface: Option<&str>,
) -> Result<std::net::UdpSocket, BindError> {
    let err = |what, source| BindError {
        what,
        addr: SocketAddr::V4(addr),
        interface: interface.map(str::to_string),
        source,
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| err("create UDP socket for", e))?;
    s.set_broadcast(true)
        .map_err(|e| err("set SO_BROADCAST for", e))?;
    if let Some(i) = interface {
        s.bind_device(Some(i.as_bytes()))
            .map_err(|e| err("bind to device", e))?;
    }
    s.set_nonblocking(true)
        .map_err(|e| err("set non-blocking", e))?;
    s.bind(&SocketAddr::V4(addr).into())
        .map_err(|e| err("bind UDP", e))?;
    Ok(s.into())
}

/// Binds a non-blocking UDP socket on an ephemeral port of `ip` (a TFTP transfer's),
/// on `interface` when given. Exclusive like every socket here: Linux hands the same
/// ephemeral port to two SO_REUSEPORT sockets of one user and then splits their packets
/// between them (concurrent transfers were told "unknown transfer ID").
pub fn bind_udp_ephemeral(
    ip: Ipv4Addr,
    interface: Option<&str>,
) -> Result<tokio::net::UdpSocket, BindError> {
    bind_tokio(SocketAddrV4::new(ip, 0), interface)
}

/// Binds a tokio UDP socket (see [`bind_udp`]).
pub fn bind_tokio(
    addr: SocketAddrV4,
    interface: Option<&str>,
) -> Result<tokio::net::UdpSocket, BindError> {
    let std = bind_udp(addr, interface)?;
    tokio::net::UdpSocket::from_std(std).map_err(|source| BindError {
        what: "register with tokio",
        addr: SocketAddr::V4(addr),
        interface: interface.map(str::to_string),
        source,
    })
}

/// The receive queue a DHCP listener asks for: a storm of 1,000 new clients sends 1,000
/// DISCOVERs at once (PXE ROMs of a rack powered on together), each about 1.2 KiB of
/// kernel memory queued; the default 208 KiB (`net.core.rmem_default`) holds ~170 of them
/// and the kernel drops the rest (`Udp: RcvbufErrors`), each drop a client's 1 s+
/// retransmission. 4 MiB holds ~3,000.
pub const DEEP_RECEIVE_QUEUE: usize = 4 << 20;

/// Sets a socket's receive buffer to [`DEEP_RECEIVE_QUEUE`]: SO_RCVBUFFORCE (past
/// `net.core.rmem_max`, needs CAP_NET_ADMIN, which a server on port 67 usually has),
/// else SO_RCVBUF (capped by `net.core.rmem_max`). Returns the size the kernel granted
/// (it doubles the asked value for its bookkeeping); failing is not an error: the
/// server works, with the default queue.
pub fn deep_receive_queue(fd: impl std::os::fd::AsFd) -> usize {
    let fd = fd.as_fd();
    if rustix::net::sockopt::set_socket_recv_buffer_size_force(fd, DEEP_RECEIVE_QUEUE).is_err() {
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(fd, DEEP_RECEIVE_QUEUE);
    }
    let granted = rustix::net::sockopt::socket_recv_buffer_size(fd).unwrap_or(0);
    static SAID: std::sync::Once = std::sync::Once::new();
    if granted < DEEP_RECEIVE_QUEUE {
        // Without CAP_NET_ADMIN (the systemd unit does not grant it) the queue is what
        // the host's rmem_max allows: say how to raise it, since a storm would be
        // dropped in the kernel where no counter of ours sees it. Once: every listener
        // would say the same.
        SAID.call_once(|| {
            tracing::warn!(
                "DHCP receive queue is {} KiB, not {} KiB: a storm of many machines powered on \
             at once may be dropped by the kernel; raise it with \
             `sysctl -w net.core.rmem_max={}` (see contrib/sysctl.d/60-pxelab.conf)",
                granted / 1024,
                DEEP_RECEIVE_QUEUE / 1024,
                DEEP_RECEIVE_QUEUE
            )
        });
    }
    granted
}

/// The address the servers bind: the loopback address itself for a loopback lab (the
/// demo and tests), else every address, narrowed to the lab interface by
/// SO_BINDTODEVICE.
pub fn listen_ip(server: Ipv4Addr, interface: Option<&str>) -> Ipv4Addr {
    if server.is_loopback() && interface.is_none_or(|i| i == "lo") {
        server
    } else {
        Ipv4Addr::UNSPECIFIED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port one server holds is refused to a second one (two `pxelab up` of one lab
    /// once split the DHCP clients between them).
    #[tokio::test]
    async fn a_bound_port_is_not_shared() {
        let first = bind_udp(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), None).unwrap();
        let port = first.local_addr().unwrap().port();
        let e = bind_udp(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port), None).unwrap_err();
        assert_eq!(e.source.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    }

    /// A DHCP listener's queue holds a storm (what the kernel granted: root here gets
    /// the forced size, anyone else at least the default).
    #[test]
    fn a_listener_queue_is_deepened() {
        let s = bind_udp(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), None).unwrap();
        let before = rustix::net::sockopt::socket_recv_buffer_size(&s).unwrap();
        let granted = deep_receive_queue(&s);
        assert!(granted >= before, "{granted} < {before}");
        if rustix::process::geteuid().is_root() {
            assert!(granted >= DEEP_RECEIVE_QUEUE, "{granted}");
        }
    }

    /// A burst of 1,000 DISCOVER-sized datagrams sent before the server reads any is
    /// all there when it does (the default 208 KiB queue keeps ~170 of them).
    #[test]
    fn a_deepened_queue_holds_a_burst_of_1000() {
        let server = bind_udp(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), None).unwrap();
        if deep_receive_queue(&server) < 4 << 20 {
            eprintln!("skipped: the kernel granted less than 4 MiB (not root, low rmem_max)");
            return;
        }
        let to = server.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let discover = [0u8; 300];
        for _ in 0..1000 {
            client.send_to(&discover, to).unwrap();
        }
        let mut buf = [0u8; 600];
        let mut got = 0;
        while server.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        assert_eq!(got, 1000, "the kernel dropped {} datagrams", 1000 - got);
    }

    /// Many transfer sockets open at once never share a port (with SO_REUSEPORT, Linux
    /// gave 151 of 3000 a port another already had).
    #[tokio::test]
    async fn ephemeral_sockets_get_ports_of_their_own() {
        let mut held = Vec::new();
        let mut ports = std::collections::HashSet::new();
        for _ in 0..2000 {
            let s = bind_udp_ephemeral(Ipv4Addr::LOCALHOST, None).unwrap();
            assert!(
                ports.insert(s.local_addr().unwrap().port()),
                "a port given twice"
            );
            held.push(s);
        }
    }
}
