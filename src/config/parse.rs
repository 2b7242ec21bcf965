//! Schema parsing of lab.yaml that reports every problem, not only the first.
//!
//! serde stops at the first error. To list them all, the text is deserialised in
//! pieces that keep their original line:column: each `nodes` item on its own (the text
//! before it on its line blanked to spaces, so columns stay true, and lines offset by
//! where it starts), then the rest of the file with the `nodes` items blanked out.
//! When a top-level section fails, it is blanked too and the file parsed again, so a
//! typo in `dhcp:` does not hide one in `http:`.

use std::path::Path;

use super::spans::{Seg, Spans};
use super::{LabFile, Location, NodeEntry, Problem, Severity};

/// How many top-level sections may fail before we stop re-parsing.
const MAX_SECTION_RETRIES: usize = 32;

/// Parses `text` into a [`LabFile`], or returns every schema problem found.
pub(crate) fn parse_file(path: &Path, text: &str) -> Result<LabFile, Vec<Problem>> {
    // 1. Plain YAML syntax: nothing more can be learnt from a text that does not parse.
    if let Err(e) = yaml_serde::from_str::<yaml_serde::Value>(text) {
        return Err(vec![problem_from(path, &e, (0, 0), "")]);
    }
    // 2. A file that deserialises whole is fine: the piecewise pass below only serves
    //    to list every problem of a file that does not.
    let whole_error = match yaml_serde::from_str::<LabFile>(text) {
        Ok(f) => return Ok(f),
        Err(e) => problem_from(path, &e, (0, 0), ""),
    };
    let spans = Spans::new(text);
    let mut problems = Vec::new();

    // 2. Each node on its own.
    let nodes_path = [Seg::Key("nodes")];
    let is_seq = spans
        .node(&nodes_path)
        .map(|n| n.as_sequence().is_some())
        .unwrap_or(false);
    let mut nodes = Vec::new();
    let mut rest = text.to_string();
    if is_seq {
        let count = spans.seq_len(&nodes_path);
        for i in 0..count {
            let Some(r) = spans.range(&[Seg::Key("nodes"), Seg::Index(i)]) else {
                continue;
            };
            let ls = spans.line_start(r.start);
            let mut piece = blank(&text[ls..r.start]);
            piece.push_str(&text[r.start..r.end]);
            let (line0, _) = spans.line_col(ls);
            match yaml_serde::from_str::<NodeEntry>(&piece) {
                Ok(n) => nodes.push(n),
                Err(e) => {
                    let p = problem_from(path, &e, (line0 - 1, 0), "");
                    problems.push(refine_node_problem(&spans, i, p));
                }
            }
        }
        if let Some(r) = spans.range(&nodes_path) {
            // `[]` in place of the value, the rest of it blanked, byte for byte: every
            // range below is an offset into `text` and must stay true in `rest`.
            let mut filler = blank_bytes(&text[r.clone()]);
            if filler.starts_with("  ") {
                filler.replace_range(..2, "[]");
            } else if filler.starts_with(' ') {
                filler.replace_range(..1, "~");
            }
            rest.replace_range(r.clone(), &filler);
        }
    }

    // 3. The rest of the file, section by section.
    let entries = spans.top_level_entries();
    let mut blanked_keys: Vec<String> = Vec::new();
    let mut file = None;
    for _ in 0..MAX_SECTION_RETRIES {
        match yaml_serde::from_str::<LabFile>(&rest) {
            Ok(f) => {
                file = Some(f);
                break;
            }
            Err(e) => {
                let msg = e.to_string();
                let skip = blanked_keys
                    .iter()
                    .any(|k| msg.starts_with(&format!("missing field `{k}`")));
                if !skip {
                    problems.push(problem_from(path, &e, (0, 0), ""));
                }
                let Some(loc) = e.location() else { break };
                let off = offset_of(&rest, loc.line(), loc.column());
                let Some((key, range)) = entries
                    .iter()
                    .find(|(k, r)| r.contains(&off) && !blanked_keys.contains(k))
                else {
                    break;
                };
                let Some(section) = rest.get(range.clone()) else {
                    break;
                };
                let b = blank_bytes(section);
                rest.replace_range(range.clone(), &b);
                blanked_keys.push(key.clone());
            }
        }
    }

    match file {
        Some(mut f) if problems.is_empty() => {
            if is_seq {
                f.nodes = nodes;
            }
            Ok(f)
        }
        _ => {
            if problems.is_empty() {
                problems.push(whole_error);
            }
            problems.sort_by_key(|p| p.location.as_ref().map(|l| (l.line, l.column)));
            problems.dedup();
            Err(problems)
        }
    }
}

