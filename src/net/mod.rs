//! The leaf network module: things the wire servers share that are about the link, not
//! about any one protocol server.
//!
//! Nothing here knows the engine, the faces, the simulator or a wire server: functions
//! take plain parameters (an interface name, a prefix, a MAC, a folder) and return or
//! report typed values. A thin task elsewhere (e.g. [`crate::dhcp::ra`]) turns those into
//! events. Keeping these here, not in the server that first needed them, is what lets
//! DHCP, TFTP, HTTP and the user-data gate share one implementation of each.
//!
//! - [`bind`]: UDP sockets bound to the lab interface (DHCP, TFTP).
//! - [`raw`]: the raw socket proxyDHCP reads port 67 through beside another server.
//! - [`arp`]: the one reader of the kernel's ARP table (TFTP, HTTP, the user-data gate).
//! - [`path`]: the one rule for mapping a requested name into a served folder (TFTP,
//!   HTTP `/ipxe/` and `/assets/`).
//! - [`ndp`]: IPv6 Neighbor Discovery messages (Router Solicitation / Advertisement), the
//!   lab's ULA prefix, and what the kernel says about an interface (MAC, index, addresses).
//! - [`ra`]: the Router Advertisement sender that keeps iPXE from waiting ~16 s for IPv6.
//! - [`ifaces`]: this machine's interfaces and their IPv4 addresses (what `check` and
//!   `up` hold `interface:` and `server_address:` against).
//! - [`wol`]: Wake-on-LAN magic packets, sent only out of the lab interface.

pub mod arp;
pub mod bind;
pub mod ifaces;
pub mod ndp;
pub mod path;
pub mod ra;
pub mod raw;
pub mod wol;
