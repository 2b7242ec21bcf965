//! SSH watcher: follows each booted node's tiny-cloud phases and k3s join.

pub mod parse;

use crate::engine::Engine;
use tokio_util::sync::CancellationToken;

/// Watches nodes as they fetch their NoCloud data, until `cancel` fires.
pub async fn run(_engine: Engine, _cancel: CancellationToken) -> anyhow::Result<()> {
    Ok(())
}
