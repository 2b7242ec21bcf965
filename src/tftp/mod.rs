//! TFTP: read-only iPXE binaries from the configured root.

use crate::engine::Engine;
use tokio_util::sync::CancellationToken;

/// Runs the TFTP server until `cancel` fires.
pub async fn serve(_engine: Engine, _cancel: CancellationToken) -> anyhow::Result<()> {
    Ok(())
}