/// Names the field of a node problem (`nodes[3].ip: … (`nope`)`) and points at its value
/// when serde's message says which field it is.
fn refine_node_problem(spans: &Spans, i: usize, mut p: Problem) -> Problem {
    const FIELDS: [&str; 8] = [
        "mac",
        "hostname",
        "role",
        "ip",
        "cmdline_extra",
        "kernel",
        "initrds",
        "modloop",
    ];
    let msg = p.message.clone();
    let (field, rest) = if msg.contains("is not a MAC address") {
        (Some("mac"), msg.as_str())
    } else {
        match msg.split_once(": ") {
            Some((f, rest)) if FIELDS.contains(&f) => {
                (FIELDS.iter().copied().find(|x| *x == f), rest)
            }
            _ => (None, msg.as_str()),
        }
    };
    let Some(field) = field else {
        p.message = format!("nodes[{i}]: {msg}");
        return p;
    };
    let path = [Seg::Key("nodes"), Seg::Index(i), Seg::Key(field)];
    let mut message = format!("nodes[{i}].{field}: {rest}");
    if let Some(r) = spans.range(&path) {
        let value = spans.text().get(r.clone()).unwrap_or("").trim();
        if !value.is_empty() && !rest.contains(value) {
            message.push_str(&format!(" (`{value}`)"));
        }
        let (line, column) = spans.line_col(r.start);
        if let Some(l) = p.location.as_mut() {
            l.line = line;
            l.column = column;
        }
    }
    p.message = message;
    p
}

/// `s` with every character but line breaks turned into a space.
/// `s` as spaces, one per byte, line breaks kept: the same byte length, so offsets
/// computed on the original text stay true in the blanked one (a multi-byte `…` blanked
/// to one space shifted every later section: fuzzing found the panic).
fn blank_bytes(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' => c.to_string(),
            _ => " ".repeat(c.len_utf8()),
        })
        .collect()
}

/// `s` as spaces, one per character, line breaks kept: the same columns.
fn blank(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\n' || c == '\r' { c } else { ' ' })
        .collect()
}

/// Byte offset of a 1-based line and (character) column in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col: usize = l
                .char_indices()
                .nth(column.saturating_sub(1))
                .map(|(b, _)| b)
                .unwrap_or(l.len());
            return off + col;
        }
        off += l.len();
    }
    text.len()
}

/// A problem from a yaml_serde error found in a piece starting `shift` (lines, columns)
/// into the file; `prefix` names the piece (e.g. `nodes[2]: `).
fn problem_from(
    path: &Path,
    e: &yaml_serde::Error,
    shift: (usize, usize),
    prefix: &str,
) -> Problem {
    let (line, column) = e
        .location()
        .map(|l| (l.line() + shift.0, l.column() + shift.1))
        .unwrap_or((1 + shift.0, 1));
    Problem {
        severity: Severity::Error,
        location: Some(Location {
            path: path.to_path_buf(),
            line,
            column,
        }),
        message: format!("{prefix}{}", plain_words(&strip_position(&e.to_string()))),
    }
}

