//! lab.yaml held against this machine: what `pxelab check` and `pxelab up` both verify
//! before anything binds, beyond what the file alone can say.
//!
//! Why apart from [`crate::config::validate`]: these answers depend on the machine, not
//! the file. The same lab.yaml is valid on the lab's server and wrong on a laptop that
//! lacks its interface, so validation (which edits, reloads and the demo run too) stays
//! about the file, and these checks run where the lab is about to run: `check` (unless
//! `--no-host`) and `up` (which refuses on an error unless `--keep-going`). Each is a
//! [`Problem`] with file:line:col, like every other finding.
//!
//! - [`network`]: `interface:` exists, `server_address` is one of its addresses.
//! - [`files`]: `tftp.root` holds the iPXE binaries; the Alpine release of the boot
//!   files is the one `alpine_repo` installs from; assets still match what `fetch`
//!   verified ([`crate::fetch::drift`]).

mod files;
mod network;

use crate::config::report::Reporter;
use crate::config::spans::Spans;
use crate::config::{Lab, Problem};
use crate::net::ifaces::Interfaces;

/// What is known of this machine when the checks run.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Its interfaces and their addresses.
    pub interfaces: Interfaces,
}

impl Host {
    /// This machine now (its network namespace).
    pub fn read() -> Host {
        Host {
            interfaces: crate::net::ifaces::read(),
        }
    }
}

/// Every problem of `lab` on `host`, in file order.
pub fn problems(lab: &Lab, host: &Host) -> Vec<Problem> {
    let spans = Spans::new(&lab.source);
    let mut r = Reporter::new(&lab.path, &spans);
    network::check(lab, host, &mut r);
    files::tftp_root(lab, &mut r);
    files::release(lab, &mut r);
    let mut p = r.problems;
    p.extend(crate::fetch::drift::problems(lab));
    p.sort_by_key(|p| p.location.as_ref().map(|l| (l.line, l.column)));
    p
}
