//! The console: ratatui screens. The only module that imports ratatui or crossterm.

use crate::engine::Engine;
use tokio_util::sync::CancellationToken;

/// Runs the console until the operator quits or `cancel` fires.
pub async fn run(
    _engine: Engine,
    _cancel: CancellationToken,
    _theme: Option<String>,
) -> anyhow::Result<()> {
    Ok(())
}
