//! `pxelab demo`: a virtual lab on loopback with simulated nodes.

use crate::app::Face;

/// Options of `pxelab demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Number of simulated nodes.
    pub nodes: usize,
    /// The face.
    pub face: Face,
    /// Speed factor.
    pub speed: f64,
    /// Stop after this long.
    pub duration: Option<std::time::Duration>,
}

/// Runs the demo.
pub async fn run(_opts: DemoOptions) -> anyhow::Result<()> {
    anyhow::bail!("the demo is not built yet")
}
