//! HTTP: per-node iPXE scripts, boot assets, NoCloud data; and the loopback admin API.

pub mod admin;

use crate::engine::Engine;
use tokio_util::sync::CancellationToken;

/// Runs the boot HTTP server until `cancel` fires.
pub async fn serve(_engine: Engine, _cancel: CancellationToken) -> anyhow::Result<()> {
    Ok(())
}
