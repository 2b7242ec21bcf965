//! What the service cannot do itself: reaching a running machine (a reboot over SSH, a
//! power action through the node's `power:` driver). The engine imports no watcher and
//! no driver, so `pxelab up` hands the service [`crate::power::LabControl`], and tests
//! hand it a fake or [`NoControl`].

use std::future::Future;
use std::pin::Pin;

use super::super::Engine;
use super::command::PowerAction;
use crate::mac::Mac;

/// A boxed future returned by [`NodeControl`] methods.
pub type ControlFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Reaches running machines on the service's behalf. Each method resolves to what was
/// done (e.g. the address a reboot was sent to) or why it failed.
pub trait NodeControl: Send + Sync + 'static {
    /// Reboots `mac`.
    fn reboot(&self, engine: Engine, mac: Mac) -> ControlFuture;

    /// A power action on `mac`; `None` where this control has no way to power machines.
    fn power(&self, _engine: Engine, _mac: Mac, _action: PowerAction) -> Option<ControlFuture> {
        None
    }
}

/// A control that reaches nothing: reboot fails saying so (one-shot tools, tests).
pub struct NoControl;

impl NodeControl for NoControl {
    fn reboot(&self, _engine: Engine, mac: Mac) -> ControlFuture {
        Box::pin(async move { Err(format!("{mac}: nothing here can reach running nodes")) })
    }
}
