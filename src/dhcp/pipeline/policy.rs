//! The policy and boot-information steps: whether the engine wants this MAC answered
//! (`unknown: ignore` silences an unlisted machine) and which file it boots next.
//!
//! Only clients that boot from the network (PXE firmware, UEFI HTTP boot, iPXE) are
//! asked about: an ordinary DHCP client (a node's OS renewing its lease) gets an address
//! whatever the boot policy, and asking the policy for it would mark it held.

use super::outcome::Ignored;
use crate::config::Lab;
use crate::dhcp::boot::{self, BootTarget};
use crate::dhcp::request::Request;
use crate::engine::BootDecision;
use crate::mac::Mac;

/// Boot information for a client that asks for it, per the engine's policy: `Ok(None)`
/// for a plain DHCP client (or no boot file for its firmware), `Err` when the policy says
/// to stay silent.
pub fn boot_info(
    lab: &Lab,
    req: &Request,
    policy: impl FnOnce(Mac) -> BootDecision,
) -> Result<Option<BootTarget>, Ignored> {
    if !(req.is_pxe_client() || req.is_http_client() || req.is_ipxe()) {
        return Ok(None);
    }
    let target = boot::select(lab, req).ok();
    match policy(req.mac) {
        BootDecision::Ignore => Err(Ignored::Policy(req.mac)),
        BootDecision::Hold if target.as_ref().is_some_and(|t| t.pi_bootloader) => {
            Err(Ignored::HeldPi(req.mac))
        }
        _ => Ok(target),
    }
}
