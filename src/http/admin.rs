//! The loopback admin API: nodes, events (Server-Sent Events), adopt.

use crate::engine::Engine;
use tokio_util::sync::CancellationToken;

/// Runs the admin API on 127.0.0.1 until `cancel` fires.
pub async fn serve(_engine: Engine, _cancel: CancellationToken) -> anyhow::Result<()> {
    Ok(())
}
