//! Drawing the node detail (see [`super`] for its layout): the timeline, events and log
//! panes, the failure section and the served file.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use crate::engine::state::STEPS;
use crate::engine::{NodeRecord, NodeState, Snapshot};
use crate::tui::app::App;
use crate::tui::fmt;
use crate::tui::paint::style;
use crate::tui::served::MASK;

/// One timeline row: step name, status and the time it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    /// Step name.
    pub name: &'static str,
    /// Done, current, pending, skipped or failed.
    pub status: StepStatus,
    /// How long it took (or has taken so far), ms.
    pub took_ms: Option<u64>,
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Reached.
    Done,
    /// The node is working on it.
    Current,
    /// Not reached.
    Pending,
    /// Not reported (a later step was reached).
    Skipped,
    /// The boot failed here.
    Failed,
}

/// The timeline of a record's current boot, from `reached_ms` and [`STEPS`].
pub fn timeline(r: &NodeRecord, now_ms: u64) -> Vec<StepRow> {
    let steps: Vec<_> = STEPS
        .iter()
        .filter(|(_, s)| *s != NodeState::Failed)
        .collect();
    let last_reached = steps
        .iter()
        .rposition(|(_, s)| r.reached_ms.contains_key(s));
    let failed = r.state == NodeState::Failed;
    let mut prev = r.boot_started_ms;
    let mut out = Vec::new();
    for (i, (name, s)) in steps.iter().enumerate() {
        let row = match r.reached_ms.get(s) {
            Some(at) => {
                let took = prev.map(|p| at.saturating_sub(p));
                prev = Some(*at);
                StepRow {
                    name,
                    status: StepStatus::Done,
                    took_ms: took,
                }
            }
            None if last_reached.is_some_and(|l| i < l) => StepRow {
                name,
                status: StepStatus::Skipped,
                took_ms: None,
            },
            None if Some(i) == last_reached.map(|l| l + 1)
                || (last_reached.is_none() && i == 0 && prev.is_some()) =>
            {
                let since = prev.map(|p| now_ms.saturating_sub(p));
                let status = if failed {
                    StepStatus::Failed
                } else if r.state == NodeState::Ready {
                    StepStatus::Pending
                } else {
                    StepStatus::Current
                };
                let took = if failed {
                    r.reached_ms
                        .get(&NodeState::Failed)
                        .zip(prev)
                        .map(|(f, p)| f.saturating_sub(p))
                } else {
                    since
                };
                StepRow {
                    name,
                    status,
                    took_ms: took,
                }
            }
            None => StepRow {
                name,
                status: StepStatus::Pending,
                took_ms: None,
            },
        };
        out.push(row);
    }
    out
}