/// Says serde's `invalid type: string "abc", expected u16` in the operator's terms:
/// `` `abc` is not a port number 1–65535 `` (every `u16` in lab.yaml is a port).
fn plain_words(msg: &str) -> String {
    let (head, rest) = match ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|k| msg.find(k).map(|i| (&msg[..i], &msg[i + k.len()..])))
    {
        Some(x) => x,
        None => return msg.to_string(),
    };
    let Some((got, want)) = rest.split_once(", expected ") else {
        return msg.to_string();
    };
    let want = match want {
        "u16" => "a port number 1–65535",
        "u8" => "a whole number 0–255",
        "u32" | "u64" | "usize" => "a whole number (0 or more)",
        "i32" | "i64" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" => "text",
        "a sequence" => "a list (`[a, b]` or `- a` lines)",
        other => other,
    };
    // `string "abc"`, `integer `7``, `boolean `true``, `sequence`, `map`…
    let shown = match got.split_once(' ') {
        Some(("string", v)) => format!("`{}`", v.trim_matches('"')),
        Some((_, v)) if v.starts_with('`') => v.to_string(),
        _ => format!("a {got}"),
    };
    format!("{head}{shown} is not {want}")
}

/// Drops yaml_serde's own " at line N column M" (we print the location in front).
fn strip_position(msg: &str) -> String {
    if let Some(i) = msg.rfind(" at line ") {
        let tail = &msg[i + " at line ".len()..];
        let mut parts = tail.splitn(3, ' ');
        let n = parts.next().unwrap_or("");
        let word = parts.next().unwrap_or("");
        let m = parts.next().unwrap_or("");
        if n.chars().all(|c| c.is_ascii_digit())
            && word == "column"
            && m.chars().all(|c| c.is_ascii_digit())
        {
            return msg[..i].to_string();
        }
    }
    msg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `cargo fuzz run lab_yaml`: a multi-byte character in a section that gets
    /// blanked shifted the later sections' ranges (`end byte index … out of bounds`).
    /// Node items with multi-byte text are blanked the same way.
    #[test]
    fn multi_byte_text_in_blanked_sections_and_nodes_does_not_panic() {
        let path = Path::new("/tmp/lab.yaml");
        for text in [
            "d: \u{2026}\nname:\n k:",
            "d: \u{2026}\u{2026}\nname: t\nboot: {kernel: k}\nx: 1\n",
            "name: t\nboot: {kernel: k}\nnodes:\n  - {mac: 52:54:00:00:00:01, hostname: \u{e9}\u{e9}, role: 1}\n  - \u{2026}\n  - {mac: zz}\nbad: 1\n",
            "name: t\nnodes:\n  - a\n  - \u{e9}\nboot: 3\n",
        ] {
            assert!(parse_file(path, text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn type_errors_in_plain_words() {
        assert_eq!(
            plain_words("http.port: invalid type: string \"abc\", expected u16"),
            "http.port: `abc` is not a port number 1–65535"
        );
        assert_eq!(
            plain_words("http.port: invalid value: integer `99999`, expected u16"),
            "http.port: `99999` is not a port number 1–65535"
        );
        assert_eq!(
            plain_words("tftp.enabled: invalid type: sequence, expected a boolean"),
            "tftp.enabled: a sequence is not true or false"
        );
    }

    #[test]
    fn strips_only_a_trailing_position() {
        assert_eq!(strip_position("bad at line 3 column 5"), "bad");
        assert_eq!(
            strip_position("bad at line 3 column 5, while x"),
            "bad at line 3 column 5, while x"
        );
        assert_eq!(strip_position("fine"), "fine");
    }

    #[test]
    fn offsets_follow_lines_and_characters() {
        let t = "ab\ncdé f\n";
        assert_eq!(offset_of(t, 1, 1), 0);
        assert_eq!(offset_of(t, 2, 1), 3);
        assert_eq!(offset_of(t, 2, 5), 8);
    }
}
