//! The adoption / change-role dialog box.
//!
//! ```text
//! ┌ Adopt 52:54:00:12:34:56 into lab.yaml ──────────────┐
//! │ Role (↑↓)                                            │
//! │  ▸ k3s-server   the control plane                    │
//! │    k3s-agent    a worker                             │
//! │ Hostname  agent-3f2a█                                │
//! │ IP        (server mode only)                         │
//! │                                                      │
//! │ Enter adopt · Tab next field · Esc cancel            │
//! └──────────────────────────────────────────────────────┘
//! ```

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::{DialogKind, Field, NodeDialog};
use crate::tui::app::App;
use crate::tui::paint::style;
use crate::tui::render::centered;

/// Draws the node dialog.
pub fn draw(app: &App, dlg: &NodeDialog, f: &mut Frame, body: Rect) {
    let ui = &app.theme.ui;
    let d = style(ui.dialog);
    let label = |s: &str, on: bool| {
        Span::styled(
            format!("{s:<10}"),
            if on { d.patch(style(ui.title)) } else { d },
        )
    };
    let mut lines = vec![Line::from(label("Role", dlg.field == Field::Role))];
    for (i, r) in dlg.roles.iter().enumerate() {
        let picked = i == dlg.role;
        let s = if picked { style(ui.choice) } else { d };
        let help = dlg.role_help.get(i).cloned().unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(if picked { "  ▸ " } else { "    " }, d),
            Span::styled(format!("{r:<14}"), s),
            Span::styled(format!("  {help}"), d.patch(style(ui.muted))),
        ]));
    }
    lines.push(Line::default());
    let field = |name: &str, value: &str, on: bool| {
        Line::from(vec![
            label(name, on),
            Span::styled(
                format!("{value}{}", if on { "█" } else { " " }),
                if on {
                    style(ui.input)
                } else {
                    d.patch(style(ui.text))
                },
            ),
        ])
    };
    lines.push(field(
        "Hostname",
        &dlg.hostname,
        dlg.field == Field::Hostname,
    ));
    if dlg.ask_ip {
        lines.push(field("IP", &dlg.ip, dlg.field == Field::Ip));
    }
    lines.push(Line::default());
    match &dlg.error {
        Some(e) => lines.push(Line::from(Span::styled(
            format!("✗ {e}"),
            d.patch(style(ui.flash_error)),
        ))),
        None => lines.push(Line::from(Span::styled(
            match dlg.kind {
                DialogKind::Adopt => {
                    "lab.yaml gains this node (comments kept); the held machine boots."
                }
                DialogKind::Change => "lab.yaml is updated; the node gets it at its next boot.",
            },
            d.patch(style(ui.muted)),
        ))),
    }
    let verb = if dlg.kind == DialogKind::Adopt {
        "adopt"
    } else {
        "apply"
    };
    lines.push(Line::from(vec![
        Span::styled("Enter", d.patch(style(ui.footer_key))),
        Span::styled(format!(" {verb} · "), d),
        Span::styled("Tab", d.patch(style(ui.footer_key))),
        Span::styled(" next field · ", d),
        Span::styled("↑↓", d.patch(style(ui.footer_key))),
        Span::styled(" role · ", d),
        Span::styled("Esc", d.patch(style(ui.footer_key))),
        Span::styled(" cancel", d),
    ]));
    let title = match dlg.kind {
        DialogKind::Adopt => format!(" Adopt {} into lab.yaml ", dlg.mac),
        DialogKind::Change => format!(" Change {} ", dlg.mac),
    };
    let r = centered(body, 76, lines.len() as u16 + 2);
    let block = Block::bordered()
        .title(title)
        .border_style(style(ui.dialog_border))
        .style(d);
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block), r);
}