/// Draws the detail screen.
pub fn draw(app: &App, snap: &Snapshot, f: &mut Frame, area: Rect) {
    let ui = &app.theme.ui;
    let Some(d) = &app.detail else {
        f.render_widget(Paragraph::new(" loading…").style(style(ui.muted)), area);
        return;
    };
    let view = snap.nodes.iter().find(|n| n.mac == d.mac);
    let earlier = if d.previous {
        d.record.as_ref().and_then(NodeRecord::previous)
    } else {
        None
    };
    let showing_previous = earlier.is_some();
    let rec = earlier.as_ref().or(d.record.as_ref());
    let state = rec
        .map(|r| r.state)
        .or(view.map(|v| v.state))
        .unwrap_or(NodeState::Idle);
    let st = style(app.theme.state.of(state));
    let name = rec
        .and_then(|r| r.hostname.clone())
        .unwrap_or_else(|| "(unknown machine)".into());
    let mut title = vec![
        Span::styled(format!(" {name} "), style(ui.title)),
        Span::styled(format!("· {} · ", d.mac), style(ui.text)),
    ];
    if let Some(r) = rec {
        title.push(Span::styled(
            format!("{} · ", r.role.clone().unwrap_or_else(|| "no role".into())),
            style(ui.text),
        ));
        if let Some(ip) = r.ip.map(std::net::IpAddr::V4).or(r.seen_ip) {
            title.push(Span::styled(format!("{ip} · "), style(ui.text)));
        }
        if r.cpu.is_some() || r.boot_path.is_some() {
            let fw = crate::engine::snapshot::firmware_text(r.cpu, r.boot_path);
            title.push(Span::styled(format!("{fw} · "), style(ui.text)));
        }
    }
    title.push(Span::styled(
        format!("{} {}", fmt::glyph(state), state.name()),
        st,
    ));
    if showing_previous {
        let n = rec.map(|r| r.boot).unwrap_or(0);
        title.push(Span::styled(
            format!(" · boot {n}, the previous one (p: this boot) "),
            style(ui.choice),
        ));
    } else if let Some(t) = rec.and_then(|r| r.boot_started_ms) {
        let n = rec.map(|r| r.boot).unwrap_or(0);
        let boot = if n > 1 {
            format!(" · boot {n}")
        } else {
            String::new()
        };
        title.push(Span::styled(
            format!(
                "{boot} · up {} ",
                fmt::duration(app.now_ms.saturating_sub(t))
            ),
            style(ui.muted),
        ));
    }
    let outer = Block::bordered()
        .border_style(style(ui.border_focus))
        .title(Line::from(title));
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    // Enter: the failure (or stall) alone, wrapped, on the whole screen.
    if let Some(rows) = rec.map(why_lines).filter(|l| d.why_full && !l.is_empty()) {
        failure(app, f, inner, &rows, false);
        return;
    }
    // A failed or stalled node's "why" matters more than the whole timeline: on a short
    // terminal the top gives up rows to it.
    let has_why = rec.is_some_and(|r| !why_lines(r).is_empty());
    let top_h = (STEPS.len() as u16 + 3).min(if has_why {
        inner.height / 2
    } else {
        inner.height / 2 + 4
    });
    let [top, bottom] =
        Layout::vertical([Constraint::Length(top_h), Constraint::Min(3)]).areas(inner);
    let [tl, right] = Layout::horizontal([Constraint::Length(36), Constraint::Min(20)]).areas(top);
    let [evs, logs] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);

    // Timeline.
    let mut lines = vec![Line::from(Span::styled(
        format!("{:<22}{:>9}", "Timeline", "took"),
        style(ui.table_header),
    ))];
    match rec {
        Some(r) if r.state == NodeState::Held => {
            lines.push(Line::from(Span::styled("◆ held in the iPXE wait loop", st)));
            lines.push(Line::from(Span::styled(
                "  press a to adopt it",
                style(ui.muted),
            )));
        }
        Some(r) => {
            // A previous boot stopped where it was: its last step ran until its last event.
            let now = if showing_previous {
                r.last_event_ms.unwrap_or(app.now_ms)
            } else {
                app.now_ms
            };
            for row in timeline(r, now) {
                let (g, s) = match row.status {
                    StepStatus::Done => ("✓", ui.step_done),
                    StepStatus::Current => ("▶", ui.step_current),
                    StepStatus::Pending => ("·", ui.step_pending),
                    StepStatus::Skipped => ("–", ui.step_pending),
                    StepStatus::Failed => ("✗", ui.step_failed),
                };
                let took = match (row.took_ms, row.status) {
                    (Some(ms), StepStatus::Current) => format!("{}…", fmt::duration(ms)),
                    (Some(ms), _) => fmt::duration(ms),
                    (None, StepStatus::Skipped) => "skipped".into(),
                    (None, _) => "-".into(),
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{g} {:<20}", row.name), style(s)),
                    Span::styled(format!("{took:>9}"), style(s)),
                ]));
            }
            if let Some(fl) = r
                .failure_reason
                .as_ref()
                .map(|w| &w.summary)
                .or(r.failure.as_ref())
            {
                lines.push(Line::from(Span::styled(
                    format!("✗ {}", fmt::cut(fl, 33)),
                    style(ui.step_failed),
                )));
            }
            if let Some(g) = r.resources.filter(|_| !showing_previous) {
                let low = !crate::watch::gauge::low(&g).is_empty();
                lines.push(Line::from(Span::styled(
                    fmt::cut(
                        &format!(
                            "mem {}/{} MB · root {}/{} MB free",
                            g.mem_avail_kb / 1024,
                            g.mem_total_kb / 1024,
                            g.root_avail_kb / 1024,
                            g.root_total_kb / 1024
                        ),
                        33,
                    ),
                    style(if low { ui.step_failed } else { ui.muted }),
                )));
            }
            if let Some(p) = r.previous_boot.as_deref().filter(|_| !showing_previous) {
                lines.push(Line::from(Span::styled(
                    fmt::cut(
                        &format!("↺ boot {}: {} · p shows it", p.number, p.state.name()),
                        33,
                    ),
                    style(ui.muted),
                )));
            }
        }
        None => lines.push(Line::from(Span::styled("no record yet", style(ui.muted)))),
    }
    f.render_widget(
        Paragraph::new(lines),
        tl.inner(ratatui::layout::Margin::new(1, 0)),
    );

    // Recent events of this node.
    let eb = Block::bordered()
        .border_style(style(ui.border))
        .title(Span::styled(" Events ", style(ui.title)));
    let eh = evs.height.saturating_sub(2) as usize;
    let ev_lines: Vec<Line> = rec
        .map(|r| {
            let n = r.timeline.len();
            r.timeline
                .iter()
                .skip(n.saturating_sub(eh))
                .map(|t| {
                    let s = if t.problem {
                        style(app.theme.event.problem)
                    } else {
                        style(ui.text)
                    };
                    Line::from(vec![
                        Span::styled(
                            fmt::clock(t.at_ms, app.tz_offset_s),
                            style(app.theme.event.time),
                        ),
                        Span::styled(format!(" {:<18} ", t.kind), style(ui.muted)),
                        Span::styled(t.text.clone(), s),
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    f.render_widget(Paragraph::new(ev_lines).block(eb), evs);

    // Log tail.
    let lb = Block::bordered()
        .border_style(style(ui.border))
        .title(Span::styled(" Log (SSH) ", style(ui.title)));
    let lh = logs.height.saturating_sub(2) as usize;
    let log_lines: Vec<Line> = match rec {
        Some(r) if !r.log_tail.is_empty() => {
            let n = r.log_tail.len();
            r.log_tail
                .iter()
                .skip(n.saturating_sub(lh))
                .map(|l| Line::from(Span::styled(l.clone(), style(ui.text))))
                .collect()
        }
        _ => vec![Line::from(Span::styled(
            "no log lines yet: the SSH watcher streams them once the node is up",
            style(ui.muted),
        ))],
    };
    f.render_widget(Paragraph::new(log_lines).block(lb), logs);

    // Served files.
    let mut tabs = vec![Span::styled(" Served: ", style(ui.title))];
    for (i, s) in d.served.iter().enumerate() {
        let sty = if i == d.tab {
            style(ui.choice)
        } else {
            style(ui.muted)
        };
        tabs.push(Span::styled(format!(" {} ", s.title), sty));
        tabs.push(Span::raw(" "));
    }
    tabs.push(Span::styled("(Tab) ", style(ui.muted)));
    let sb = Block::bordered()
        .border_style(style(ui.border))
        .title(Line::from(tabs));
    let text: Vec<Line> = d
        .served
        .get(d.tab)
        .map(|s| s.text.lines().map(|l| mask_spans(l, app)).collect())
        .unwrap_or_default();
    let bottom = match rec.map(why_lines).filter(|l| !l.is_empty()) {
        Some(rows) => {
            let width = bottom.width.saturating_sub(2).max(1) as usize;
            let [fail, rest] = Layout::vertical([
                Constraint::Length(failure_height(&rows, width, d.cut_lines, bottom.height)),
                Constraint::Min(3),
            ])
            .areas(bottom);
            failure(app, f, fail, &rows, d.cut_lines);
            rest
        }
        None => bottom,
    };
    f.render_widget(
        Paragraph::new(text)
            .block(sb)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .scroll((d.scroll, 0)),
        bottom,
    );
}

/// The failure (or stall) section's rows: a label and its text.
fn why_lines(r: &NodeRecord) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if let Some(s) = &r.stall {
        rows.push(("stalled", format!("at {} for {} s", s.step, s.waited_s)));
        rows.push(("hint", s.hint.clone()));
        rows.push(("last seen", s.last_seen.clone()));
    }
    if r.state == NodeState::Failed {
        if let Some(w) = &r.failure_reason {
            rows.push(("class", w.class.clone()));
            rows.push(("why", w.summary.clone()));
            if !w.msg.is_empty() {
                rows.push(("msg", w.msg.clone()));
            }
        }
        if let Some(line) = &r.failure {
            rows.push(("line", line.clone()));
        }
    }
    rows
}

const LABEL: usize = 11;

/// Rows the section needs (plus its border), leaving the served files three rows.
fn failure_height(rows: &[(&str, String)], width: usize, cut: bool, space: u16) -> u16 {
    let text_w = width.saturating_sub(LABEL).max(1);
    let n: usize = rows
        .iter()
        .map(|(_, t)| {
            if cut {
                1
            } else {
                t.chars().count().div_ceil(text_w).max(1)
            }
        })
        .sum();
    (n as u16 + 2).min(space.saturating_sub(3)).max(3)
}

/// Draws the failure section: class, sentence, message and the whole line, wrapped
/// under their labels (or cut to one row each: `w`).
fn failure(app: &App, f: &mut Frame, area: Rect, rows: &[(&str, String)], cut: bool) {
    let ui = &app.theme.ui;
    let title = if cut {
        " Why (w: wrap · Enter: whole screen) "
    } else {
        " Why (w: one row each · Enter: whole screen) "
    };
    let b = Block::bordered()
        .border_style(style(ui.step_failed))
        .title(Span::styled(title, style(ui.step_failed)));
    let text_w = (area.width.saturating_sub(2) as usize)
        .saturating_sub(LABEL)
        .max(1);
    let mut lines = Vec::new();
    for (label, text) in rows {
        let chunks: Vec<String> = if cut {
            vec![fmt::cut(text, text_w)]
        } else {
            let chars: Vec<char> = text.chars().collect();
            chars
                .chunks(text_w)
                .map(|c| c.iter().collect())
                .collect::<Vec<_>>()
        };
        for (i, c) in chunks.into_iter().enumerate() {
            let l = if i == 0 { *label } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{l:<LABEL$}"), style(ui.muted)),
                Span::styled(c, style(ui.text)),
            ]));
        }
    }
    f.render_widget(Paragraph::new(lines).block(b), area);
}

/// A served line with masked parts in the `masked` slot.
fn mask_spans<'a>(l: &str, app: &App) -> Line<'a> {
    let ui = &app.theme.ui;
    let mut spans = Vec::new();
    let mut rest = l;
    while let Some(p) = rest.find(MASK) {
        spans.push(Span::styled(rest[..p].to_string(), style(ui.text)));
        spans.push(Span::styled(MASK.to_string(), style(ui.masked)));
        rest = &rest[p + MASK.len()..];
    }
    spans.push(Span::styled(rest.to_string(), style(ui.text)));
    Line::from(spans)
}
