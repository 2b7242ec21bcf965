//! The `?` help screen, generated from the key table: its keys (scroll, Esc) and its box.
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

use super::palette::COMMANDS;
use super::Overlay;
use crate::tui::app::{App, Effect};
use crate::tui::keys::{self, Action};
use crate::tui::paint::style;
use crate::tui::render::centered;
use crate::tui::theme::StyleSpec;

/// Scrolls or closes the help.
pub(crate) fn act(app: &mut App, a: Action) -> Vec<Effect> {
    let Some(Overlay::Help { scroll }) = &mut app.overlay else {
        return Vec::new();
    };
    match a {
        Action::Back => app.overlay = None,
        Action::Down => *scroll = scroll.saturating_add(1),
        Action::Up => *scroll = scroll.saturating_sub(1),
        _ => {}
    }
    Vec::new()
}

/// Draws the help over `body`.
pub fn draw(app: &App, scroll: u16, f: &mut Frame, body: Rect) {
    let ui = &app.theme.ui;
    let d = style(ui.dialog);
    let keyst = d.patch(style(StyleSpec {
        bg: None,
        ..ui.footer_key
    }));
    let dangerst = d.patch(style(StyleSpec {
        bg: None,
        ..ui.danger
    }));
    let head = d.patch(style(StyleSpec {
        bg: None,
        ..ui.title
    }));
    // Sections as blocks of lines, then two columns balanced by line count.
    let mut blocks: Vec<Vec<Line>> = Vec::new();
    for (ctx, rows) in keys::help() {
        let mut b = vec![Line::from(Span::styled(ctx.title(), head))];
        for (k, h, danger) in rows {
            let mut l = vec![
                Span::styled(format!("  {k:<14}"), if danger { dangerst } else { keyst }),
                Span::styled(h.to_string(), d),
            ];
            if danger {
                l.push(Span::styled(" (asks)", dangerst));
            }
            b.push(Line::from(l));
        }
        blocks.push(b);
    }
    let mut cmds = vec![Line::from(Span::styled(
        "Commands (: then Tab completes)",
        head,
    ))];
    for c in COMMANDS {
        cmds.push(Line::from(vec![
            Span::styled(format!("  :{:<7}{:<10}", c.name, c.arg), keyst),
            Span::styled(format!("aliases {}", c.aliases.join(" ")), d),
        ]));
    }
    cmds.push(Line::from(Span::styled(
        "/text filters, /!text inverts",
        d.patch(style(StyleSpec {
            bg: None,
            ..ui.muted
        })),
    )));
    blocks.push(cmds);
    let total: usize = blocks.iter().map(Vec::len).sum();
    let (mut left, mut right): (Vec<Line>, Vec<Line>) = (Vec::new(), Vec::new());
    for b in blocks {
        if left.len() + b.len() / 2 <= total / 2 {
            left.extend(b);
        } else {
            right.extend(b);
        }
    }
    let w = body.width.saturating_sub(2).min(150);
    let colw = (w as usize).saturating_sub(3) / 2;
    let mut lines: Vec<Line> = Vec::new();
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
        spans.push(Span::styled(" ".repeat(colw.saturating_sub(used) + 1), d));
        if let Some(r) = right.get(i) {
            let mut used = 0;
            for s in &r.spans {
                let t = crate::tui::fmt::cut(&s.content, colw.saturating_sub(used));
                used += t.chars().count();
                spans.push(Span::styled(t, s.style));
            }
        }
        lines.push(Line::from(spans));
    }
    let h = (lines.len() as u16 + 2).min(body.height);
    let r = centered(body, w, h);
    let block = Block::bordered()
        .title(" Keys · from the key table · j/k scroll · Esc closes ")
        .border_style(style(ui.dialog_border))
        .style(d);
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), r);
}
