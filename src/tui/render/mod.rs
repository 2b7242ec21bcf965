//! Drawing: a pure function of the console state and the engine snapshot. This module
//! lays the frame out; each screen ([`super::screen`]) and overlay ([`super::overlay`])
//! draws itself, and [`footer`] the two bottom lines.
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
//!
//!   below MIN_W×MIN_H:  terminal too small (need 60×15, have 40×10) · q quits
//! ```

mod footer;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::app::App;
use super::overlay;
use super::paint::style;
use super::screen::{detail, main, Screen};
use crate::engine::Snapshot;

/// Draws one frame.
pub fn render(app: &App, snap: &Snapshot, f: &mut Frame) {
    let area = f.area();
    // The whole frame gets the theme's background, so a light theme is light on a dark
    // terminal too (cells no widget draws would otherwise keep the terminal's colour).
    let ui = &app.theme.ui;
    f.render_widget(
        Block::default().style(style(ui.background).patch(style(ui.text))),
        area,
    );
    if area.width < MIN_W || area.height < MIN_H {
        too_small(app, f, area);
        return;
    }
    let [body, flash, keys] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    match app.screen {
        Screen::Main => main::draw(app, snap, f, body),
        Screen::Detail => detail::draw(app, snap, f, body),
    }
    footer::flash(app, snap, f, flash);
    footer::keys(app, f, keys);
    overlay::draw(app, f, body);
}

/// The smallest terminal the console draws in: the header, four node rows, a few
/// events and the footer's most used keys.
pub const MIN_W: u16 = 60;
/// See [`MIN_W`].
pub const MIN_H: u16 = 15;

/// Below the minimum, one notice instead of a screen too cut to read.
fn too_small(app: &App, f: &mut Frame, area: Rect) {
    let need = format!(
        "(need {MIN_W}×{MIN_H}, have {}×{})",
        area.width, area.height
    );
    let one = format!("terminal too small {need}");
    // One line when it fits, else broken where the words allow it (never inside `W×H`).
    let lines: Vec<Line> = if one.chars().count() <= area.width as usize {
        vec![Line::from(one), Line::from("q quits")]
    } else {
        vec![
            Line::from("terminal too small"),
            Line::from(need),
            Line::from("q quits"),
        ]
    };
    let h = (lines.len() as u16).min(area.height);
    let p = Paragraph::new(lines)
        .style(style(app.theme.ui.flash_warn))
        .alignment(Alignment::Center);
    let r = Rect::new(area.x, area.y + (area.height - h) / 2, area.width, h);
    f.render_widget(p, r);
}

/// The number of node rows that fit when the terminal is `height` rows tall.
pub fn table_rows_for(height: u16) -> usize {
    let body = height.saturating_sub(2);
    main::split(Rect::new(0, 0, 80, body), false)
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
