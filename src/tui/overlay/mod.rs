//! What is drawn over a screen: help, palette, filter, node dialog, confirmation. Each
//! overlay is a module that holds its state, handles its keys and draws itself; this
//! module only says which one is open and hands it the key or the frame.

pub mod confirm;
pub mod dialog;
pub mod filter;
pub mod help;
pub mod palette;

use ratatui::layout::Rect;
use ratatui::Frame;

use self::confirm::Confirm;
use self::dialog::NodeDialog;
use super::app::{App, Effect};
use super::keys::{Action, Context};

/// A line of text being typed (palette or filter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    /// The text.
    pub text: String,
    /// The highlighted suggestion.
    pub pick: usize,
}

/// What is drawn over the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// Key help.
    Help {
        /// Lines scrolled.
        scroll: u16,
    },
    /// `:` palette.
    Palette(Input),
    /// `/` filter.
    Filter(Input),
    /// Adopt or change role.
    Dialog(NodeDialog),
    /// Yes/no for a dangerous action.
    Confirm(Confirm),
}

impl Overlay {
    /// The key context of the overlay (overlays take every key: no outer context).
    pub fn context(&self) -> Context {
        match self {
            Overlay::Help { .. } => Context::Help,
            Overlay::Palette(_) | Overlay::Filter(_) => Context::Input,
            Overlay::Dialog(_) => Context::Dialog,
            Overlay::Confirm(_) => Context::Confirm,
        }
    }
}

/// Offers a key to the open overlay as text (before the key table is looked at).
/// Whether it was taken.
pub(crate) fn type_key(app: &mut App, plain_char: Option<char>, backspace: bool) -> bool {
    match &mut app.overlay {
        Some(Overlay::Palette(_)) => palette::type_key(app, plain_char, backspace),
        Some(Overlay::Filter(_)) => filter::type_key(app, plain_char, backspace),
        Some(Overlay::Dialog(d)) => dialog::type_key(d, plain_char, backspace),
        _ => false,
    }
}

/// Hands an action to the open overlay.
pub(crate) fn act(app: &mut App, a: Action) -> Vec<Effect> {
    match &app.overlay {
        Some(Overlay::Help { .. }) => help::act(app, a),
        Some(Overlay::Palette(_)) => palette::act(app, a),
        Some(Overlay::Filter(_)) => filter::act(app, a),
        Some(Overlay::Dialog(_)) => dialog::act(app, a),
        Some(Overlay::Confirm(_)) => confirm::act(app, a),
        None => Vec::new(),
    }
}

/// Draws the open overlay over `body` (the filter has no box: only its input line).
pub fn draw(app: &App, f: &mut Frame, body: Rect) {
    match &app.overlay {
        Some(Overlay::Help { scroll }) => help::draw(app, *scroll, f, body),
        Some(Overlay::Palette(i)) => palette::draw(app, i, f, body),
        Some(Overlay::Dialog(d)) => dialog::draw(app, d, f, body),
        Some(Overlay::Confirm(c)) => confirm::draw(app, c, f, body),
        Some(Overlay::Filter(_)) | None => {}
    }
}
