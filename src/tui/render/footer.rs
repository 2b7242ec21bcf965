//! The two bottom lines, under every screen.
//!
//! ```text
//!  ✔ adopted 52:54:00:12:34:56 as agent-3f2a          <- flash / `:`/`/` input line
//!  q quit  ? help  : cmd  / filter  Tab pane  Enter detail  a adopt  D forget …
//! ```

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::engine::{NodeState, Snapshot};
use crate::tui::app::{App, Level};
use crate::tui::keys;
use crate::tui::overlay::{filter, palette, Overlay};
use crate::tui::paint::style;

/// The flash line: the input being typed, else a fresh flash, else a hint about held machines.
pub fn flash(app: &App, snap: &Snapshot, f: &mut Frame, area: Rect) {
    let ui = &app.theme.ui;
    let line = match &app.overlay {
        Some(Overlay::Palette(i)) => palette::input_line(app, i),
        Some(Overlay::Filter(i)) => filter::input_line(app, i),
        _ => {
            match &app.flash {
                Some(fl) if fl.until_ms > app.now_ms => {
                    let (glyph, s) = match fl.level {
                        Level::Info => ("✔", ui.flash_info),
                        Level::Warn => ("!", ui.flash_warn),
                        Level::Error => ("✗", ui.flash_error),
                    };
                    Line::from(Span::styled(format!(" {glyph} {}", fl.text), style(s)))
                }
                _ => {
                    let held = snap
                        .counts
                        .get(NodeState::Held.name())
                        .copied()
                        .unwrap_or(0);
                    if held > 0 {
                        Line::from(Span::styled(
                        format!(" ◆ {held} machine(s) waiting to be adopted: select one and press a"),
                        style(ui.flash_warn),
                    ))
                    } else {
                        Line::default()
                    }
                }
            }
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

/// Key hints generated from the key table for the active contexts.
pub fn keys(app: &App, f: &mut Frame, area: Rect) {
    let ui = &app.theme.ui;
    let fs = style(ui.footer);
    let mut spans = vec![Span::styled(" ", fs)];
    for (key, word, dangerous) in keys::footer_within(&app.contexts(), area.width as usize) {
        let ks = if dangerous {
            fs.patch(style(ui.danger))
        } else {
            style(ui.footer_key)
        };
        spans.push(Span::styled(key, ks));
        spans.push(Span::styled(format!(" {word}  "), fs));
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(fs), area);
}
