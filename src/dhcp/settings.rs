//! Server mode's settings and the clock the lease table runs on.
//!
//! The settings are the DHCP server plan lab.yaml's validation builds
//! ([`crate::config::plan::ServerPlan`]): subnet, range and lease time are parsed and
//! checked there, once, so `pxelab check` refuses exactly what server mode could not run.

use std::time::{SystemTime, UNIX_EPOCH};

/// The server-mode settings, validated by lab.yaml's validation.
pub type Settings = crate::config::plan::ServerPlan;

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
