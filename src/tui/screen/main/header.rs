//! The two header lines of the main screen.
//!
//! ```text
//!  pxelab ▸ homelab   ▲ proxyDHCP :67/:4011  ▲ TFTP :69  ▲ HTTP 10.0.0.1:8080  ▼ admin :7480
//!  7 nodes  ● 2 ready  ↓ 1 kernel  ⏸ 1 held  ✗ 1 failed       dropped 0 · refused 0 · events 812
//! ```
//!
//! Attached to another machine's pxelab (`pxelab attach`), the first line also names it:
//! ` pxelab ▸ homelab ⇄ https://10.0.0.1:7480 SHA256:F6:F3:64:8D:80…   ▲ HTTP …`, or
//! where that does not fit ` ⇄ 10.0.0.1:7480 ▸ homelab   ▲ HTTP …`.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::engine::{NodeState, Snapshot};
use crate::tui::app::App;
use crate::tui::paint::style;

/// Draws the header into a 2-line area.
pub fn render(app: &App, snap: &Snapshot, f: &mut Frame, area: Rect) {
    let ui = &app.theme.ui;
    let hs = style(ui.header);
    // Whole labels when they fit; else each server by its first word (`▲ HTTP`), and
    // an attached server by its address in place of `pxelab` (` ⇄ 10.0.0.1:7480 ▸ lab`),
    // so every server's state stays visible on an 80-column terminal.
    let width = area.width as usize;
    let used = |v: &[Span]| v.iter().map(|s| s.content.chars().count()).sum::<usize>();
    let title = |short: bool| {
        let lead = match (&app.attached, short) {
            (Some(a), true) => format!(" {}▸ ", a.header_short()),
            _ => " pxelab ▸ ".to_string(),
        };
        let mut v = vec![
            Span::styled(lead, hs),
            Span::styled(format!("{} ", snap.lab_name), style(ui.header_title)),
        ];
        if let (Some(a), false) = (&app.attached, short) {
            v.push(Span::styled(a.header(), hs));
        }
        v
    };
    let full = servers(app, snap, false);
    let mut l1 = title(false);
    if used(&l1) + used(&full) <= width {
        l1.extend(full);
    } else {
        let short = servers(app, snap, true);
        if used(&l1) + used(&short) > width {
            l1 = title(true);
        }
        l1.extend(short);
    }
    let mut l2 = vec![Span::styled(format!(" {} nodes ", snap.nodes.len()), hs)];
    for s in NodeState::ALL {
        if let Some(n) = snap.counts.get(s.name()).filter(|n| **n > 0) {
            l2.push(Span::styled(" ", hs));
            let st = hs.patch(style(app.theme.state.of(s)));
            l2.push(Span::styled(
                format!("{} {n} {}", crate::tui::fmt::glyph(s), s.name()),
                st,
            ));
        }
    }
    let right = format!(
        "  dropped {} · refused {} · events {} ",
        snap.dhcp_dropped,
        snap.http_refused + snap.tftp_refused,
        snap.events
    );
    let used: usize = l2.iter().map(|s| s.content.chars().count()).sum();
    let mut right = right;
    if used + right.chars().count() > area.width as usize {
        right = format!(
            "  drop {} · ref {} ",
            snap.dhcp_dropped,
            snap.http_refused + snap.tftp_refused
        );
    }
    let pad = (area.width as usize).saturating_sub(used + right.chars().count());
    l2.push(Span::styled(" ".repeat(pad), hs));
    l2.push(Span::styled(right, hs));
    let p = Paragraph::new(vec![Line::from(l1), Line::from(l2)]).style(hs);
    f.render_widget(p, area);
}

/// The servers' states: `▲ TFTP :69`, or `▲ TFTP` when `short`.
fn servers<'a>(app: &App, snap: &Snapshot, short: bool) -> Vec<Span<'a>> {
    let ui = &app.theme.ui;
    let hs = style(ui.header);
    let mut out = Vec::new();
    for s in &app.lab.servers {
        let st = snap.servers.iter().find(|x| x.source == s.source);
        let (glyph, sty, tail) = match st {
            Some(x) if x.up => ("▲", style(ui.server_up), String::new()),
            Some(_) if short => ("▼", style(ui.server_down), String::new()),
            Some(x) => (
                "▼",
                style(ui.server_down),
                format!(" ({})", crate::tui::fmt::cut(&x.detail, 24)),
            ),
            None => ("…", hs, String::new()),
        };
        let label = if short {
            s.label.split(' ').next().unwrap_or_default()
        } else {
            s.label.as_str()
        };
        out.push(Span::styled("  ", hs));
        out.push(Span::styled(format!("{glyph} {label}{tail}"), sty));
    }
    out
}
