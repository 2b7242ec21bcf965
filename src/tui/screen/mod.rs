//! The console's two screens: [`main`] (header, node table, events) and [`detail`] (one
//! node). Each holds its state, handles its keys and draws itself.

pub mod detail;
pub mod main;

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Header, node table, event pane.
    Main,
    /// One node's timeline, logs and served files.
    Detail,
}
