//! Node detail: the boot timeline with the time each step took, the node's recent
//! events and SSH log tail, and what it was served (secrets masked). Its state and keys
//! are here, loading in [`load`], drawing in [`draw()`].
//!
//! ```text
//! ┌ node-3 · 52:54:00:12:34:56 · k3s-agent · 10.0.0.3 · ● ready · up 1m05s ─────────┐
//! │ Timeline          took   │ Events                                              │
//! │ ✓ DHCP           0.4s    │ 12:00:01 http-fetch  HTTP 200 Kernel …              │
//! │ ✓ iPXE           1.2s    ├ Log (SSH) ──────────────────────────────────────────┤
//! │ ▶ kernel         3.1s…   │ messages: tiny-cloud main: set_hostname done        │
//! │ · initrd            -    │                                                     │
//! ├ Served: [iPXE script] cmdline  meta-data  user-data ─────────────────────────────┤
//! │ #!ipxe                                                                          │
//! │ kernel http://…/assets/vmlinuz-lts … ds=nocloud;s=http://…/nocloud/…/           │
//! └─────────────────────────────────────────────────────────────────────────────────┘
//! ```

mod draw;

pub use draw::draw;

use crate::engine::{Engine, NodeRecord};
use crate::mac::Mac;
use crate::tui::app::{App, Level};
use crate::tui::keys::Action;
use crate::tui::served::Served;

use super::Screen;

/// One node's detail, loaded by the run loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// The node.
    pub mac: Mac,
    /// Its full record (refreshed when the engine changes).
    pub record: Option<NodeRecord>,
    /// What it is served (masked).
    pub served: Vec<Served>,
    /// Which served file is shown.
    pub tab: usize,
    /// Scroll of the served file.
    pub scroll: u16,
    /// Show the previous boot instead of the current one (`p`).
    pub previous: bool,
    /// The failure (or stall) section alone, on the whole screen (Enter).
    pub why_full: bool,
    /// Cut the failure section's long lines to one row each instead of wrapping them
    /// (`w`): a 250-column k3s line wraps to several rows, which is what one wants to
    /// read it and not always to see the rest.
    pub cut_lines: bool,
}

/// Loads a node's record and what it is served into `app.detail` (keeping the tab,
/// scroll and toggles when it is the same node). Called when the detail opens and at
/// every engine change while it is shown: the record is re-read each time, the served
/// files come from [`App::served`], rendered again only when the node or the lab changed.
pub fn load(engine: &Engine, app: &mut App, mac: Mac) {
    let lab = engine.lab();
    let (tab, scroll, previous, cut_lines, why_full) = app
        .detail
        .as_ref()
        .filter(|d| d.mac == mac)
        .map(|d| (d.tab, d.scroll, d.previous, d.cut_lines, d.why_full))
        .unwrap_or((0, 0, false, false, false));
    let served = app.served.get(&lab, mac).to_vec();
    app.detail = Some(Detail {
        mac,
        record: engine.node(&mac),
        tab: tab.min(served.len().saturating_sub(1)),
        served,
        scroll,
        previous,
        cut_lines,
        why_full,
    });
}

/// The detail's own keys: tabs, scrolling, the failure view, the previous boot, Esc.
pub(crate) fn act(app: &mut App, a: Action) {
    if a == Action::PreviousBoot {
        toggle_previous_boot(app);
        return;
    }
    let Some(d) = &mut app.detail else {
        app.screen = Screen::Main;
        return;
    };
    match a {
        Action::Back => {
            app.screen = Screen::Main;
            app.detail = None;
        }
        Action::NextTab => {
            d.tab = (d.tab + 1) % d.served.len().max(1);
            d.scroll = 0;
        }
        Action::Open => d.why_full = !d.why_full,
        Action::Down => d.scroll = d.scroll.saturating_add(1),
        Action::Up => d.scroll = d.scroll.saturating_sub(1),
        Action::Top => d.scroll = 0,
        Action::ToggleWrap => d.cut_lines = !d.cut_lines,
        _ => {}
    }
}

/// `p`: the previous boot, or back to the current one.
fn toggle_previous_boot(app: &mut App) {
    let Some(d) = &mut app.detail else { return };
    let has = d.record.as_ref().is_some_and(|r| r.previous_boot.is_some());
    if has || d.previous {
        d.previous = !d.previous;
    } else {
        app.flash(Level::Info, "no earlier boot of this node seen in this run");
    }
}
