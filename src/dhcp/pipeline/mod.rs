//! Server mode's decision as a pipeline of small steps, each a function over typed
//! inputs returning a typed [`Outcome`]:
//!
//! ```text
//! request ─► relay::check ─► kinds::{discover,request,release,decline,inform}
//!                              │ policy::boot_info   (does the engine want it answered?)
//!                              │ address::{choose,refusal}  (which address, or why not)
//!                              ▼
//!                           Outcome ─► respond::respond ─► bytes + lease event
//! ```
//!
//! Why steps and types, not one long match: each rule (the relay check, who may have
//! an address, when the policy is asked) lives in one small function, and the table
//! tests (`tests.rs`) state every (request kind, lease-table state) → outcome row
//! without decoding reply bytes. Pure: a lease table and a clock, no sockets.

pub mod address;
pub mod kinds;
pub mod outcome;
pub mod policy;
pub mod relay;
pub mod respond;

pub use outcome::{Grant, Ignored, Outcome, Passed, Refused};
pub use respond::{respond, Handled};

use crate::config::Lab;
use crate::engine::BootDecision;
use crate::mac::Mac;

use super::leases::Leases;
use super::request::{MsgType, Request};
use super::settings::Settings;
use kinds::Ctx;

/// The typed decision about one request; updates the lease table.
pub fn outcome(
    s: &Settings,
    lab: &Lab,
    t: &mut Leases,
    req: &Request,
    now: u64,
    policy: impl FnOnce(Mac) -> BootDecision,
) -> Outcome {
    if let Err(e) = relay::check(s, req) {
        return Outcome::Ignore(e);
    }
    let c = Ctx { s, lab, req, now };
    match req.msg {
        MsgType::Discover => kinds::discover(&c, t, policy),
        MsgType::Request => kinds::request(&c, t, policy),
        MsgType::Release => kinds::release(&c, t),
        MsgType::Decline => kinds::decline(&c, t),
        MsgType::Inform => kinds::inform(&c, policy),
    }
}

/// The server's answer to one request: [`outcome`], then [`respond`].
pub fn decide(
    s: &Settings,
    lab: &Lab,
    t: &mut Leases,
    req: &Request,
    now: u64,
    policy: impl FnOnce(Mac) -> BootDecision,
) -> Handled {
    let o = outcome(s, lab, t, req, now, policy);
    respond(s, lab, req, o)
}

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod tests;
