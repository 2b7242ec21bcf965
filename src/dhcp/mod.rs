//! DHCP: proxyDHCP (67 + 4011) beside the LAN's server, or a full server with reservations.
//!
//! Shape: a pure decision layer ([`request`] decodes strictly, [`boot`] picks the boot
//! file, [`decide`] (proxy) and [`pipeline`] (full server) choose the answer, [`reply`]
//! encodes it with dhcproto) under a thin socket layer ([`listen`], [`server`],
//! [`crate::net::bind`], [`crate::net::raw`]).
//!
//! - proxy mode: port `dhcp.port` (67) is read through a raw socket so pxelab runs beside
//!   dnsmasq or any DHCP server already bound to it (see [`crate::net::raw`] for why and
//!   how); port
//!   `dhcp.pxe_port` (4011) is an ordinary UDP socket. Only clients whose option 60 starts
//!   with `PXEClient` or `HTTPClient` are answered, and never with an address.
//! - server mode: an ordinary UDP socket on `dhcp.port` bound to the lab interface
//!   (SO_BINDTODEVICE), authoritative for `dhcp.subnet`, leases in `.pxelab/leases.json`.
//! - server mode on an interface also answers IPv6 Router Solicitations (`dhcp.ipv6_ra`,
//!   see [`ra`] and [`crate::net::ra`]) so iPXE does not wait ~16 s for IPv6.
//! - loopback labs (`server_address` 127.x, no interface: the demo and tests): plain UDP
//!   sockets on unprivileged ports, and replies go unicast to the request's source
//!   ip:port, since nothing there can receive a broadcast to port 68.

pub mod boot;
pub mod decide;
pub mod drops;
pub mod journal;
pub mod leases;
pub mod listen;
pub mod pipeline;
pub mod ra;
pub mod reply;
pub mod request;
pub mod server;
pub mod settings;
pub mod writer;

use std::net::SocketAddrV4;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::plan::DhcpPlan;
use crate::engine::{Engine, EventKind, Source};
use crate::net::bind;
use crate::net::raw::RawUdp;
use listen::{Listener, PortRole};

/// Runs the DHCP server(s) the lab's DHCP plan asks for until `cancel` fires.
pub async fn serve(
    engine: Engine,
    plan: DhcpPlan,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let listen = match &plan {
        DhcpPlan::Off => return Ok(()),
        DhcpPlan::Proxy(p) => p.listen.clone(),
        DhcpPlan::Server(s) => s.listen.clone(),
    };
    let iface = listen.interface.clone();
    let ip = bind::listen_ip(listen.address, iface.as_deref());
    let loopback = ip.is_loopback();
    let role = PortRole {
        pxe_port: false,
        reply_to_source: loopback,
        server_port: listen.port,
    };
    match plan {
        DhcpPlan::Off => Ok(()),
        DhcpPlan::Proxy(_) => {
            let (main, how) = match (&iface, loopback) {
                (Some(i), false) => (
                    Listener::Raw(RawUdp::open(i, listen.port, listen.address)?),
                    format!(
                        "raw udp :{} on {i} (shared with the LAN's DHCP server)",
                        listen.port
                    ),
                ),
                _ => {
                    let s = bind::bind_tokio(SocketAddrV4::new(ip, listen.port), iface.as_deref())?;
                    let a = s.local_addr()?;
                    (Listener::Udp(s), format!("udp {a}"))
                }
            };
            let pxe = bind::bind_tokio(SocketAddrV4::new(ip, listen.pxe_port), iface.as_deref())?;
            let how = format!("proxyDHCP {how} + udp {}", pxe.local_addr()?);
            engine.emit(
                None,
                EventKind::ServerUp {
                    source: Source::Dhcp,
                    addr: how,
                },
            );
            let observe: listen::Observe = Arc::new(listen::proxy_observe);
            let decide: listen::Decide = Arc::new(|engine: &Engine, req, role: &PortRole| {
                decide::proxy(&engine.lab(), req, role.pxe_port, |m| engine.decide(m)).into()
            });
            let pxe_role = PortRole {
                pxe_port: true,
                ..role
            };
            // One drop report for both ports.
            let drops = Arc::new(drops::Drops::default());
            let a = listen::run(
                engine.clone(),
                main,
                role,
                observe.clone(),
                decide.clone(),
                drops.clone(),
                cancel.clone(),
            );
            let b = listen::run(
                engine.clone(),
                Listener::Udp(pxe),
                pxe_role,
                observe,
                decide,
                drops,
                cancel,
            );
            tokio::try_join!(a, b)?;
            Ok(())
        }
        DhcpPlan::Server(settings) => server::run(engine.clone(), settings, ip, role, cancel).await,
    }
}
