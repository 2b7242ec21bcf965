//! Write-back of adoption and node changes into lab.yaml, keeping the operator's
//! comments, blank lines, key order and layout.
//!
//! Edits are splices of the original text at byte ranges found through the lossless
//! syntax tree ([`super::spans`]): only the lines of the node being added, removed or
//! changed are touched. The result is parsed and validated, checked to hold exactly the
//! intended change, and written atomically only if the file on disk is still the text
//! the lab was loaded from, checked again at the instant of the rename
//! ([`super::atomic::replace_if_unchanged`]); [`ConfigError::ChangedOnDisk`] otherwise:
//! the caller reloads and tries again on top of the operator's save.

use super::atomic::replace_if_unchanged;
use super::spans::{Seg, Spans};
use super::{ConfigError, Lab, NodeEntry};
use crate::mac::Mac;

/// Adds a node to `nodes:` and writes the file. Returns the reloaded lab.
pub fn add_node(lab: &Lab, e: &NodeEntry) -> Result<Lab, ConfigError> {
    if let Some(n) = lab.node_by_mac(&e.mac) {
        return Err(ConfigError::AlreadyKnown {
            mac: e.mac,
            hostname: n.hostname.clone(),
        });
    }
    let text = text_add_node(&lab.source, e).map_err(|m| edit_error(lab, m))?;
    commit(lab, text, |new| new.node_by_mac(&e.mac) == Some(e))
}

/// Removes a node from `nodes:` and writes the file. Returns the reloaded lab.
pub fn remove_node(lab: &Lab, mac: Mac) -> Result<Lab, ConfigError> {
    let Some(index) = lab.file.nodes.iter().position(|n| n.mac == mac) else {
        return Err(edit_error(lab, format!("{mac} is not in the lab")));
    };
    let text = text_remove_node(&lab.source, index).map_err(|m| edit_error(lab, m))?;
    let before = lab.file.nodes.len();
    commit(lab, text, |new| {
        new.node_by_mac(&mac).is_none() && new.file.nodes.len() + 1 == before
    })
}

/// Rewrites a node (found by its MAC) to `e`, changing only the values that differ,
/// and writes the file. Returns the reloaded lab.
pub fn update_node(lab: &Lab, e: &NodeEntry) -> Result<Lab, ConfigError> {
    let Some(index) = lab.file.nodes.iter().position(|n| n.mac == e.mac) else {
        return Err(edit_error(lab, format!("{} is not in the lab", e.mac)));
    };
    let old = &lab.file.nodes[index];
    let text = text_update_node(&lab.source, index, old, e).map_err(|m| edit_error(lab, m))?;
    commit(lab, text, |new| new.file.nodes.get(index) == Some(e))
}

fn edit_error(lab: &Lab, message: String) -> ConfigError {
    ConfigError::Edit {
        path: lab.path.clone(),
        message,
    }
}

/// Validates `text`, checks it holds the intended change, and writes it if the file on
/// disk is still the one `lab` was loaded from.
fn commit(lab: &Lab, text: String, intended: impl Fn(&Lab) -> bool) -> Result<Lab, ConfigError> {
    let new_lab = super::load_validated(&lab.path, &text)?;
    if !intended(&new_lab) {
        return Err(edit_error(
            lab,
            "the edited text does not hold the intended change; nothing written".to_string(),
        ));
    }
    let replaced = replace_if_unchanged(&lab.path, lab.source.as_bytes(), text.as_bytes())
        .map_err(|source| ConfigError::Io {
            path: lab.path.clone(),
            source,
        })?;
    if !replaced {
        return Err(ConfigError::ChangedOnDisk {
            path: lab.path.clone(),
        });
    }
    Ok(new_lab)
}

/// A string as a YAML scalar: plain when that reads back as the same string, else
/// double-quoted (JSON string syntax is valid YAML).
pub fn yaml_scalar(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let reserved = matches!(
        lower.as_str(),
        "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    let numeric = s.parse::<f64>().is_ok()
        || lower.starts_with("0x")
        || lower.starts_with("0o")
        || lower.starts_with(".inf")
        || lower.starts_with(".nan")
        || s.chars()
            .all(|c| c.is_ascii_digit() || c == '_' || c == ':');
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.');
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '+' | '='))
        && !s.contains(": ")
        && !s.ends_with(':');
    if !reserved && !numeric && first_ok && safe {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
    }
}

/// The fields of a node that write-back knows, in the order they are written, each
/// as its YAML text (`None` when absent).
fn fields(e: &NodeEntry) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("mac", Some(e.mac.to_string())),
        ("hostname", Some(yaml_scalar(&e.hostname))),
        ("role", Some(yaml_scalar(&e.role))),
        ("ip", e.ip.map(|i| i.to_string())),
        ("cmdline_extra", e.cmdline_extra.as_deref().map(yaml_scalar)),
        ("kernel", e.kernel.as_deref().map(yaml_scalar)),
        (
            "initrds",
            e.initrds.as_ref().map(|v| {
                let items: Vec<String> = v.iter().map(|s| yaml_scalar(s)).collect();
                format!("[{}]", items.join(", "))
            }),
        ),
        ("modloop", e.modloop.as_deref().map(yaml_scalar)),
        ("arch", e.arch.map(|a| a.as_str().to_string())),
    ]
}

