//! The relay step, first in the pipeline: a relayed request (giaddr set) is answered to
//! port 67 of the giaddr, so only a relay inside the served subnet is trusted; any other
//! giaddr would let one spoofed packet aim the server's replies at any address.

use super::outcome::Ignored;
use crate::dhcp::request::Request;
use crate::dhcp::settings::Settings;

/// `Err` when the request came through a relay outside the subnet.
pub fn check(s: &Settings, req: &Request) -> Result<(), Ignored> {
    match req.relay() {
        Some(relay) if !s.in_subnet(relay) => Err(Ignored::RelayOutside {
            relay,
            network: s.subnet.network(),
            prefix: s.subnet.prefix_len(),
        }),
        _ => Ok(()),
    }
}
