//! The leaf network module: things the wire servers share that are about the link, not
//! about any one protocol server.
//!
//! Nothing here knows the engine, the faces, the simulator or a wire server: functions
//! take plain parameters (an interface name, a prefix, a MAC) and return or report typed
//! values. A thin task elsewhere (e.g. [`crate::dhcp::ra`]) turns those into events.
//!
//! - [`ndp`]: IPv6 Neighbor Discovery messages (Router Solicitation / Advertisement), the
//!   lab's ULA prefix, and what the kernel says about an interface (MAC, index, addresses).
//! - [`ra`]: the Router Advertisement sender that keeps iPXE from waiting ~16 s for IPv6.

pub mod ndp;
pub mod ra;