/// A node as block-sequence item lines: `{dash}- mac: …` then `{keys}hostname: …`.
fn block_item(e: &NodeEntry, dash_indent: usize, key_indent: usize) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields(e).into_iter().enumerate() {
        let Some(v) = v else { continue };
        if i == 0 {
            out.push_str(&format!("{}- {k}: {v}\n", " ".repeat(dash_indent)));
        } else {
            out.push_str(&format!("{}{k}: {v}\n", " ".repeat(key_indent)));
        }
    }
    out
}

/// A node as a flow mapping: `{mac: …, hostname: …, role: …}`.
fn flow_item(e: &NodeEntry) -> String {
    let parts: Vec<String> = fields(e)
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Byte offset just past the line break of the line holding `offset - 1` (the end of
/// the last line a range ending at `offset` touches), or the text's end.
fn end_of_line(text: &str, offset: usize) -> usize {
    let from = offset.saturating_sub(1).min(text.len());
    match text[from..].find('\n') {
        Some(i) => from + i + 1,
        None => text.len(),
    }
}

/// Number of spaces a line starts with.
fn indent_at(text: &str, line_start: usize) -> usize {
    text[line_start..].chars().take_while(|c| *c == ' ').count()
}

/// Inserts `block` (whole lines) at `at`, adding a line break before it when `at` is
/// the end of a text without one.
fn insert_lines(text: &str, at: usize, block: &str) -> String {
    let mut out = String::with_capacity(text.len() + block.len() + 1);
    out.push_str(&text[..at]);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(block);
    out.push_str(&text[at..]);
    out
}

/// `text` with node `e` appended to `nodes:` in the style of the existing items.
pub fn text_add_node(text: &str, e: &NodeEntry) -> Result<String, String> {
    let spans = Spans::new(text);
    let nodes = [Seg::Key("nodes")];
    let Some(key) = spans.key_range(&nodes) else {
        // No `nodes:` at all: append the section.
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("nodes:\n");
        out.push_str(&block_item(e, 2, 4));
        return Ok(out);
    };
    let value = spans.node(&nodes);
    let seq = value.as_ref().and_then(|v| v.as_sequence().cloned());
    match (value.as_ref(), seq) {
        (Some(_), Some(seq)) if !seq.is_empty() => {
            let count = seq.len();
            let first = spans
                .range(&[Seg::Key("nodes"), Seg::Index(0)])
                .ok_or("cannot find nodes[0]")?;
            let last = spans
                .range(&[Seg::Key("nodes"), Seg::Index(count - 1)])
                .ok_or("cannot find the last node")?;
            if seq.is_flow_style() {
                let whole = spans.range(&nodes).ok_or("cannot find nodes")?;
                let close = text[..whole.end]
                    .rfind(']')
                    .ok_or("flow sequence without `]`")?;
                let mut out = text.to_string();
                out.insert_str(close.max(last.end), &format!(", {}", flow_item(e)));
                return Ok(out);
            }
            let line = spans.line_start(first.start);
            let dash_indent = indent_at(text, line);
            let key_indent = if text[first.start..].starts_with('{') {
                dash_indent + 2
            } else {
                text[line..first.start].chars().count()
            };
            let at = end_of_line(text, last.end);
            Ok(insert_lines(
                text,
                at,
                &block_item(e, dash_indent, key_indent),
            ))
        }
        (Some(v), _) => {
            // `nodes: []`, `nodes: ~` or `nodes: null`: replace the value by block items.
            let r = v.byte_range();
            let (s, t) = (r.start as usize, r.end as usize);
            let mut out = String::new();
            out.push_str(text[..s].trim_end_matches(' '));
            let rest = &text[t..];
            let eol = rest.find('\n').map(|i| i + 1).unwrap_or(rest.len());
            let tail_of_line = &rest[..eol];
            if !tail_of_line.trim().is_empty() {
                out.push(' ');
            }
            out.push_str(tail_of_line);
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&block_item(e, 2, 4));
            out.push_str(&rest[eol..]);
            Ok(out)
        }
        (None, _) => {
            // `nodes:` with nothing after it.
            let at = end_of_line(text, key.end + 1);
            Ok(insert_lines(text, at, &block_item(e, 2, 4)))
        }
    }
}

/// `text` without item `index` of `nodes:`; the list becomes `[]` when it empties.
pub fn text_remove_node(text: &str, index: usize) -> Result<String, String> {
    let spans = Spans::new(text);
    let nodes = [Seg::Key("nodes")];
    let seq = spans
        .node(&nodes)
        .and_then(|v| v.as_sequence().cloned())
        .ok_or("nodes is not a list")?;
    let count = seq.len();
    let r = spans
        .range(&[Seg::Key("nodes"), Seg::Index(index)])
        .ok_or_else(|| format!("no nodes[{index}]"))?;
    if seq.is_flow_style() {
        let after = &text[r.end..];
        let skip = after.len() - after.trim_start().len();
        let mut out = text.to_string();
        if after[skip..].starts_with(',') {
            let tail = &after[skip + 1..];
            let ws = tail.len() - tail.trim_start_matches([' ', '\t']).len();
            out.replace_range(r.start..r.end + skip + 1 + ws, "");
        } else if let Some(comma) = text[..r.start].rfind(',') {
            out.replace_range(comma..r.end, "");
        } else {
            out.replace_range(r.clone(), "");
        }
        return Ok(out);
    }
    let start = spans.line_start(r.start);
    let end = end_of_line(text, r.end);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    out.push_str(&text[end..]);
    if count == 1 {
        // The list is now empty: say so, or `nodes:` would read as null.
        let key = spans.key_range(&nodes).ok_or("cannot find the nodes key")?;
        let colon = text[key.end..]
            .find(':')
            .map(|i| key.end + i + 1)
            .ok_or("`nodes` without `:`")?;
        if colon <= start {
            out.insert_str(colon, " []");
        }
    }
    Ok(out)
}

/// `text` with item `index` of `nodes:` changed from `old` to `new`, value by value.
pub fn text_update_node(
    text: &str,
    index: usize,
    old: &NodeEntry,
    new: &NodeEntry,
) -> Result<String, String> {
    if old.mac != new.mac {
        return Err("a node's MAC cannot change; remove it and add it again".to_string());
    }
    let mut out = text.to_string();
    let wanted = fields(new);
    let had = fields(old);
    let item = [Seg::Key("nodes"), Seg::Index(index)];
    {
        let spans = Spans::new(&out);
        let node = spans
            .node(&item)
            .ok_or_else(|| format!("no nodes[{index}]"))?;
        if node.as_mapping().is_some_and(|m| m.is_flow_style()) {
            let r = spans.range(&item).ok_or("cannot find the node")?;
            out.replace_range(r, &flow_item(new));
            return Ok(out);
        }
    }
    for ((key, want), (_, have)) in wanted.into_iter().zip(had) {
        if want == have {
            continue;
        }
        let spans = Spans::new(&out);
        let path = [Seg::Key("nodes"), Seg::Index(index), Seg::Key(key)];
        match (spans.range(&path), want) {
            (Some(r), Some(v)) => out.replace_range(r, &v),
            (Some(r), None) => {
                let k = spans.key_range(&path).ok_or("cannot find the key")?;
                let start = spans.line_start(k.start);
                let line_text = &out[start..k.start];
                if !line_text.trim().is_empty() {
                    // The key shares its line with the dash (`- ip: …`): cannot drop the
                    // line; keep the value.
                    return Err(format!("cannot remove `{key}`, the first key of the node"));
                }
                let end = end_of_line(&out, r.end);
                out.replace_range(start..end, "");
            }
            (None, Some(v)) => {
                let r = spans.range(&item).ok_or("cannot find the node")?;
                let key_col = {
                    let ls = spans.line_start(r.start);
                    out[ls..r.start].chars().count()
                };
                let at = end_of_line(&out, r.end);
                out = insert_lines(&out, at, &format!("{}{key}: {v}\n", " ".repeat(key_col)));
            }
            (None, None) => {}
        }
    }
    Ok(out)
}

/// Points `boot:` at a kernel, initrds and a modloop (after `pxelab fetch` unpacked
/// them), changing only those values, and writes the file. Returns the reloaded lab.
pub fn set_boot_assets(
    lab: &Lab,
    kernel: &str,
    initrds: &[String],
    modloop: &str,
) -> Result<Lab, ConfigError> {
    let items: Vec<String> = initrds.iter().map(|s| yaml_scalar(s)).collect();
    let wanted = [
        ("kernel", yaml_scalar(kernel)),
        ("initrds", format!("[{}]", items.join(", "))),
        ("modloop", yaml_scalar(modloop)),
    ];
    let mut text = lab.source.clone();
    for (key, value) in wanted {
        let spans = Spans::new(&text);
        if let Some(r) = spans.range(&[Seg::Key("boot"), Seg::Key(key)]) {
            text.replace_range(r, &value);
            continue;
        }
        // A missing key goes last in `boot:`, at the column of its other keys.
        let boot = spans
            .range(&[Seg::Key("boot")])
            .ok_or_else(|| edit_error(lab, "no `boot:` section".to_string()))?;
        let col = text[spans.line_start(boot.start)..boot.start]
            .chars()
            .count();
        let at = end_of_line(&text, boot.end);
        text = insert_lines(&text, at, &format!("{}{key}: {value}\n", " ".repeat(col)));
    }
    commit(lab, text, |new| {
        let b = &new.file.boot;
        b.kernel == kernel && b.initrds == initrds && b.modloop.as_deref() == Some(modloop)
    })
}
