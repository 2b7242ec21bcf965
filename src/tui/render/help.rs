//! The `?` help screen, generated from the key table.
//!
//! ```text
//! ┌ Keys · dangerous ones ask first ───────────────────────────┐
//! │ Everywhere                                                  │
//! │   q Ctrl-C      quit pxelab (stops the servers)             │
//! │ Node table                                                  │
//! │   D             forget: remove the node from lab.yaml  (!)  │
//! │ Commands: :nodes :events :adopt [MAC] :theme NAME …         │
//! └─────────────────────────────────────────────────────────────┘
//! ```

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::centered;
use crate::tui::app::App;
use crate::tui::keys;
use crate::tui::paint::style;
use crate::tui::palette::COMMANDS;

/// Draws the help over `body`.
pub fn render(app: &App, scroll: u16, f: &mut Frame, body: Rect) {
    let ui = &app.theme.ui;
    let d = style(ui.dialog);
    let mut lines: Vec<Line> = Vec::new();
    let sections = keys::help();
    let half = sections.len().div_ceil(2);
    let col = |secs: &[(keys::Context, Vec<keys::HelpRow>)]| {
        let mut out: Vec<Line> = Vec::new();
        for (ctx, rows) in secs {
            out.push(Line::from(Span::styled(
                ctx.title(),
                d.patch(style(ui.title)),
            )));
            for (k, h, danger) in rows {
                let ks = if *danger {
                    d.patch(style(ui.danger))
                } else {
                    d.patch(style(ui.footer_key))
                };
                let mut l = vec![
                    Span::styled(format!("  {:<14}", k), ks),
                    Span::styled(h.to_string(), d),
                ];
                if *danger {
                    l.push(Span::styled(" (asks first)", d.patch(style(ui.danger))));
                }
                out.push(Line::from(l));
            }
        }
        out
    };
    let left = col(&sections[..half]);
    let right = col(&sections[half..]);
    let w = body.width.saturating_sub(4).min(150);
    let colw = (w as usize).saturating_sub(4) / 2;
    for i in 0..left.len().max(right.len()) {
        let mut spans: Vec<Span> = Vec::new();
        let mut used = 0;
        if let Some(l) = left.get(i) {
            for s in &l.spans {
                let t = crate::tui::fmt::cut(&s.content, colw.saturating_sub(used));
                used += t.chars().count();
                spans.push(Span::styled(t, s.style));
            }
        }
        spans.push(Span::styled(" ".repeat(colw.saturating_sub(used) + 2), d));
        if let Some(r) = right.get(i) {
            spans.extend(r.spans.iter().cloned());
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "Commands (type : then Tab to complete)",
        d.patch(style(ui.title)),
    )));
    for c in COMMANDS {
        lines.push(Line::from(vec![
            Span::styled(
                format!("  :{:<8}{:<11}", c.name, c.arg),
                d.patch(style(ui.footer_key)),
            ),
            Span::styled(format!("{}  (aliases: {})", c.help, c.aliases.join(" ")), d),
        ]));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "Filter: / then text; a leading ! shows what does NOT match. Themes: --theme, lab.yaml theme:, :theme.",
        d.patch(style(ui.muted)),
    )));
    let h = (lines.len() as u16 + 2).min(body.height);
    let r = centered(body, w, h);
    let block = Block::bordered()
        .title(" Keys · generated from the key table · dangerous ones ask first ")
        .border_style(style(ui.dialog_border))
        .style(d);
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), r);
}
