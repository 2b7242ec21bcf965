//! The yes/no question before a dangerous action (forget, reboot, wake, power-cycle, a
//! rolling reboot): its state, its keys
//! and its box.
//!
//! ```text
//! ┌ Are you sure? ───────────────────────────────────────────┐
//! │ Forget 52:54:00:12:34:56? It is removed from lab.yaml and │
//! │ held at its next boot.                                    │
//! │                                                           │
//! │  y  yes, do it     n  / Esc  no                           │
//! └───────────────────────────────────────────────────────────┘
//! ```

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::Overlay;
use crate::engine::service::PowerAction;
use crate::mac::Mac;
use crate::tui::app::{App, Effect, Level};
use crate::tui::keys::Action;
use crate::tui::paint::style;
use crate::tui::render::centered;

/// What a confirmation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmWhat {
    /// Remove from lab.yaml.
    Forget(Mac),
    /// Reboot over SSH.
    Reboot(Mac),
    /// A power action with the node's driver.
    Power(Mac, PowerAction),
    /// A rolling reboot of every Ready node, the k3s server last.
    Roll,
}

/// A yes/no question before a dangerous action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The action.
    pub what: ConfirmWhat,
    /// The question.
    pub prompt: String,
}

impl Confirm {
    /// Asks before removing `mac` from lab.yaml.
    pub fn forget(mac: Mac) -> Confirm {
        Confirm {
            what: ConfirmWhat::Forget(mac),
            prompt: format!("Forget {mac}? It is removed from lab.yaml and held at its next boot."),
        }
    }

    /// Asks before a power action on `mac`, whose driver is `driver`.
    pub fn power(mac: Mac, action: PowerAction, driver: &str) -> Confirm {
        let what = match (action, driver) {
            (PowerAction::On, "wol") => {
                "Wake {mac}: a Wake-on-LAN magic packet on the lab interface?".to_string()
            }
            (PowerAction::On, d) => format!("Power on {{mac}} ({d})?"),
            (PowerAction::Cycle, "cmd") => {
                "Power-cycle {mac}: cut its power and turn it on again?".to_string()
            }
            (PowerAction::Cycle, d) => format!("Power-cycle {{mac}} ({d}: a reboot over SSH)?"),
            (PowerAction::Off, d) => format!("Power off {{mac}} ({d})?"),
        };
        Confirm {
            what: ConfirmWhat::Power(mac, action),
            prompt: what.replace("{mac}", &mac.to_string()),
        }
    }

    /// Asks before a rolling reboot.
    pub fn roll() -> Confirm {
        Confirm {
            what: ConfirmWhat::Roll,
            prompt: "Reboot every Ready node one at a time, each Ready again before the next, the k3s server last (its API is down while it boots)?".to_string(),
        }
    }

    /// Asks before rebooting `mac`.
    pub fn reboot(mac: Mac) -> Confirm {
        Confirm {
            what: ConfirmWhat::Reboot(mac),
            prompt: format!("Reboot {mac} over SSH now?"),
        }
    }
}

/// `y`/Enter carries the action out; `n`/Esc cancels.
pub(crate) fn act(app: &mut App, a: Action) -> Vec<Effect> {
    let Some(Overlay::Confirm(c)) = &app.overlay else {
        return Vec::new();
    };
    match a {
        Action::Back => {
            app.overlay = None;
            app.flash(Level::Info, "cancelled");
        }
        Action::Confirm => {
            let fx = match c.what {
                ConfirmWhat::Forget(m) => Effect::Forget(m),
                ConfirmWhat::Reboot(m) => Effect::Reboot(m),
                ConfirmWhat::Power(m, a) => Effect::Power(m, a),
                ConfirmWhat::Roll => Effect::Roll,
            };
            app.overlay = None;
            return vec![fx];
        }
        _ => {}
    }
    Vec::new()
}

/// Draws a yes/no confirmation.
pub fn draw(app: &App, c: &Confirm, f: &mut Frame, body: Rect) {
    let ui = &app.theme.ui;
    let d = style(ui.dialog);
    let lines = vec![
        Line::from(Span::styled(c.prompt.clone(), d)),
        Line::default(),
        Line::from(vec![
            Span::styled(" y ", d.patch(style(ui.danger))),
            Span::styled(" yes, do it    ", d),
            Span::styled(" n ", d.patch(style(ui.footer_key))),
            Span::styled(" / Esc  no", d),
        ]),
    ];
    let r = centered(body, 60, 7);
    let block = Block::bordered()
        .title(" Are you sure? ")
        .border_style(d.patch(style(ui.danger)))
        .style(d);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(block),
        r,
    );
}
