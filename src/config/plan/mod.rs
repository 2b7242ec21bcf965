//! What each server runs with: lab.yaml's wire form turned into one typed plan per
//! server, built once, by validation only.
//!
//! Why: the servers used to read the serde structs and re-parse them on their own terms,
//! so `pxelab check` could accept what `pxelab up` then refused (a `/31` subnet, a range
//! over the broadcast address). Now the plan is built when lab.yaml is parsed, every
//! reason it cannot be built is a validation error with file:line:col, and the servers
//! take their plan instead of the file: what `check` accepts is exactly what `up` starts.

pub mod apk;
pub mod dhcp;
pub mod servers;

pub use apk::{ApkCachePlan, Upstream};
pub use dhcp::{DhcpListen, DhcpPlan, ProxyPlan, ServerPlan};
pub use servers::{AdminPlan, HttpPlan, SyslogPlan, TftpPlan, WatchPlan};

use super::report::Reporter;
use super::spans::Spans;
use super::{Lab, Problem, Severity};

/// Every server's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// DHCP: off, proxy or server, with what each needs.
    pub dhcp: DhcpPlan,
    /// TFTP, when enabled.
    pub tftp: Option<TftpPlan>,
    /// The boot HTTP server.
    pub http: HttpPlan,
    /// The loopback admin API.
    pub admin: AdminPlan,
    /// The syslog receiver, when enabled.
    pub syslog: Option<SyslogPlan>,
    /// The SSH watcher, when enabled.
    pub watch: Option<WatchPlan>,
    /// The package cache on the boot HTTP server, when enabled.
    pub apk_cache: Option<ApkCachePlan>,
}

/// Builds every server's plan, or says (with file:line:col) each reason it cannot.
pub fn build(lab: &Lab) -> Result<Plan, Vec<Problem>> {
    let spans = Spans::new(&lab.source);
    let mut r = Reporter::new(&lab.path, &spans);
    let dhcp = dhcp::build(lab, &mut r);
    let apk_cache = apk::build(lab, &mut r);
    let errors: Vec<Problem> = r
        .problems
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    match dhcp {
        Some(dhcp) if errors.is_empty() => Ok(Plan {
            dhcp,
            tftp: servers::tftp(lab),
            http: servers::http(lab),
            admin: servers::admin(lab),
            syslog: servers::syslog(lab),
            watch: servers::watch(lab),
            apk_cache,
        }),
        _ => Err(errors),
    }
}
