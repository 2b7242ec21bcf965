//! The `:` command palette: commands with aliases, parsing and completion.

use crate::tui::theme::builtin_names;

/// A palette command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Focus the node table.
    Nodes,
    /// Focus the event pane.
    Events,
    /// Adopt a MAC (or the selected row).
    Adopt(Option<String>),
    /// Switch theme.
    Theme(String),
    /// Sort by a column.
    Sort(String),
    /// Start a rolling reboot (asks first).
    Roll,
    /// Stop the rolling reboot under way.
    RollStop,
    /// Key help.
    Help,
    /// Quit.
    Quit,
}

/// One palette entry: name, aliases, argument hint, description.
pub struct Spec {
    /// The name.
    pub name: &'static str,
    /// Other words for it.
    pub aliases: &'static [&'static str],
    /// Argument placeholder (`""` for none).
    pub arg: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// Every palette command.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "nodes",
        aliases: &["no", "node", "n"],
        arg: "",
        help: "the node table",
    },
    Spec {
        name: "events",
        aliases: &["ev", "e", "log"],
        arg: "",
        help: "the event pane",
    },
    Spec {
        name: "adopt",
        aliases: &["ad"],
        arg: "[MAC]",
        help: "adopt a held MAC (default: the selected row)",
    },
    Spec {
        name: "theme",
        aliases: &["th", "skin"],
        arg: "NAME|FILE",
        help: "switch colours: dark, light, high-contrast or a file",
    },
    Spec {
        name: "sort",
        aliases: &["so"],
        arg: "COLUMN",
        help: "sort nodes: default state host mac ip up last",
    },
    Spec {
        name: "roll",
        aliases: &["rolling"],
        arg: "[stop]",
        help: "reboot every Ready node one at a time, the server last (`stop` ends it)",
    },
    Spec {
        name: "help",
        aliases: &["h", "?"],
        arg: "",
        help: "the key help",
    },
    Spec {
        name: "quit",
        aliases: &["q", "q!", "exit"],
        arg: "",
        help: "leave pxelab",
    },
];

/// Sort column names accepted by `:sort`.
pub const SORT_NAMES: [&str; 7] = ["default", "state", "host", "mac", "ip", "up", "last"];

fn spec_for(word: &str) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|s| s.name == word || s.aliases.contains(&word))
}

/// Parses a palette line (without the leading `:`).
pub fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(w) = words.next() else {
        return Err("type a command; Tab completes".into());
    };
    let arg = words.collect::<Vec<_>>().join(" ");
    let Some(spec) = spec_for(w) else {
        return Err(format!("unknown command `{w}`"));
    };
    Ok(match spec.name {
        "nodes" => Command::Nodes,
        "events" => Command::Events,
        "adopt" => Command::Adopt((!arg.is_empty()).then_some(arg)),
        "theme" if arg.is_empty() => {
            return Err(format!("usage: :theme {}", builtin_names().join("|")))
        }
        "theme" => Command::Theme(arg),
        "sort" if !SORT_NAMES.contains(&arg.as_str()) => {
            return Err(format!("usage: :sort {}", SORT_NAMES.join("|")))
        }
        "sort" => Command::Sort(arg),
        "roll" if arg.is_empty() => Command::Roll,
        "roll" if arg == "stop" => Command::RollStop,
        "roll" => return Err("usage: :roll [stop]".into()),
        "help" => Command::Help,
        _ => Command::Quit,
    })
}

/// Completions for what is typed: full lines with a short description each.
pub fn complete(line: &str) -> Vec<(String, String)> {
    let ends_space = line.ends_with(' ');
    let words: Vec<&str> = line.split_whitespace().collect();
    match (words.as_slice(), ends_space) {
        ([], _) => COMMANDS
            .iter()
            .map(|s| (s.name.to_string(), describe(s)))
            .collect(),
        ([w], false) => COMMANDS
            .iter()
            .filter(|s| s.name.starts_with(w) || s.aliases.iter().any(|a| a.starts_with(w)))
            .map(|s| (s.name.to_string(), describe(s)))
            .collect(),
        ([w, rest @ ..], _) => {
            let Some(spec) = spec_for(w) else {
                return Vec::new();
            };
            let partial = if ends_space {
                ""
            } else {
                rest.last().copied().unwrap_or("")
            };
            let choices: Vec<&str> = match spec.name {
                "theme" => builtin_names(),
                "sort" => SORT_NAMES.to_vec(),
                "roll" => vec!["stop"],
                _ => Vec::new(),
            };
            choices
                .into_iter()
                .filter(|c| c.starts_with(partial))
                .map(|c| (format!("{} {c}", spec.name), spec.help.to_string()))
                .collect()
        }
    }
}

fn describe(s: &Spec) -> String {
    if s.aliases.is_empty() {
        s.help.to_string()
    } else {
        format!("{} (also :{})", s.help, s.aliases.join(" :"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_aliases() {
        assert_eq!(parse("nodes"), Ok(Command::Nodes));
        assert_eq!(parse("no"), Ok(Command::Nodes));
        assert_eq!(parse("ev"), Ok(Command::Events));
        assert_eq!(parse("q"), Ok(Command::Quit));
        assert_eq!(parse("theme light"), Ok(Command::Theme("light".into())));
        assert_eq!(parse("adopt"), Ok(Command::Adopt(None)));
        assert!(parse("theme").is_err());
        assert!(parse("frobnicate").unwrap_err().contains("frobnicate"));
    }

    #[test]
    fn completes_commands_and_arguments() {
        let c = complete("th");
        assert_eq!(c[0].0, "theme");
        let c = complete("theme h");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "theme high-contrast");
        assert_eq!(complete("").len(), COMMANDS.len());
        assert!(complete("zz").is_empty());
    }
}
