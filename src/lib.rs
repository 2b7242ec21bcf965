//! pxelab: network-boot a diskless Kubernetes lab from one binary, one lab.yaml and one
//! terminal.
//!
//! Layers (data flows down, commands flow up):
//! - [`config`]: lab.yaml types, validation, comment-keeping write-back.
//! - [`engine`]: inventory, node state machine, boot policy, event bus, commands.
//! - [`render`]: iPXE scripts, kernel command lines, NoCloud meta-data and user-data.
//! - wire servers [`dhcp`], [`tftp`], [`http`] and the SSH [`watch`]er report events and
//!   ask the engine for decisions; [`net`] holds what they share about the link (the
//!   IPv6 router advertisement sender).
//! - faces: [`tui`] (the only module that knows terminals), [`headless`] and the admin API
//!   in [`http::admin`].
//! - [`sim`]: simulated nodes for `pxelab demo`, tests and benchmarks.
//! - [`preflight`]: lab.yaml held against this machine (interfaces, addresses, iPXE
//!   binaries, the boot files' release), by `check` and `up`.

pub mod app;
pub mod attach;
pub mod cli;
pub mod config;
pub mod dhcp;
pub mod engine;
pub mod fetch;
pub mod headless;
pub mod http;
pub mod mac;
pub mod net;
pub mod power;
pub mod preflight;
pub mod ratelimit;
pub mod record;
pub mod render;
pub mod secrets;
pub mod sim;
pub mod statedir;
pub mod syslog;
pub mod tftp;
pub mod tui;
pub mod watch;

pub use engine::Engine;
pub use mac::Mac;
