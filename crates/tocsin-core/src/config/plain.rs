//! A quick reader for the plain YAML that policy files are written in.
//!
//! Owns one decision: whether a file can be read without serde-saphyr, and if so its typed
//! value. A `check` of 1,000 rules spent most of its time in serde-saphyr's event machinery,
//! which is built for all of YAML and for the located diagnostics of a file that is wrong.
//! Most files are neither exotic nor wrong: block mappings and sequences, one-line plain and
//! quoted scalars, `|` and `>` blocks, one-line flow collections, comments. This module reads
//! exactly that, line by line, into a small tree of [`Node`]s with their positions, then hands
//! the tree to the same `Deserialize` impls.
//!
//! The rule it must keep: **it may refuse anything, it may never read a file differently.**
//! Whatever it is unsure of (anchors, aliases, tags, merge keys, tabs, documents, folded
//! multi-line scalars, numbers in any spelling but the canonical one, null where a value is
//! wanted, duplicate keys, every serde error) makes [`from_str`] return `None`, and the
//! caller parses the file again with serde-saphyr, which then decides, and words the
//! diagnostics. Scalars resolve as serde-saphyr resolves them under the loader's options, and
//! spans reach [`serde_saphyr::Spanned`] through its own `__yaml_spanned` protocol, so the
//! positions in [`super::Sp`] and [`super::Text`] are the same either way; the tests compare
//! both readers on every YAML file of the repository and on generated documents.
//!
//! Must not touch: diagnostics (a file it refuses is not an error) and the environment
//! (substitution happens in the `Deserialize` impls, the same for both readers).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::value::{MapDeserializer, StrDeserializer, UnitDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

/// Deeper nesting than this is left to serde-saphyr, which enforces the loader's limit with
/// a located error.
const MAX_DEPTH: usize = 24;

/// Larger files are left to serde-saphyr, whose budgets (nodes, events) then apply: one
/// MiB holds at most half a million nodes, under every budget the loader sets.
const MAX_BYTES: usize = 1 << 20;

/// Lines with other than ASCII longer than this are left to serde-saphyr: each node's column
/// is counted in characters from the start of its line.
const MAX_WIDE_LINE: usize = 4_096;

/// YAML bounds an implicit key to 1,024 characters; longer ones (and any near the bound)
/// are left to serde-saphyr.
const MAX_KEY_BYTES: usize = 1_000;

/// Reads `text` as `T` when it is plain YAML that reads as `T`; `None` when serde-saphyr must
/// decide (it is not plain, or it is not a valid `T`).
pub(super) fn from_str<T: DeserializeOwned>(text: &str) -> Option<T> {
    let root = Reader::new(text)?.document()?;
    T::deserialize(NodeDe(&root)).ok()
}

/// One YAML node with the 1-based line and column where it starts.
#[derive(Debug)]
struct Node<'a> {
    line: u32,
    column: u32,
    kind: Kind<'a>,
}

