//! DHCP: proxyDHCP (67 + 4011) beside the LAN's server, or a full server with reservations.

use crate::engine::Engine;
use tokio_util::sync::CancellationToken;

/// Runs the DHCP server(s) the lab's `dhcp.mode` asks for until `cancel` fires.
pub async fn serve(_engine: Engine, _cancel: CancellationToken) -> anyhow::Result<()> {
    Ok(())
}
