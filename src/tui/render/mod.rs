//! Drawing: a pure function of the console state and the engine snapshot.
//!
//! ```text
//! ┌──────────────────────────────────────────────────────────────┐
//! │ screen: main (header, nodes, events) or node detail          │
//! │                                                              │
//! ├──────────────────────────────────────────────────────────────┤
//! │ flash line / filter or palette input                         │
//! │ footer: key hints generated from the key table               │
//! └──────────────────────────────────────────────────────────────┘
//!   overlays on top: help, palette suggestions, dialog, confirm
//! ```

mod detail;
mod dialog;
mod footer;
mod header;
mod help;
mod main_screen;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Block;
use ratatui::Frame;

use super::app::{App, Overlay, Screen};
use super::paint::style;
use crate::engine::Snapshot;

/// Draws one frame.
pub fn render(app: &App, snap: &Snapshot, f: &mut Frame) {
    let area = f.area();
    f.render_widget(Block::default().style(style(app.theme.ui.text)), area);
    let [body, flash, keys] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    match app.screen {
        Screen::Main => main_screen::render(app, snap, f, body),
        Screen::Detail => detail::render(app, snap, f, body),
    }
    footer::flash(app, snap, f, flash);
    footer::keys(app, f, keys);
    match &app.overlay {
        Some(Overlay::Help { scroll }) => help::render(app, *scroll, f, body),
        Some(Overlay::Palette(i)) => footer::suggestions(app, i, f, body),
        Some(Overlay::Dialog(d)) => dialog::render(app, d, f, body),
        Some(Overlay::Confirm(c)) => dialog::confirm(app, c, f, body),
        Some(Overlay::Filter(_)) | None => {}
    }
}

/// The number of node rows that fit when the terminal is `height` rows tall.
pub fn table_rows_for(height: u16) -> usize {
    let body = height.saturating_sub(2);
    main_screen::split(Rect::new(0, 0, 80, body), false)
        .1
        .height
        .saturating_sub(3) as usize
}

/// A rectangle of `w`×`h` centred in `r` (clipped to it).
pub(crate) fn centered(r: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(r.width);
    let h = h.min(r.height);
    Rect::new(r.x + (r.width - w) / 2, r.y + (r.height - h) / 2, w, h)
}
