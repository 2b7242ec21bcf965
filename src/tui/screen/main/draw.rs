//! Drawing the main screen (see [`super`] for its layout).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::columns::{self, Col};
use super::header;
use super::{split_filter, Focus};
use crate::engine::snapshot::NodeView;
use crate::engine::state::STEPS;
use crate::engine::{NodeState, Snapshot};
use crate::tui::app::App;
use crate::tui::events::EventClass;
use crate::tui::fmt;
use crate::tui::paint::style;

/// Splits the body into header, node table and event pane.
pub fn split(area: Rect, events_focus: bool) -> (Rect, Rect, Rect) {
    let ev = if events_focus {
        Constraint::Percentage(60)
    } else {
        Constraint::Percentage(38)
    };
    let [h, n, e] = Layout::vertical([Constraint::Length(2), Constraint::Min(4), ev]).areas(area);
    (h, n, e)
}

/// Draws the main screen.
pub fn draw(app: &App, snap: &Snapshot, f: &mut Frame, area: Rect) {
    let (h, n, e) = split(area, app.main.focus == Focus::Events);
    header::render(app, snap, f, h);
    nodes(app, snap, f, n);
    events(app, f, e);
}

fn pane<'a>(app: &App, title: Vec<Span<'a>>, focused: bool) -> Block<'a> {
    let ui = &app.theme.ui;
    Block::bordered()
        .border_style(style(if focused { ui.border_focus } else { ui.border }))
        .title(Line::from(title))
}

/// The step column: state, progress through the chain, phase or failure; while the
/// SSH watcher still gets no answer, how long it has been trying.
pub fn step_text(n: &NodeView) -> String {
    let step = state_text(n);
    match ssh_wait(n) {
        Some(w) => format!("{step} · {w}"),
        None => step,
    }
}

/// `still waiting for :22, 10 tries` when the node's latest event is the watcher's
/// repeated `SSH connecting to ADDR (attempt N)` (N > 1), else `None`.
pub fn ssh_wait(n: &NodeView) -> Option<String> {
    let text = n.last_event.as_deref()?;
    let rest = text.strip_prefix("SSH connecting to ")?;
    let (addr, tail) = rest.split_once(" (attempt ")?;
    let tries: u32 = tail.strip_suffix(')')?.parse().ok()?;
    let port = addr.rsplit_once(':').map(|(_, p)| p).unwrap_or("22");
    (tries > 1).then(|| format!("still waiting for :{port}, {tries} tries"))
}

fn state_text(n: &NodeView) -> String {
    match n.state {
        NodeState::Held => "held: select and press a to adopt".into(),
        // The ✗ glyph already says failed: the cell is the reason itself, so its first
        // words ("token mismatch: …") fit even the 80-column table.
        NodeState::Failed => match (&n.failure_reason, &n.failure) {
            (Some(reason), _) => reason.clone(),
            (None, Some(line)) => format!("failed: {line}"),
            (None, None) => "failed".into(),
        },
        _ if n.stall.is_some() => n.stall.clone().unwrap_or_default(),
        NodeState::Idle if n.known => "idle (not seen yet)".into(),
        NodeState::TinyCloud => match n.cloud_phase {
            Some(p) => format!("tiny-cloud {p:?} ({})", progress(n.state)).to_lowercase(),
            None => format!("tiny-cloud ({})", progress(n.state)),
        },
        s => match STEPS.iter().position(|(_, st)| *st == s) {
            Some(_) => format!("{} ({})", s.name(), progress(s)),
            None => s.name().to_string(),
        },
    }
}

fn progress(s: NodeState) -> String {
    let total = STEPS.len() - 1;
    let k = STEPS
        .iter()
        .position(|(_, st)| *st == s)
        .map(|i| i + 1)
        .unwrap_or(0);
    format!("{k}/{total}")
}

