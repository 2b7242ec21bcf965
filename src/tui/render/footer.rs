//! The two bottom lines and the palette's suggestion list.
//!
//! ```text
//! ┌ :th ─────────────────────────────┐   <- suggestions (palette only)
//! │ theme  switch colours: …         │
//! └──────────────────────────────────┘
//!  ✔ adopted 52:54:00:12:34:56 as agent-3f2a          <- flash / `:`/`/` input line
//!  q quit  ? help  : cmd  / filter  Tab pane  Enter detail  a adopt  D forget …
//! ```

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use crate::engine::{NodeState, Snapshot};
use crate::tui::app::{App, Input, Level, Overlay};
use crate::tui::keys;
use crate::tui::paint::style;
use crate::tui::palette;

/// The flash line: the input being typed, else a fresh flash, else a hint about held machines.
pub fn flash(app: &App, snap: &Snapshot, f: &mut Frame, area: Rect) {
    let ui = &app.theme.ui;
    let line = match &app.overlay {
        Some(Overlay::Palette(i)) => Line::from(vec![
            Span::styled(":", style(ui.footer_key)),
            Span::styled(format!("{}█", i.text), style(ui.text)),
        ]),
        Some(Overlay::Filter(i)) => Line::from(vec![
            Span::styled("/", style(ui.footer_key)),
            Span::styled(format!("{}█", i.text), style(ui.text)),
            Span::styled(
                "   (!text inverts · Enter keeps · Esc clears)",
                style(ui.muted),
            ),
        ]),
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

/// The palette's completion list, just above the input line.
pub fn suggestions(app: &App, input: &Input, f: &mut Frame, body: Rect) {
    let ui = &app.theme.ui;
    let items = palette::complete(&input.text);
    if items.is_empty() || body.height < 4 {
        return;
    }
    let n = items.len().min(8) as u16;
    let w = body.width.min(72);
    let r = Rect::new(body.x, body.y + body.height.saturating_sub(n + 2), w, n + 2);
    let pick = input.pick.min(items.len() - 1);
    let lines: Vec<Line> = items
        .iter()
        .take(n as usize)
        .enumerate()
        .map(|(i, (cmd, help))| {
            let s = if i == pick {
                style(ui.choice)
            } else {
                style(ui.dialog)
            };
            Line::from(vec![
                Span::styled(format!(" :{cmd:<22}"), s),
                Span::styled(format!(" {help}"), style(ui.dialog).patch(style(ui.muted))),
            ])
        })
        .collect();
    let block = Block::bordered()
        .title(" commands · Tab completes · Enter runs ")
        .border_style(style(ui.dialog_border))
        .style(style(ui.dialog));
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block), r);
}
