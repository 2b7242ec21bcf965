//! DHCP: proxyDHCP (67 + 4011) beside the LAN's server, or a full server with reservations.
//!
//! Shape: a pure decision layer ([`request`] decodes, [`boot`] picks the file, [`decide`]
//! and [`server`] choose the answer, [`reply`] encodes it with dhcproto) under a thin
//! socket layer ([`net`], [`raw`], [`proxy`]).

pub mod boot;
pub mod decide;
pub mod net;
pub mod reply;
pub mod request;

use crate::engine::Engine;
use tokio_util::sync::CancellationToken;

/// Runs the DHCP server(s) the lab's `dhcp.mode` asks for until `cancel` fires.
pub async fn serve(_engine: Engine, _cancel: CancellationToken) -> anyhow::Result<()> {
    Ok(())
}