#[derive(Debug)]
enum Kind<'a> {
    /// A plain scalar: its text is resolved (null, bool, number, string) by what is asked of it.
    Plain(Cow<'a, str>),
    /// A quoted or block scalar: always a string.
    Text(Cow<'a, str>),
    Seq(Vec<Node<'a>>),
    Map(Vec<(Node<'a>, Node<'a>)>),
}

/// The line reader. `None` from any method means "not plain YAML: leave it to serde-saphyr".
struct Reader<'a> {
    /// The lines without their breaks; every one but maybe the last had one.
    lines: Vec<&'a str>,
    /// Whether each line is ASCII, where a column is a byte offset; found once, since a long
    /// line holds many nodes.
    ascii: Vec<bool>,
    /// Whether the last line ends in a line break.
    last_broken: bool,
    row: usize,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Blank, or only a comment.
fn is_filler(line: &str) -> bool {
    let t = line.trim_start_matches(' ');
    t.is_empty() || t.starts_with('#')
}

/// What may follow a finished value on its line: nothing, or a comment after a space.
fn rest_is_empty(rest: &str) -> bool {
    let t = rest.trim_start_matches(' ');
    t.is_empty() || (t.starts_with('#') && t.len() < rest.len())
}

/// Whether `s` starts with `c` followed by a space or the end of the line.
fn indicator(s: &str, c: u8) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b[0] == c && (b.len() == 1 || b[1] == b' ')
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Option<Reader<'a>> {
        // Tabs, carriage returns and byte-order marks all have rules of their own.
        if text.len() > MAX_BYTES || text.bytes().any(|b| b == b'\t' || b == b'\r') || text.starts_with('\u{feff}') {
            return None;
        }
        let last_broken = text.ends_with('\n');
        let mut lines: Vec<&str> = text.split('\n').collect();
        if last_broken {
            lines.pop();
        }
        let ascii: Vec<bool> = lines.iter().map(|l| l.is_ascii()).collect();
        // Elsewhere a column counts characters from the start of the line, per node.
        if lines.len() > u32::MAX as usize / 2 || lines.iter().zip(&ascii).any(|(l, a)| !a && l.len() > MAX_WIDE_LINE) {
            return None;
        }
        Some(Reader {
            lines,
            ascii,
            last_broken,
            row: 0,
        })
    }

    fn next_content(&self, from: usize) -> Option<usize> {
        (from..self.lines.len()).find(|&r| !is_filler(self.lines[r]))
    }

    fn node(&self, row: usize, byte: usize, kind: Kind<'a>) -> Node<'a> {
        let line = self.lines[row];
        let column = if self.ascii[row] {
            byte
        } else {
            line[..byte].chars().count()
        };
        Node {
            line: row as u32 + 1,
            column: column as u32 + 1,
            kind,
        }
    }

    fn document(mut self) -> Option<Node<'a>> {
        let mut first = self.next_content(0)?;
        if self.lines[first] == "---" {
            first = self.next_content(first + 1)?;
        }
        // Directives, further documents and document ends are left to serde-saphyr.
        if self.lines[first..]
            .iter()
            .any(|l| l.starts_with("---") || l.starts_with("...") || l.starts_with('%'))
        {
            return None;
        }
        self.row = first;
        let root = self.value(0, indent(self.lines[first]), -1, false)?;
        match self.next_content(self.row) {
            None => Some(root),
            Some(_) => None,
        }
    }

    /// The node starting at `col` of the current row, inside a collection indented at
    /// `parent` (-1 at the top). `inline` is set after a key on the same line, where a block
    /// collection cannot start. Leaves `row` at the first line after the node.
    fn value(&mut self, depth: usize, col: usize, parent: isize, inline: bool) -> Option<Node<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let row = self.row;
        let line = self.lines[row];
        let text = &line[col..];
        let b = text.as_bytes()[0];
        if indicator(text, b'-') {
            let indentless = col as isize == parent;
            return if inline {
                None
            } else {
                self.block_seq(depth, col, indentless)
            };
        }
        match b {
            b'|' | b'>' => return self.block_scalar(col, parent),
            b'[' | b'{' => {
                let mut at = col;
                let node = self.flow(depth, &mut at)?;
                if !rest_is_empty(&line[at..]) {
                    return None;
                }
                self.row += 1;
                return self.after_inline(node, parent);
            }
            _ => {}
        }
        if (b == b'"' || b == b'\'') && quoted(line, col).is_none() {
            return if parent >= 0 {
                self.quoted_lines(col, parent)
            } else {
                None
            };
        }
        let (scalar, end) = self.scalar_in_block(col)?;
        if line[end..].starts_with(':') && indicator(&line[end..], b':') {
            return if inline { None } else { self.block_map(depth, col) };
        }
        if !rest_is_empty(&line[end..]) {
            return None;
        }
        self.row += 1;
        let scalar = match scalar.kind {
            // A comment ends a plain scalar; without one it may go on on the next lines.
            Kind::Plain(first) if line[end..].trim_start_matches(' ').is_empty() => Node {
                kind: Kind::Plain(self.plain_lines(first, parent)?),
                ..scalar
            },
            _ => scalar,
        };
        self.after_inline(scalar, parent)
    }

    /// A quoted scalar that goes on past its first line (a value: keys are one line), folded
    /// as YAML folds them: a break becomes a space, each empty line a break, and the spaces
    /// around a break go.
    fn quoted_lines(&mut self, col: usize, parent: isize) -> Option<Node<'a>> {
        let row = self.row;
        let line = self.lines[row];
        let quote = line.as_bytes()[col];
        let mut text = String::new();
        if scan_quoted(line[col + 1..].trim_end_matches(' '), quote, &mut text)?.is_some() {
            return None;
        }
        let mut blanks = 0;
        let mut r = row + 1;
        loop {
            let l = *self.lines.get(r)?;
            let t = l.trim_start_matches(' ');
            r += 1;
            if t.is_empty() {
                blanks += 1;
                continue;
            }
            if indent(l) as isize <= parent {
                return None;
            }
            if blanks == 0 {
                text.push(' ');
            }
            text.extend(std::iter::repeat_n('\n', blanks));
            blanks = 0;
            let mark = text.len();
            if let Some(end) = scan_quoted(t, quote, &mut text)? {
                if !rest_is_empty(&t[end..]) {
                    return None;
                }
                self.row = r;
                let node = self.node(row, col, Kind::Text(Cow::Owned(text)));
                return self.after_inline(node, parent);
            }
            text.truncate(mark);
            scan_quoted(t.trim_end_matches(' '), quote, &mut text)?;
        }
    }

    /// The lines after the first that continue a plain scalar, indented deeper than its
    /// collection, folded as YAML folds them: one break becomes a space, each empty line a
    /// break. Lines that could be read another way are refused.
    fn plain_lines(&mut self, first: Cow<'a, str>, parent: isize) -> Option<Cow<'a, str>> {
        let mut text = first;
        let mut blanks = 0;
        let mut r = self.row;
        while r < self.lines.len() {
            let line = self.lines[r];
            let t = line.trim_matches(' ');
            if t.is_empty() {
                blanks += 1;
                r += 1;
                continue;
            }
            if indent(line) as isize <= parent || t.starts_with('#') {
                break;
            }
            let awkward = t.contains(": ") || t.ends_with(':') || t.contains(" #");
            if awkward || b"-?:,[]{}&*!|>'\"%@`".contains(&t.as_bytes()[0]) {
                return None;
            }
            let s = text.to_mut();
            if blanks == 0 {
                s.push(' ');
            }
            for _ in 0..blanks {
                s.push('\n');
            }
            s.push_str(t);
            blanks = 0;
            r += 1;
            self.row = r;
        }
        Some(text)
    }

    /// A one-line value is done; a following line indented deeper than its collection would
    /// continue it (a multi-line plain scalar) or be an error, so it is refused.
    fn after_inline(&self, node: Node<'a>, parent: isize) -> Option<Node<'a>> {
        match self.next_content(self.row) {
            Some(r) if indent(self.lines[r]) as isize > parent => None,
            _ => Some(node),
        }
    }

    /// A plain or quoted scalar starting at `col` in block context, and the byte after it.
    fn scalar_in_block(&self, col: usize) -> Option<(Node<'a>, usize)> {
        let line = self.lines[self.row];
        let text = &line[col..];
        match text.as_bytes()[0] {
            b'"' | b'\'' => {
                let (s, end) = quoted(line, col)?;
                Some((self.node(self.row, col, Kind::Text(s)), end))
            }
            b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' => None,
            b'?' | b':' | b'-' if indicator(text, text.as_bytes()[0]) => None,
            _ => {
                // A plain scalar ends at `: `, a final `:` or ` #`.
                let bytes = line.as_bytes();
                let mut end = col;
                while end < bytes.len() {
                    let c = bytes[end];
                    if c == b':' && (end + 1 == bytes.len() || bytes[end + 1] == b' ') {
                        break;
                    }
                    if c == b'#' && bytes[end - 1] == b' ' {
                        break;
                    }
                    end += 1;
                }
                let s = line[col..end].trim_end_matches(' ');
                Some((self.node(self.row, col, Kind::Plain(Cow::Borrowed(s))), col + s.len()))
            }
        }
    }

    fn block_map(&mut self, depth: usize, col: usize) -> Option<Node<'a>> {
        let start = (self.row, col);
        let mut pairs: Vec<(Node<'a>, Node<'a>)> = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let row = self.row;
            let line = self.lines[row];
            let (key, end) = self.scalar_in_block(col)?;
            if !indicator(&line[end..], b':') || end - col > MAX_KEY_BYTES {
                return None;
            }
            if !is_new_key(&pairs, &mut seen, &key) {
                return None;
            }
            let after = end + 1;
            let rest = &line[after..];
            let value = if rest_is_empty(rest) {
                // A key's value may be a sequence at the key's own indentation.
                self.value_below(depth, after, col, true)?
            } else {
                let skip = rest.len() - rest.trim_start_matches(' ').len();
                self.value(depth + 1, after + skip, col as isize, true)?
            };
            pairs.push((key, value));
            match self.next_content(self.row) {
                Some(r) if indent(self.lines[r]) == col && !indicator(&self.lines[r][col..], b'-') => self.row = r,
                Some(r) if indent(self.lines[r]) >= col => return None,
                _ => break,
            }
        }
        Some(self.node(start.0, start.1, Kind::Map(pairs)))
    }

    /// The value of a key or item whose line ends at byte `after`, in a collection indented
    /// at `col`: on the following lines when they are indented deeper (or, for a key, hold a
    /// sequence at `col`), else absent, which is null.
    fn value_below(&mut self, depth: usize, after: usize, col: usize, seq_at_col: bool) -> Option<Node<'a>> {
        let row = self.row;
        match self.next_content(row + 1) {
            Some(r)
                if indent(self.lines[r]) > col
                    || (seq_at_col && indent(self.lines[r]) == col && indicator(&self.lines[r][col..], b'-')) =>
            {
                self.row = r;
                let c = indent(self.lines[r]);
                self.value(depth + 1, c, col as isize, false)
            }
            _ => {
                self.row = row + 1;
                Some(self.node(row, after, Kind::Plain(Cow::Borrowed(""))))
            }
        }
    }

    /// A block sequence whose first `-` is at `col`. An `indentless` one, the value of a key
    /// at the same indentation, is placed at its first item, as serde-saphyr places it.
    fn block_seq(&mut self, depth: usize, col: usize, indentless: bool) -> Option<Node<'a>> {
        let mut start = (self.row, col);
        let mut items = Vec::new();
        loop {
            let row = self.row;
            let line = self.lines[row];
            let after = col + 1;
            let rest = &line[after..];
            let item = if rest_is_empty(rest) {
                if indentless && items.is_empty() {
                    return None;
                }
                self.value_below(depth, after, col, false)?
            } else {
                let skip = rest.len() - rest.trim_start_matches(' ').len();
                if indentless && items.is_empty() {
                    start = (row, after + skip);
                }
                self.value(depth + 1, after + skip, col as isize, false)?
            };
            items.push(item);
            match self.next_content(self.row) {
                Some(r) if indent(self.lines[r]) == col && indicator(&self.lines[r][col..], b'-') => self.row = r,
                Some(r) if indent(self.lines[r]) > col => return None,
                _ => break,
            }
        }
        Some(self.node(start.0, start.1, Kind::Seq(items)))
    }

    /// A `|` or `>` block scalar whose header is at `col` of the current row, inside a
    /// collection indented at `parent`.
    fn block_scalar(&mut self, col: usize, parent: isize) -> Option<Node<'a>> {
        let row = self.row;
        let header = &self.lines[row][col..];
        let folded = header.starts_with('>');
        let (chomp, rest) = match header.as_bytes().get(1) {
            Some(b'-') => (Chomp::Strip, &header[2..]),
            Some(b'+') => (Chomp::Keep, &header[2..]),
            _ => (Chomp::Clip, &header[1..]),
        };
        // An explicit indentation indicator, or anything else after the header, is refused.
        if !rest_is_empty(rest) {
            return None;
        }
        let first = self.next_nonblank(row + 1)?;
        let width = indent(self.lines[first]);
        if width as isize <= parent {
            return None;
        }
        let mut body: Vec<&str> = Vec::new();
        let mut r = row + 1;
        while r < self.lines.len() {
            let line = self.lines[r];
            if line.trim_start_matches(' ').is_empty() {
                // Spaces beyond the indentation in an empty line would be content.
                if line.len() > width {
                    return None;
                }
                body.push("");
            } else if indent(line) >= width {
                body.push(&line[width..]);
            } else if indent(line) as isize > parent {
                return None;
            } else {
                break;
            }
            r += 1;
        }
        self.row = r;
        let last = body.iter().rposition(|l| !l.is_empty())?;
        let trailing = body.len() - 1 - last;
        let lines = &body[..=last];
        let mut text = String::new();
        if folded {
            // A break between two lines at the indentation folds into a space (or into the
            // empty lines after it); a break next to a more-indented line is kept.
            let mut breaks = 0;
            let mut prev_normal = None;
            for l in lines {
                if l.is_empty() {
                    breaks += 1;
                    continue;
                }
                let normal = !l.starts_with(' ');
                match prev_normal {
                    None => text.extend(std::iter::repeat_n('\n', breaks)),
                    Some(true) if normal && breaks == 0 => text.push(' '),
                    Some(true) if normal => text.extend(std::iter::repeat_n('\n', breaks)),
                    Some(_) => text.extend(std::iter::repeat_n('\n', breaks + 1)),
                }
                breaks = 0;
                prev_normal = Some(normal);
                text.push_str(l);
            }
        } else {
            for (i, l) in lines.iter().enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                text.push_str(l);
            }
        }
        match chomp {
            Chomp::Strip => {}
            Chomp::Clip => text.push('\n'),
            Chomp::Keep => {
                // The last line's break and the empty lines after it; a final line of the
                // file without a break has none.
                text.push('\n');
                for _ in 0..trailing {
                    text.push('\n');
                }
            }
        }
        // At the end of the file, the final break (or its absence) and the empty lines
        // before it have rules of their own for kept and clipped text.
        let at_end = r == self.lines.len();
        let unsure = match chomp {
            Chomp::Strip => false,
            Chomp::Keep => at_end,
            Chomp::Clip => at_end && !self.last_broken && trailing == 0,
        };
        if unsure {
            return None;
        }
        // serde-saphyr places a block scalar at its first line of content.
        let node = self.node(first, width, Kind::Text(Cow::Owned(text)));
        self.after_inline(node, parent)
    }

    fn next_nonblank(&self, from: usize) -> Option<usize> {
        (from..self.lines.len()).find(|&r| !self.lines[r].trim_start_matches(' ').is_empty())
    }

    /// A flow collection or scalar on one line, from `*at`; leaves `*at` after it.
    fn flow(&self, depth: usize, at: &mut usize) -> Option<Node<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let line = self.lines[self.row];
        let bytes = line.as_bytes();
        skip_spaces(bytes, at);
        let start = *at;
        match bytes.get(start)? {
            b'[' => {
                *at += 1;
                let mut items = Vec::new();
                loop {
                    skip_spaces(bytes, at);
                    if bytes.get(*at) == Some(&b']') && items.is_empty() {
                        *at += 1;
                        break;
                    }
                    items.push(self.flow(depth + 1, at)?);
                    skip_spaces(bytes, at);
                    match bytes.get(*at)? {
                        b',' => *at += 1,
                        b']' => {
                            *at += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
                Some(self.node(self.row, start, Kind::Seq(items)))
            }
            b'{' => {
                *at += 1;
                let mut pairs: Vec<(Node<'a>, Node<'a>)> = Vec::new();
                let mut seen = HashSet::new();
                loop {
                    skip_spaces(bytes, at);
                    if bytes.get(*at) == Some(&b'}') && pairs.is_empty() {
                        *at += 1;
                        break;
                    }
                    let key_at = *at;
                    let key = self.flow_scalar(at)?;
                    if bytes.get(*at) != Some(&b':')
                        || bytes.get(*at + 1) != Some(&b' ')
                        || *at - key_at > MAX_KEY_BYTES
                    {
                        return None;
                    }
                    *at += 2;
                    if !is_new_key(&pairs, &mut seen, &key) {
                        return None;
                    }
                    skip_spaces(bytes, at);
                    if matches!(bytes.get(*at), Some(b',' | b'}') | None) {
                        return None;
                    }
                    let value = self.flow(depth + 1, at)?;
                    pairs.push((key, value));
                    skip_spaces(bytes, at);
                    match bytes.get(*at)? {
                        b',' => *at += 1,
                        b'}' => {
                            *at += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
                Some(self.node(self.row, start, Kind::Map(pairs)))
            }
            _ => {
                let node = self.flow_scalar(at)?;
                // `[a: b]` is a pair inside a sequence.
                if bytes.get(*at) == Some(&b':') {
                    return None;
                }
                Some(node)
            }
        }
    }

    /// A scalar in a flow collection, from `*at`; leaves `*at` after it.
    fn flow_scalar(&self, at: &mut usize) -> Option<Node<'a>> {
        let line = self.lines[self.row];
        let bytes = line.as_bytes();
        let start = *at;
        match bytes.get(start)? {
            b'"' | b'\'' => {
                let (s, end) = quoted(line, start)?;
                *at = end;
                Some(self.node(self.row, start, Kind::Text(s)))
            }
            b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' => None,
            b'?' | b':' | b'-'
                if matches!(
                    bytes.get(start + 1),
                    None | Some(b' ' | b',' | b'[' | b']' | b'{' | b'}')
                ) =>
            {
                None
            }
            _ => {
                let mut end = start;
                while end < bytes.len() {
                    let c = bytes[end];
                    if matches!(c, b',' | b'[' | b']' | b'{' | b'}') || (c == b'#' && bytes[end - 1] == b' ') {
                        break;
                    }
                    if c == b':' && matches!(bytes.get(end + 1), None | Some(b' ' | b',' | b'[' | b']' | b'{' | b'}')) {
                        break;
                    }
                    end += 1;
                }
                let s = line[start..end].trim_end_matches(' ');
                *at = start + s.len();
                if bytes.get(*at) == Some(&b' ') {
                    skip_spaces(bytes, at);
                }
                Some(self.node(self.row, start, Kind::Plain(Cow::Borrowed(s))))
            }
        }
    }
}

enum Chomp {
    Strip,
    Clip,
    Keep,
}

fn skip_spaces(bytes: &[u8], at: &mut usize) {
    while bytes.get(*at) == Some(&b' ') {
        *at += 1;
    }
}

/// Whether `key` may join a mapping holding `pairs`: a scalar, neither a merge key (`<<`) nor
/// one the mapping already has. Both are serde-saphyr's to handle or refuse. `seen` holds the
/// hashes of the keys so far, so that a wide mapping is not compared pair by pair.
fn is_new_key(pairs: &[(Node<'_>, Node<'_>)], seen: &mut HashSet<u64>, key: &Node<'_>) -> bool {
    let Some(name) = key_text(key) else {
        return false;
    };
    let mut hasher = std::hash::DefaultHasher::new();
    name.hash(&mut hasher);
    // A hash met before is checked against the keys themselves.
    name != "<<" && (seen.insert(hasher.finish()) || !pairs.iter().any(|(k, _)| key_text(k) == Some(name)))
}

fn key_text<'n>(node: &'n Node<'_>) -> Option<&'n str> {
    match &node.kind {
        Kind::Plain(s) => Some(s),
        Kind::Text(s) => Some(s),
        _ => None,
    }
}

/// A one-line quoted scalar whose quote is at `col`: its text and the byte after the
/// closing quote. Without an escape or a doubled quote before the closing one, the text is
/// the slice itself.
fn quoted(line: &str, col: usize) -> Option<(Cow<'_, str>, usize)> {
    let quote = line.as_bytes()[col];
    let body = &line[col + 1..];
    let first = body.bytes().position(|b| b == quote || (quote == b'"' && b == b'\\'))?;
    let doubled = quote == b'\'' && body.as_bytes().get(first + 1) == Some(&b'\'');
    if body.as_bytes()[first] == quote && !doubled {
        return Some((Cow::Borrowed(&body[..first]), col + 2 + first));
    }
    let mut text = String::new();
    let end = scan_quoted(body, quote, &mut text)??;
    Some((Cow::Owned(text), col + 1 + end))
}

/// Appends the text of `seg`, a piece of a `quote`d scalar, to `out`: `Some(Some(end))` when
/// the closing quote ends at byte `end`, `Some(None)` when the piece ends first, `None` for an
/// escape this reader does not take (a backslash before the break among them).
fn scan_quoted(seg: &str, quote: u8, out: &mut String) -> Option<Option<usize>> {
    let bytes = seg.as_bytes();
    let mut from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == quote && quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
            out.push_str(&seg[from..=i]);
            i += 2;
            from = i;
        } else if c == quote {
            out.push_str(&seg[from..i]);
            return Some(Some(i + 1));
        } else if c == b'\\' && quote == b'"' {
            out.push_str(&seg[from..i]);
            let (ch, len) = escape(&seg[i + 1..])?;
            out.push(ch);
            i += 1 + len;
            from = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&seg[from..]);
    Some(None)
}

/// The character of the escape after a backslash and how many bytes it took.
fn escape(rest: &str) -> Option<(char, usize)> {
    let c = *rest.as_bytes().first()?;
    let simple = match c {
        b'\\' => '\\',
        b'"' => '"',
        b'/' => '/',
        b'n' => '\n',
        b't' => '\t',
        b'r' => '\r',
        b'0' => '\0',
        b' ' => ' ',
        b'x' | b'u' | b'U' => {
            let len = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let hex = rest.get(1..1 + len)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let code = u32::from_str_radix(hex, 16).ok()?;
            return Some((char::from_u32(code)?, 1 + len));
        }
        _ => return None,
    };
    Some((simple, 1))
}

/// The refusal: the file goes to serde-saphyr.
#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to the full YAML parser")
    }
}

