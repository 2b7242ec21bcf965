//! The DHCP plan: off, proxy beside the LAN's server, or the segment's server with a
//! parsed subnet, an ordered range of host addresses inside it and a lease time.
//!
//! Every check server mode needs before it can hand out an address is made here, once,
//! as a validation error at the offending value; `dhcp::server` takes the result and
//! checks nothing again.

use std::net::Ipv4Addr;

use crate::config::net::{lease_seconds, parse_subnet, Ipv4Net};
use crate::config::report::Reporter;
use crate::config::spans::Seg;
use crate::config::{DhcpMode, Lab};

/// Where the DHCP sockets listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpListen {
    /// The lab's address (option 54, and which address to listen on).
    pub address: Ipv4Addr,
    /// The interface to bind to, if any.
    pub interface: Option<String>,
    /// UDP port for DHCP (67).
    pub port: u16,
    /// UDP port for PXE boot-server requests (4011).
    pub pxe_port: u16,
}

/// proxyDHCP: boot information only, beside the LAN's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPlan {
    /// Where to listen.
    pub listen: DhcpListen,
    /// Relay agents whose relayed requests are answered.
    pub relays: Vec<Ipv4Addr>,
}

/// Server mode, validated: the only DHCP server of the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPlan {
    /// Where to listen.
    pub listen: DhcpListen,
    /// Our address (option 54).
    pub server: Ipv4Addr,
    /// The subnet served (prefix 8..=30, so it has host addresses to hand out).
    pub subnet: Ipv4Net,
    /// Dynamic range, inclusive, ordered, host addresses of `subnet`.
    pub range: (Ipv4Addr, Ipv4Addr),
    /// Lease time in seconds (nonzero); [`crate::config::net::INFINITE_LEASE`] for
    /// `lease_time: infinite`.
    pub lease_secs: u32,
    /// Default gateway handed out.
    pub router: Option<Ipv4Addr>,
    /// DNS servers handed out.
    pub dns: Vec<Ipv4Addr>,
    /// Domain name handed out.
    pub domain: Option<String>,
}

impl ServerPlan {
    /// The subnet mask.
    pub fn mask(&self) -> Ipv4Addr {
        self.subnet.netmask()
    }

    /// Whether `ip` is a host address of the subnet (neither network nor broadcast).
    pub fn in_subnet(&self, ip: Ipv4Addr) -> bool {
        self.subnet.contains(&ip) && ip != self.subnet.network() && ip != self.subnet.broadcast()
    }

    /// Whether `ip` is in the dynamic range.
    pub fn in_range(&self, ip: Ipv4Addr) -> bool {
        ip >= self.range.0 && ip <= self.range.1
    }
}

/// What the DHCP server runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpPlan {
    /// No DHCP at all.
    Off,
    /// proxyDHCP.
    Proxy(ProxyPlan),
    /// The segment's DHCP server.
    Server(ServerPlan),
}

/// Prefix lengths server mode can serve: shorter is not a lab segment, longer leaves no
/// address for a client besides the network and broadcast addresses.
const SERVER_PREFIXES: std::ops::RangeInclusive<u8> = 8..=30;

/// Builds the DHCP plan, reporting every problem of the `dhcp:` section to `r`;
/// `None` when one of them stops it.
pub(super) fn build(lab: &Lab, r: &mut Reporter<'_>) -> Option<DhcpPlan> {
    let d = &lab.file.dhcp;
    let at = |k| [Seg::Key("dhcp"), Seg::Key(k)];
    let before = r.problems.len();
    let lease_secs = lease_seconds(&d.lease_time);
    if lease_secs.is_none() {
        r.error(
            &at("lease_time"),
            format!(
                "`{}` is not a lease time (seconds, or a number with s, m, h or d: 3600, 30m, 12h, 1d; or infinite)",
                d.lease_time
            ),
        );
    }
    let subnet = match d.subnet.as_deref().map(parse_subnet) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            r.error(&at("subnet"), e.to_string());
            None
        }
        None => None,
    };
    let server = d.mode == DhcpMode::Server;
    if server {
        if d.subnet.is_none() {
            r.error(
                &at("mode"),
                "server mode needs dhcp.subnet (e.g. 192.168.64.128/27)".to_string(),
            );
        }
        if d.range.is_none() {
            r.error(
                &at("mode"),
                "server mode needs dhcp.range (first and last address handed out)".to_string(),
            );
        }
        if let Some(s) = subnet.filter(|s| !SERVER_PREFIXES.contains(&s.prefix_len())) {
            let why = if s.prefix_len() > 30 {
                "leaves no address for clients besides the network and broadcast addresses"
            } else {
                "is larger than a lab segment"
            };
            r.error(
                &at("subnet"),
                format!("{s} {why}: server mode needs a prefix from /8 to /30"),
            );
        }
    }
    if let Some([a, b]) = d.range {
        if a > b {
            r.error(
                &at("range"),
                format!("range starts at {a} but ends before it at {b}"),
            );
        }
        if let Some(s) = subnet {
            for (i, ip) in [a, b].into_iter().enumerate() {
                let at_i = [Seg::Key("dhcp"), Seg::Key("range"), Seg::Index(i)];
                if !s.contains(&ip) {
                    r.error(&at_i, format!("{ip} is outside dhcp.subnet {s}"));
                } else if server && SERVER_PREFIXES.contains(&s.prefix_len()) {
                    let which = if ip == s.network() {
                        "network"
                    } else if ip == s.broadcast() {
                        "broadcast"
                    } else {
                        continue;
                    };
                    r.error(
                        &at_i,
                        format!("{ip} is the {which} address of {s}, which no client can have"),
                    );
                }
            }
        }
    }
    if let (Some(gw), Some(s)) = (d.router, subnet) {
        if !s.contains(&gw) {
            r.error(&at("router"), format!("{gw} is outside dhcp.subnet {s}"));
        }
    }
    if r.problems.len() > before {
        return None;
    }
    let listen = DhcpListen {
        address: lab.server_address,
        interface: lab.file.interface.clone(),
        port: d.port,
        pxe_port: d.pxe_port,
    };
    Some(match d.mode {
        DhcpMode::Off => DhcpPlan::Off,
        DhcpMode::Proxy => DhcpPlan::Proxy(ProxyPlan {
            listen,
            relays: d.relays.clone(),
        }),
        DhcpMode::Server => {
            let ([a, b], subnet, lease_secs) = (d.range?, subnet?, lease_secs?);
            DhcpPlan::Server(ServerPlan {
                listen,
                server: lab.server_address,
                subnet,
                range: (a, b),
                lease_secs,
                router: d.router,
                dns: d.dns.clone(),
                domain: d.domain.clone(),
            })
        }
    })
}
