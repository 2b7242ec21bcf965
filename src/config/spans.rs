//! Where things are in lab.yaml: maps a path such as `nodes[3].mac` to a byte range
//! and a 1-based line:column, through `yaml-edit`'s lossless syntax tree.
//!
//! serde tells us *what* is wrong with a value but not *where* the value is once the
//! file has been deserialised; this module answers the "where" for validation messages
//! and gives the write-back editor exact ranges to splice.

use std::ops::Range;
use std::str::FromStr;

use yaml_edit::{Document, YamlNode};

/// One step of a path into the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

/// Positions of the values of one lab.yaml text.
pub struct Spans {
    doc: Option<Document>,
    line_starts: Vec<usize>,
    text: String,
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans")
            .field("parsed", &self.doc.is_some())
            .finish()
    }
}

impl Spans {
    /// Indexes `text`. A text yaml-edit cannot parse still gives line:column for
    /// offsets, only path lookups return `None`.
    pub fn new(text: &str) -> Spans {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Spans {
            doc: Document::from_str(text).ok(),
            line_starts,
            text: text.to_string(),
        }
    }

    /// The text that was indexed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The node at `path`, if it exists.
    pub fn node(&self, path: &[Seg<'_>]) -> Option<YamlNode> {
        let root = self.doc.as_ref()?.as_mapping()?;
        let mut cur: Option<YamlNode> = None;
        for (i, seg) in path.iter().enumerate() {
            cur = match (i, seg) {
                (0, Seg::Key(k)) => root.get(*k),
                (0, Seg::Index(_)) => None,
                (_, Seg::Key(k)) => cur?.get(*k),
                (_, Seg::Index(n)) => cur?.get_item(*n),
            };
            cur.as_ref()?;
        }
        cur
    }

    /// Byte range of the value at `path`.
    pub fn range(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        let r = self.node(path)?.byte_range();
        Some(r.start as usize..r.end as usize)
    }

    /// Byte range of the key of the last mapping step of `path` (e.g. the `hostnmae`
    /// in `nodes[2].hostnmae`).
    pub fn key_range(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        let (last, parent) = path.split_last()?;
        let Seg::Key(k) = last else { return None };
        let map = if parent.is_empty() {
            self.doc.as_ref()?.as_mapping()?
        } else {
            self.node(parent)?.as_mapping()?.clone()
        };
        let entry = map.find_entry_by_key(*k)?;
        let r = entry.key_node()?.byte_range();
        Some(r.start as usize..r.end as usize)
    }

    /// 1-based line and column of a byte offset (columns count characters).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line + 1, col + 1)
    }

    /// line:column of the value at `path`, or of its nearest ancestor that exists,
    /// or 1:1.
    pub fn locate(&self, path: &[Seg<'_>]) -> (usize, usize) {
        for n in (1..=path.len()).rev() {
            if let Some(r) = self.range(&path[..n]) {
                return self.line_col(r.start);
            }
        }
        (1, 1)
    }

    /// line:column of the key at `path` (falls back to [`Spans::locate`]).
    pub fn locate_key(&self, path: &[Seg<'_>]) -> (usize, usize) {
        match self.key_range(path) {
            Some(r) => self.line_col(r.start),
            None => self.locate(path),
        }
    }

    /// Number of items of the sequence at `path` (0 when absent or not a sequence).
    pub fn seq_len(&self, path: &[Seg<'_>]) -> usize {
        self.node(path)
            .and_then(|n| n.as_sequence().map(|s| s.len()))
            .unwrap_or(0)
    }

    /// Byte offset where the line holding `offset` starts.
    pub fn line_start(&self, offset: usize) -> usize {
        let line = self
            .line_starts
            .partition_point(|&s| s <= offset.min(self.text.len()))
            - 1;
        self.line_starts[line]
    }

    /// The keys of the top-level mapping, each with the byte range of its whole entry
    /// (key, value and the line break after it).
    pub fn top_level_entries(&self) -> Vec<(String, Range<usize>)> {
        let Some(map) = self.doc.as_ref().and_then(|d| d.as_mapping()) else {
            return Vec::new();
        };
        map.entries()
            .filter_map(|e| {
                let key = e.key_node()?;
                let name = key.as_scalar()?.as_string();
                let r = e.byte_range();
                Some((name, r.start as usize..r.end as usize))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# top\nname: lab # c\nnodes:\n  # first\n  - mac: a0:1a:2c:c3:d4:e0   # m\n    hostname: node-0\n\n  - {mac: x, hostname: y}\nroles:\n  web:\n    user_data: |\n      a\n";

    #[test]
    fn locates_values_and_keys() {
        let s = Spans::new(TEXT);
        assert_eq!(
            s.locate(&[Seg::Key("nodes"), Seg::Index(0), Seg::Key("mac")]),
            (5, 10)
        );
        assert_eq!(
            s.locate_key(&[Seg::Key("nodes"), Seg::Index(0), Seg::Key("hostname")]),
            (6, 5)
        );
        assert_eq!(
            s.locate(&[Seg::Key("nodes"), Seg::Index(1), Seg::Key("hostname")]),
            (8, 24)
        );
        assert_eq!(s.locate(&[Seg::Key("name")]), (2, 7));
        // A missing leaf falls back to its parent.
        assert_eq!(
            s.locate(&[Seg::Key("nodes"), Seg::Index(0), Seg::Key("ip")]),
            (5, 5)
        );
        assert_eq!(s.seq_len(&[Seg::Key("nodes")]), 2);
        let keys: Vec<String> = s.top_level_entries().into_iter().map(|e| e.0).collect();
        assert_eq!(keys, ["name", "nodes", "roles"]);
    }
}
