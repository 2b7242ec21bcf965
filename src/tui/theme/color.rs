//! Colours and slot styles as plain data (no terminal library): what a theme file's
//! values parse into.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A colour, independent of any terminal library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    /// The terminal's default.
    #[default]
    Reset,
    /// One of the 16 ANSI colours, 0 (black) to 15 (white).
    Ansi(u8),
    /// An index into the 256-colour palette.
    Indexed(u8),
    /// True colour.
    Rgb(u8, u8, u8),
}

const NAMES: [&str; 16] = [
    "black",
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "gray",
    "dark-gray",
    "light-red",
    "light-green",
    "light-yellow",
    "light-blue",
    "light-magenta",
    "light-cyan",
    "white",
];

impl Color {
    /// Parses `reset`, an ANSI name (`light-blue`), `#rrggbb` or a palette index `0`-`255`.
    pub fn parse(s: &str) -> Option<Color> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        if t == "reset" || t == "default" {
            return Some(Color::Reset);
        }
        if let Some(i) = NAMES.iter().position(|n| *n == t) {
            return Some(Color::Ansi(i as u8));
        }
        if let Some(hex) = t.strip_prefix('#') {
            if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                let v = u32::from_str_radix(hex, 16).ok()?;
                return Some(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
            }
            return None;
        }
        t.parse::<u8>().ok().map(Color::Indexed)
    }

    /// The colour as `#rrggbb` (ANSI and indexed colours mapped to xterm's values),
    /// `None` for the terminal default. Used by the screenshot renderer.
    pub fn to_hex(&self) -> Option<String> {
        let (r, g, b) = match *self {
            Color::Reset => return None,
            Color::Rgb(r, g, b) => (r, g, b),
            Color::Ansi(i) | Color::Indexed(i) => xterm_rgb(i),
        };
        Some(format!("#{r:02x}{g:02x}{b:02x}"))
    }
}

/// xterm's default RGB for a 256-colour index.
pub fn xterm_rgb(i: u8) -> (u8, u8, u8) {
    const BASE: [(u8, u8, u8); 16] = [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ];
    match i {
        0..=15 => BASE[i as usize],
        16..=231 => {
            let n = i - 16;
            let step = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (step(n / 36), step((n / 6) % 6), step(n % 6))
        }
        _ => {
            let v = 8 + (i - 232) * 10;
            (v, v, v)
        }
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Color;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a colour: a name (red, light-blue…), #rrggbb or 0-255")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Color, E> {
                Color::parse(s).ok_or_else(|| {
                    E::custom(format!(
                        "unknown colour `{s}`: use a name (red, light-blue, …), #rrggbb or 0-255"
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Color, E> {
                u8::try_from(v)
                    .map(Color::Indexed)
                    .map_err(|_| E::custom(format!("colour index {v} is not in 0-255")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Color, E> {
                u8::try_from(v)
                    .map(Color::Indexed)
                    .map_err(|_| E::custom(format!("colour index {v} is not in 0-255")))
            }
        }
        d.deserialize_any(V)
    }
}

/// How one slot looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleSpec {
    /// Foreground.
    #[serde(default)]
    pub fg: Option<Color>,
    /// Background.
    #[serde(default)]
    pub bg: Option<Color>,
    /// Bold.
    #[serde(default)]
    pub bold: bool,
    /// Dim.
    #[serde(default)]
    pub dim: bool,
    /// Italic.
    #[serde(default)]
    pub italic: bool,
    /// Underlined.
    #[serde(default)]
    pub underline: bool,
    /// Foreground and background swapped.
    #[serde(default)]
    pub reversed: bool,
}

/// A slot value: a bare colour (the foreground) or a full [`StyleSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SlotValue(pub(super) StyleSpec);

impl<'de> Deserialize<'de> for SlotValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SlotValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a colour or a map {fg, bg, bold, dim, italic, underline, reversed}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SlotValue, E> {
                let fg = Color::parse(s).ok_or_else(|| {
                    E::custom(format!(
                        "unknown colour `{s}`: use a name (red, light-blue, …), #rrggbb or 0-255"
                    ))
                })?;
                Ok(SlotValue(StyleSpec {
                    fg: Some(fg),
                    ..StyleSpec::default()
                }))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SlotValue, E> {
                let fg = u8::try_from(v)
                    .map(Color::Indexed)
                    .map_err(|_| E::custom(format!("colour index {v} is not in 0-255")))?;
                Ok(SlotValue(StyleSpec {
                    fg: Some(fg),
                    ..StyleSpec::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SlotValue, A::Error> {
                StyleSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(SlotValue)
            }
        }
        d.deserialize_any(V)
    }
}