fn nodes(app: &App, snap: &Snapshot, f: &mut Frame, area: Rect) {
    let ui = &app.theme.ui;
    let focused = app.main.focus == Focus::Nodes;
    let mut title = vec![
        Span::styled(" Nodes ", style(ui.title)),
        Span::styled(
            format!(
                "{}/{} · sort {}{} ",
                app.main.rows.len(),
                snap.nodes.len(),
                app.main.sort.name(),
                if app.main.reverse { " ↑" } else { "" }
            ),
            style(ui.muted),
        ),
    ];
    if !app.main.node_filter.is_empty() {
        title.push(Span::styled(
            format!("· /{} ", app.main.node_filter),
            style(ui.flash_warn),
        ));
    }
    let block = pane(app, title, focused);
    let inner_h = area.height.saturating_sub(3) as usize;
    // Keep the selection visible; only the visible rows are built.
    let mut off = app.main.table_offset.get();
    if app.main.selected < off {
        off = app.main.selected;
    }
    if inner_h > 0 && app.main.selected >= off + inner_h {
        off = app.main.selected + 1 - inner_h;
    }
    off = off.min(app.main.rows.len().saturating_sub(inner_h));
    app.main.table_offset.set(off);
    let muted = style(ui.muted);
    let cols = columns::fit(area.width.saturating_sub(2));
    let rows: Vec<Row> = app
        .main
        .rows
        .iter()
        .enumerate()
        .skip(off)
        .take(inner_h)
        .filter_map(|(i, r)| snap.nodes.get(r.idx).map(|n| (i, n)))
        .map(|(i, n)| {
            let st = style(app.theme.state.of(n.state));
            let whole = matches!(n.state, NodeState::Held | NodeState::Failed);
            let base = if whole { st } else { style(ui.text) };
            let host = match &n.hostname {
                Some(h) => Cell::from(h.clone()),
                None => Cell::from(Span::styled("(unknown)", if whole { st } else { muted })),
            };
            let up = n
                .boot_started_ms
                .map(|t| fmt::duration(app.now_ms.saturating_sub(t)))
                .unwrap_or_else(|| "-".into());
            let last = n
                .last_event_ms
                .map(|t| fmt::age(app.now_ms.saturating_sub(t)))
                .unwrap_or_else(|| "-".into());
            let cells = cols.iter().map(|(c, _, _)| match c {
                Col::Glyph => Cell::from(Span::styled(fmt::glyph(n.state), st)),
                Col::Host => host.clone(),
                Col::Mac => Cell::from(n.mac.to_string()),
                Col::Role => Cell::from(n.role.clone().unwrap_or_else(|| "-".into())),
                Col::Ip => Cell::from(n.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into())),
                Col::Step => Cell::from(Span::styled(step_text(n), st)),
                Col::Up => Cell::from(up.clone()),
                Col::Last => Cell::from(last.clone()),
            });
            let mut row = Row::new(cells.collect::<Vec<_>>()).style(base);
            if i == app.main.selected && focused {
                row = row.style(base.patch(style(ui.selection)));
            } else if i == app.main.selected {
                row = row.style(
                    base.patch(style(ui.selection))
                        .remove_modifier(ratatui::style::Modifier::BOLD),
                );
            }
            row
        })
        .collect();
    let header =
        Row::new(cols.iter().map(|c| c.1).collect::<Vec<_>>()).style(style(ui.table_header));
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|(c, _, w)| match c {
            Col::Step => Constraint::Min(*w),
            _ => Constraint::Length(*w),
        })
        .collect();
    let empty = app.main.rows.is_empty();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1);
    f.render_widget(table, area);
    if empty && area.height > 4 {
        let msg = if snap.nodes.is_empty() {
            "No machines yet. Power one on: it appears here at its first DHCP request."
        } else {
            "No node matches the filter (Esc clears it)."
        };
        let r = Rect::new(area.x + 2, area.y + 3, area.width.saturating_sub(4), 1);
        f.render_widget(Paragraph::new(msg).style(muted), r);
    }
}

/// The event pane: newest at the bottom, filtered, scrolled back by `events_back`.
fn events(app: &App, f: &mut Frame, area: Rect) {
    let ui = &app.theme.ui;
    let ev = &app.theme.event;
    let focused = app.main.focus == Focus::Events;
    let mut title = vec![
        Span::styled(" Events ", style(ui.title)),
        Span::styled(format!("{} ", app.events.received), style(ui.muted)),
    ];
    if app.events.lagged > 0 {
        title.push(Span::styled(
            format!("· {} skipped ", app.events.lagged),
            style(ui.flash_warn),
        ));
    }
    if app.main.events_back > 0 {
        title.push(Span::styled(
            format!("· paused, {} newer (G follows) ", app.main.events_back),
            style(ui.flash_warn),
        ));
    }
    if !app.main.event_filter.is_empty() {
        title.push(Span::styled(
            format!("· /{} ", app.main.event_filter),
            style(ui.flash_warn),
        ));
    }
    let block = pane(app, title, focused);
    let h = area.height.saturating_sub(2) as usize;
    let (needle, invert) = split_filter(&app.main.event_filter);
    let mut picked = Vec::with_capacity(h);
    let mut skip = app.main.events_back;
    for l in app.events.lines().iter().rev() {
        if !needle.is_empty() && l.matches(&needle) == invert {
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        picked.push(l);
        if picked.len() == h {
            break;
        }
    }
    let lines: Vec<Line> = picked
        .into_iter()
        .rev()
        .map(|l| {
            let cs: Style = style(match l.class {
                EventClass::Lifecycle => ev.lifecycle,
                EventClass::Dhcp => ev.dhcp,
                EventClass::Tftp => ev.tftp,
                EventClass::Http => ev.http,
                EventClass::Inventory => ev.inventory,
                EventClass::Ssh => ev.ssh,
                EventClass::K3s => ev.k3s,
                EventClass::Problem => ev.problem,
            });
            let spans = vec![
                Span::styled(fmt::clock(l.at_ms, app.tz_offset_s), style(ev.time)),
                Span::raw(" "),
                Span::styled(format!("{:<17}", fmt::cut(&l.who, 17)), style(ev.node)),
                Span::raw(" "),
                Span::styled(format!("{:<19} ", kind_column(l)), cs),
                Span::styled(
                    l.text.clone(),
                    if l.class == EventClass::Problem {
                        cs
                    } else {
                        style(ui.text)
                    },
                ),
            ];
            Line::from(spans)
        })
        .collect();
    let empty = lines.is_empty();
    f.render_widget(Paragraph::new(lines).block(block), area);
    if empty && area.height > 2 {
        let r = Rect::new(area.x + 2, area.y + 1, area.width.saturating_sub(4), 1);
        let msg = if app.main.event_filter.is_empty() {
            "Waiting for events…"
        } else {
            "No event matches the filter."
        };
        f.render_widget(Paragraph::new(msg).style(style(ui.muted)), r);
    }
}

/// The kind, with how many like events the line stands for: next to the kind, so that a
/// narrow pane that cuts the text still shows the count.
fn kind_column(l: &crate::tui::events::EventLine) -> String {
    if l.repeats > 1 {
        format!("{} ×{}", l.kind, l.repeats)
    } else {
        l.kind.to_string()
    }
}