impl std::error::Error for Refused {}

impl de::Error for Refused {
    fn custom<T: fmt::Display>(_: T) -> Refused {
        Refused
    }
}

/// `null` as serde-saphyr reads a plain scalar.
fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// A decimal integer in its one canonical spelling (no sign, leading zero or underscore).
fn is_canonical_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0"
}

/// `12.5`, `-0.25`: a canonical integer part, a point and digits.
fn is_canonical_float(s: &str) -> bool {
    match s.split_once('.') {
        Some((int, frac)) => is_canonical_int(int) && !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// A plain scalar that serde-saphyr might read as something other than its text: a boolean
/// in YAML 1.1 spelling, a number in another base or form, infinity, not-a-number. Those are
/// refused rather than resolved here. `30d` and `5m` are text: a number's only letters are
/// its radix prefix, hex digits after `0x`, and an exponent.
fn maybe_not_text(s: &str) -> bool {
    let bare = s.trim_start_matches(['+', '-', '.']).to_ascii_lowercase();
    if matches!(
        bare.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "inf" | "infinity" | "nan"
    ) {
        return true;
    }
    let t = s.trim_start_matches(['+', '-']);
    if !t.bytes().any(|b| b.is_ascii_digit()) || !t.bytes().all(|b| b.is_ascii_hexdigit() || b"xXoObB._+-".contains(&b))
    {
        return false;
    }
    t.starts_with("0x") || t.starts_with("0X") || !t.bytes().any(|b| b"acdfACDF".contains(&b))
}

struct NodeDe<'n, 'a>(&'n Node<'a>);

impl<'n, 'a> NodeDe<'n, 'a> {
    fn plain(&self) -> Option<&'n str> {
        match &self.0.kind {
            Kind::Plain(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar's text for a string, unless it is a plain null.
    fn text(&self) -> Result<&'n str, Refused> {
        match &self.0.kind {
            Kind::Plain(s) if !is_null(s) => Ok(s),
            Kind::Text(s) => Ok(s),
            _ => Err(Refused),
        }
    }

    fn int(&self) -> Result<Result<u64, i64>, Refused> {
        let s = self.plain().filter(|s| is_canonical_int(s)).ok_or(Refused)?;
        if s.starts_with('-') {
            s.parse().map(Err).map_err(|_| Refused)
        } else {
            s.parse().map(Ok).map_err(|_| Refused)
        }
    }
}

macro_rules! ints {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
            match self.int()? {
                Ok(u) => visitor.visit_u64(u),
                Err(i) => visitor.visit_i64(i),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_, '_> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match &self.0.kind {
            Kind::Plain(s) => {
                let s: &str = s;
                if is_null(s) {
                    visitor.visit_unit()
                } else if s == "true" || s == "false" {
                    visitor.visit_bool(s == "true")
                } else if is_canonical_int(s) {
                    self.deserialize_i64(visitor)
                } else if is_canonical_float(s) {
                    visitor.visit_f64(s.parse().map_err(|_| Refused)?)
                } else if maybe_not_text(s) {
                    Err(Refused)
                } else {
                    visitor.visit_str(s)
                }
            }
            Kind::Text(s) => visitor.visit_str(s),
            Kind::Seq(items) => visitor.visit_seq(Items(items.iter())),
            Kind::Map(pairs) => visitor.visit_map(Pairs(pairs.iter(), None)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match self.plain() {
            Some("true") => visitor.visit_bool(true),
            Some("false") => visitor.visit_bool(false),
            _ => Err(Refused),
        }
    }

    ints! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        let s = self
            .plain()
            .filter(|s| is_canonical_int(s) || is_canonical_float(s))
            .ok_or(Refused)?;
        visitor.visit_f64(s.parse().map_err(|_| Refused)?)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match self.plain() {
            Some(s) if is_null(s) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match self.plain() {
            Some(s) if is_null(s) => visitor.visit_unit(),
            _ => Err(Refused),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Refused> {
        match name {
            // serde-saphyr's `Spanned<T>`: the position of a null that is not written is
            // serde-saphyr's own business.
            "__yaml_spanned" if self.plain() == Some("") => Err(Refused),
            "__yaml_spanned" => visitor.visit_newtype_struct(SpannedDe(self.0)),
            n if n.starts_with("__yaml_") => Err(Refused),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match &self.0.kind {
            Kind::Seq(items) => visitor.visit_seq(Items(items.iter())),
            _ => Err(Refused),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        match &self.0.kind {
            Kind::Map(pairs) => visitor.visit_map(Pairs(pairs.iter(), None)),
            _ => Err(Refused),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refused> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refused> {
        visitor.visit_enum(UnitVariant(self.text()?))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_unit()
    }

    fn deserialize_char<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Refused> {
        Err(Refused)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Refused> {
        Err(Refused)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Refused> {
        Err(Refused)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, _: V) -> Result<V::Value, Refused> {
        Err(Refused)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Refused> {
        self.deserialize_seq(visitor)
    }
}

struct Items<'n, 'a>(std::slice::Iter<'n, Node<'a>>);

impl<'de> SeqAccess<'de> for Items<'_, '_> {
    type Error = Refused;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Refused> {
        self.0.next().map(|n| seed.deserialize(NodeDe(n))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Pairs<'n, 'a>(std::slice::Iter<'n, (Node<'a>, Node<'a>)>, Option<&'n Node<'a>>);

impl<'de> MapAccess<'de> for Pairs<'_, '_> {
    type Error = Refused;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Refused> {
        match self.0.next() {
            Some((k, v)) => {
                self.1 = Some(v);
                seed.deserialize(NodeDe(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refused> {
        seed.deserialize(NodeDe(self.1.take().ok_or(Refused)?))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct UnitVariant<'n>(&'n str);

impl<'de> EnumAccess<'de> for UnitVariant<'_> {
    type Error = Refused;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Refused> {
        let de: StrDeserializer<'_, Refused> = self.0.into_deserializer();
        Ok((seed.deserialize(de)?, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant<'_> {
    type Error = Refused;

    fn unit_variant(self) -> Result<(), Refused> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> Result<T::Value, Refused> {
        Err(Refused)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Refused> {
        Err(Refused)
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], _: V) -> Result<V::Value, Refused> {
        Err(Refused)
    }
}

/// serde-saphyr's `Spanned<T>` reads a map `{marker, value, referenced, defined}`; this is
/// that map for a node of the tree (no aliases here, so both locations are the node's).
struct SpannedDe<'n, 'a>(&'n Node<'a>);

/// The first key serde-saphyr's `Spanned<T>` expects, which tells its own map from a user's.
const SPANNED_MARKER: &str = "__serde_saphyr_private_spanned";

impl<'de> de::Deserializer<'de> for SpannedDe<'_, '_> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        visitor.visit_map(SpannedMap { node: self.0, next: 0 })
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct SpannedMap<'n, 'a> {
    node: &'n Node<'a>,
    next: usize,
}

const SPANNED_KEYS: [&str; 4] = [SPANNED_MARKER, "value", "referenced", "defined"];

impl<'de> MapAccess<'de> for SpannedMap<'_, '_> {
    type Error = Refused;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Refused> {
        let Some(key) = SPANNED_KEYS.get(self.next) else {
            return Ok(None);
        };
        let de: StrDeserializer<'_, Refused> = key.into_deserializer();
        seed.deserialize(de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refused> {
        let field = self.next;
        self.next += 1;
        match field {
            0 => seed.deserialize(UnitDeserializer::<Refused>::new()),
            1 => seed.deserialize(NodeDe(self.node)),
            _ => seed.deserialize(MapDeserializer::<_, Refused>::new(
                [("line", self.node.line), ("column", self.node.column)].into_iter(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use proptest::prelude::*;
    use serde::Deserialize;
    use serde::de::{self, MapAccess, SeqAccess, Visitor};

    use super::super::load::options;
    use super::super::{FileKind, Source, Sp, detect_kind};
    use super::from_str;

    /// Any YAML value with the position of every node, as both readers see it.
    #[derive(Debug, PartialEq)]
    enum Tree {
        Null,
        Bool(bool),
        U(u64),
        I(i64),
        F(f64),
        S(String),
        Seq(Vec<Sp<Tree>>),
        Map(Vec<(Sp<String>, Sp<Tree>)>),
    }

    impl<'de> Deserialize<'de> for Tree {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Tree;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("anything")
                }
                fn visit_unit<E>(self) -> Result<Tree, E> {
                    Ok(Tree::Null)
                }
                fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
                    Ok(Tree::Bool(v))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
                    Ok(Tree::U(v))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
                    Ok(Tree::I(v))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
                    Ok(Tree::F(v))
                }
                fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
                    Ok(Tree::S(v.to_string()))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                    let mut items = Vec::new();
                    while let Some(item) = seq.next_element()? {
                        items.push(item);
                    }
                    Ok(Tree::Seq(items))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                    let mut pairs = Vec::new();
                    while let Some(pair) = map.next_entry()? {
                        pairs.push(pair);
                    }
                    Ok(Tree::Map(pairs))
                }
            }
            d.deserialize_any(V)
        }
    }

    /// The quick reader agrees with serde-saphyr wherever it does not refuse; returns whether
    /// it read the text, and whether serde-saphyr did.
    fn agrees<T: serde::de::DeserializeOwned + fmt::Debug>(text: &str) -> (bool, bool) {
        let full = serde_saphyr::from_str_with_options::<T>(text, options());
        let Some(quick) = from_str::<T>(text) else {
            return (false, full.is_ok());
        };
        match full {
            Ok(full) => assert_eq!(format!("{quick:?}"), format!("{full:?}"), "read differently:\n{text}"),
            Err(e) => panic!("the quick reader read what serde-saphyr refuses ({e}):\n{text}\n{quick:?}"),
        }
        (true, true)
    }

    fn repository_yaml() -> Vec<(String, String)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let mut out = Vec::new();
        // The files the repository keeps, not what benchmarks and builds leave in it.
        let mut dirs: Vec<std::path::PathBuf> = ["examples", "rules", "receivers", "tests", "docs", "dist"]
            .iter()
            .map(|d| std::path::Path::new(root).join(d))
            .collect();
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().to_string();
                if path.is_dir() {
                    if !name.starts_with('.') && name != "target" && name != "node_modules" {
                        dirs.push(path);
                    }
                } else if (name.ends_with(".yaml") || name.ends_with(".yml"))
                    && let Ok(text) = std::fs::read_to_string(&path)
                {
                    out.push((path.display().to_string(), text));
                }
            }
        }
        out
    }

    #[test]
    fn every_yaml_file_of_the_repository_reads_the_same_or_is_refused() {
        let files = repository_yaml();
        assert!(files.len() >= 40, "found only {} YAML files", files.len());
        let mut read = 0;
        for (path, text) in &files {
            agrees::<Sp<Tree>>(text);
            let source = Source::new(path, text.as_bytes().to_vec()).expect("a file of the repository");
            let (quick, full) = match detect_kind(&source) {
                Some(FileKind::Rules) => agrees::<super::super::RuleFile>(text),
                Some(FileKind::Receivers) => agrees::<super::super::ReceiverFile>(text),
                Some(FileKind::Config) => agrees::<super::super::EngineConfig>(text),
                Some(FileKind::Test) => agrees::<super::super::TestFile>(text),
                None => (false, false),
            };
            // The reader earns its place only if it reads the files people write: every policy
            // file of the repository is plain YAML, blank ones aside (those are `{}`), and the
            // planted errors (`.inf` reads, and is refused later).
            let planted = path.contains("/invalid/");
            assert!(
                quick || !full || planted || text.trim().is_empty(),
                "the quick reader refuses {path}"
            );
            read += usize::from(quick);
        }
        assert!(read >= 30, "read only {read} files");
    }

    #[test]
    fn positions_are_serde_saphyrs() {
        let text = "a: 1\nb:\n  - x\n  - 'y'\n  - {c: [1, 2.5, -3], d: \"e\\tf\"}\n  - k: |\n      one\n      two\n    l: >-\n      three\n      four\n\n      five\n  -\n    m: ~\n";
        assert_eq!(agrees::<Sp<Tree>>(text), (true, true));
    }

    /// Hostile shapes stay linear: a long line of nodes, a wide mapping, a long line with other
    /// than ASCII (left to serde-saphyr). Quadratic work here would take minutes, not a second.
    #[test]
    fn long_lines_and_wide_mappings_are_read_in_one_pass() {
        let long = format!("a: [{}1]\n", "1, ".repeat(100_000));
        assert_eq!(agrees::<Sp<Tree>>(&long), (true, true));
        let wide: String = (0..50_000).map(|i| format!("k{i}: {i}\n")).collect();
        assert_eq!(agrees::<Sp<Tree>>(&wide), (true, true));
        let dup = format!("{wide}k7: 1\n");
        assert!(from_str::<Sp<Tree>>(&dup).is_none());
        let accented = format!("a: [{}é]\n", "é, ".repeat(2_000));
        assert!(from_str::<Sp<Tree>>(&accented).is_none());
        assert_eq!(agrees::<Sp<Tree>>("a: [é, ü]\n"), (true, true));
    }

    #[test]
    fn scalars_over_several_lines_fold_as_serde_saphyr_folds_them() {
        for text in [
            "expr: a\n  + b\n\n  c\nnext: 1\n",
            "expr: 'a ''q''\n    b\n\n    c'\nnext: 1\n",
            "- \"a\\tb\n  c \\u00e9\"\n",
            "expr: >-\n  a\n     + b\n     + c\n  d\n\n  e\n",
        ] {
            assert_eq!(agrees::<Sp<Tree>>(text), (true, true), "{text}");
        }
    }

    #[test]
    fn what_it_is_unsure_of_is_refused() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "<<: {a: 1}\n",
            "a: 1\na: 2\n",
            "a: yes\n",
            "a: 0x1F\n",
            "a: 1e3\n",
            "a: .inf\n",
            "a: 007\n",
            "a:\tb\n",
            "a: 1\n---\nb: 2\n",
            "a: [1,\n  2]\n",
            "a: |2\n   x\n",
            "? a\n: b\n",
            format!("{}: 1\n", "k".repeat(1_100)).as_str(),
            format!("a: [{}1]\n", "1, ".repeat(400_000)).as_str(),
        ] {
            assert!(from_str::<Sp<Tree>>(text).is_none(), "read {text:?}");
        }
    }

    /// Pieces of YAML, good and bad, that the generated documents are made of.
    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("x".to_string()),
            Just("5m".to_string()),
            Just("critical".to_string()),
            Just("1".to_string()),
            Just("-2".to_string()),
            Just("0.5".to_string()),
            Just("1.50".to_string()),
            Just("true".to_string()),
            Just("True".to_string()),
            Just("no".to_string()),
            Just("~".to_string()),
            Just("null".to_string()),
            Just("".to_string()),
            Just("'it''s'".to_string()),
            Just("\"a\\nb \\u00e9\"".to_string()),
            Just("\"\"".to_string()),
            Just("a b  # c".to_string()),
            Just("http://x:9/y".to_string()),
            Just("{{ $labels.job }}".to_string()),
            Just("[a, 'b', {c: d}]".to_string()),
            Just("{a: 1, b: [2]}".to_string()),
            Just("é ü".to_string()),
            Just("a: b".to_string()),
            Just("- a".to_string()),
            Just("#".to_string()),
            "[a-z0-9 .:#'\"-]{0,8}",
        ]
    }

    #[derive(Debug, Clone)]
    enum Doc {
        Scalar(String),
        Block(bool, u8, Vec<String>),
        Quoted(bool, Vec<String>),
        Seq(Vec<Doc>),
        Map(Vec<(String, Doc)>),
    }

    fn doc() -> impl Strategy<Value = Doc> {
        let leaf = prop_oneof![
            4 => scalar().prop_map(Doc::Scalar),
            1 => (any::<bool>(), 0u8..3, prop::collection::vec("[a-z {}#:]{0,6}", 1..4))
                .prop_map(|(f, c, l)| Doc::Block(f, c, l)),
            1 => (any::<bool>(), prop::collection::vec("[a-z #:'\"\\\\]{0,6}", 1..4))
                .prop_map(|(d, l)| Doc::Quoted(d, l)),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(Doc::Seq),
                prop::collection::vec((scalar(), inner), 1..4).prop_map(Doc::Map),
            ]
        })
    }

    fn render(doc: &Doc, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match doc {
            Doc::Scalar(s) => {
                out.push(' ');
                out.push_str(s);
                out.push('\n');
            }
            Doc::Block(folded, chomp, lines) => {
                out.push_str(if *folded { " >" } else { " |" });
                out.push_str(["", "-", "+"][*chomp as usize]);
                out.push('\n');
                for l in lines {
                    if !l.is_empty() {
                        out.push_str(&pad);
                        out.push_str("  ");
                    }
                    out.push_str(l);
                    out.push('\n');
                }
            }
            Doc::Quoted(double, lines) => {
                let q = if *double { '"' } else { '\'' };
                out.push(' ');
                out.push(q);
                for (i, l) in lines.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                        if !l.is_empty() {
                            out.push_str(&pad);
                        }
                    }
                    out.push_str(l);
                }
                out.push(q);
                out.push('\n');
            }
            Doc::Seq(items) => {
                out.push('\n');
                for item in items {
                    out.push_str(&pad);
                    out.push('-');
                    render(item, indent + 2, out);
                }
            }
            Doc::Map(pairs) => {
                out.push('\n');
                for (k, v) in pairs {
                    out.push_str(&pad);
                    out.push_str(k);
                    out.push(':');
                    render(v, indent + 2, out);
                }
            }
        }
    }

    /// The generated documents test the reader only where it reads them; most hold a piece
    /// it must refuse (about 29 % are read).
    #[test]
    fn many_generated_documents_are_read() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut read = 0;
        for _ in 0..1_000 {
            let d = doc().new_tree(&mut runner).expect("a document").current();
            let mut text = String::from("root:");
            render(&d, 2, &mut text);
            read += usize::from(agrees::<Sp<Tree>>(&text).0);
        }
        assert!(read >= 200, "read {read} of 1,000 generated documents");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// Generated documents, and the same documents with a byte changed, read the same
        /// by both readers whenever the quick one reads them.
        #[test]
        fn generated_documents_read_the_same_or_are_refused(
            d in doc(),
            at in any::<prop::sample::Index>(),
            edit in prop::sample::select(vec!["", " ", ":", "-", "#", "\n", "'", "\"", "[", "|", "  "]),
            delete in any::<bool>(),
        ) {
            let mut text = String::from("root:");
            render(&d, 2, &mut text);
            agrees::<Sp<Tree>>(&text);
            let mut edited = text.clone();
            let mut i = at.index(edited.len() + 1);
            while !edited.is_char_boundary(i) {
                i -= 1;
            }
            if delete && i < edited.len() {
                edited.remove(i);
            }
            edited.insert_str(i, edit);
            agrees::<Sp<Tree>>(&edited);
        }
    }
}
