//! The code cites the threat model (docs/threat-model.md) by number: `threat model #41`, and in
//! older comments `SECURITY.md #41`, the name of the list the numbers were first given in. Both
//! forms must name a case the document has; a number without an entry is a promise nobody can
//! check. These tests scan every `.rs` file under crates/, tests/, benches/ and fuzz/.
//!
//! A reference belongs in comments, never in a message: a user has no SECURITY.md and no
//! threat-model numbering in front of them. A reference inside a string literal is refused
//! unless tests/threat_model_literals.allow lists it (the ones that predate this rule, to be
//! removed as the messages are reworded); an entry that no longer matches anything is refused
//! too, so the list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The workspace root (the tests package lives in `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package is inside the workspace")
        .to_path_buf()
}

/// Every `.rs` file under the scanned directories, sorted, as (path relative to the root, text).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                // Build output and hidden directories hold no source of ours.
                if name != "target" && !name.starts_with('.') {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let root = root();
    let mut files = Vec::new();
    for dir in ["crates", "tests", "benches", "fuzz"] {
        walk(&root.join(dir), &mut files);
    }
    // This file spells out the citation forms it looks for; it cites nothing.
    files.retain(|path| !path.ends_with("tests/tests/it/threat_model_refs.rs"));
    files.sort();
    assert!(
        files.len() > 50,
        "found only {} .rs files under {}: wrong root?",
        files.len(),
        root.display()
    );
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            let rel = path
                .strip_prefix(&root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/");
            (rel, text)
        })
        .collect()
}

/// The numbers of the document's entries: headings `### 41. Title`.
fn entries() -> BTreeMap<u32, String> {
    let path = root().join("docs/threat-model.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let mut entries = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("### ") else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() || !rest[digits.len()..].starts_with(". ") {
            continue;
        }
        let number: u32 = digits.parse().expect("a heading number");
        let title = rest[digits.len() + 2..].trim().to_string();
        assert!(
            entries.insert(number, title).is_none(),
            "docs/threat-model.md has two entries numbered {number}"
        );
    }
    entries
}

/// One citation found in a source file.
#[derive(Debug)]
struct Reference {
    file: String,
    /// 1-based line of the citation's first word.
    line: usize,
    /// The numbers cited (ranges expanded); empty when no number could be read.
    numbers: Vec<u32>,
    /// The citation starts inside a string literal.
    in_literal: bool,
    /// The whole source line, trimmed.
    text: String,
}

/// Byte ranges of the string literals in Rust source (plain, byte, C and raw strings), found
/// with a small lexer that knows comments and char literals, so a quote in a comment or `'"'`
/// does not start a string.
fn string_literals(src: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while i < bytes.len() && depth > 0 {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{..}', '"'), or a lifetime/label ('a).
                if bytes.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    let width = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    if bytes.get(i + 1 + width) == Some(&b'\'') {
                        i += 2 + width;
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' | b'b' | b'c' if i == 0 || !ident(bytes[i - 1]) => {
                // A raw string (r"..", r#".."#, br".."), or a byte/C string (b"..", c"..").
                let mut j = i + 1;
                if bytes[i] != b'r' && bytes.get(j) == Some(&b'r') {
                    j += 1;
                }
                let raw = bytes[i] == b'r' || j == i + 2;
                let mut hashes = 0;
                while raw && bytes.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if bytes.get(j) != Some(&b'"') {
                    // An identifier starting with r, b or c.
                    while i < bytes.len() && ident(bytes[i]) {
                        i += 1;
                    }
                    continue;
                }
                let start = j;
                if raw {
                    let close: Vec<u8> = std::iter::once(b'"')
                        .chain(std::iter::repeat_n(b'#', hashes))
                        .collect();
                    let mut k = j + 1;
                    while k < bytes.len() && !bytes[k..].starts_with(&close) {
                        k += 1;
                    }
                    i = (k + close.len()).min(bytes.len());
                } else {
                    i = end_of_string(bytes, j);
                }
                out.push(start..i);
            }
            b'"' => {
                let start = i;
                i = end_of_string(bytes, i);
                out.push(start..i);
            }
            b if ident(b) => {
                while i < bytes.len() && ident(bytes[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The index just past the closing quote of the escaped string opening at `open`.
fn end_of_string(bytes: &[u8], open: usize) -> usize {
    let mut k = open + 1;
    while k < bytes.len() {
        match bytes[k] {
            b'\\' => k += 2,
            b'"' => return k + 1,
            _ => k += 1,
        }
    }
    bytes.len()
}

/// Reads the numbers of a citation starting at `at` (just after `SECURITY.md` or `threat
/// model`): comment markers and line breaks are skipped, then `#41`, `row 41`, lists
/// (`#41, #52`, `#41 and #52`) and ranges (`#12–#17`, `#20-27`). `#41's class` is #41.
fn numbers_after(text: &str, at: usize) -> Vec<u32> {
    let rest = &text[at..];
    let mut i = 0;
    let skip_space = |i: &mut usize| loop {
        let r = &rest[*i..];
        let trimmed = r.trim_start_matches([' ', '\t', '\n', '\r']);
        let moved = r.len() - trimmed.len();
        // A citation wrapped onto the next comment line.
        let marker = ["//!", "///", "//", "*"]
            .iter()
            .find(|m| moved > 0 && r[..moved].contains('\n') && trimmed.starts_with(**m));
        match marker {
            Some(m) => *i += moved + m.len(),
            None => {
                *i += moved;
                return;
            }
        }
    };
    let number = |i: &mut usize, hash_required: bool| -> Option<u32> {
        let r = &rest[*i..];
        let (skip, r) = match r.strip_prefix('#') {
            Some(r) => (1, r),
            None if hash_required => return None,
            None => (0, r),
        };
        let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        *i += skip + digits.len();
        digits.parse().ok()
    };
    skip_space(&mut i);
    let first = if let Some(r) = rest[i..]
        .strip_prefix("rows ")
        .or_else(|| rest[i..].strip_prefix("row "))
    {
        i = rest.len() - r.len();
        number(&mut i, false)
    } else {
        number(&mut i, true)
    };
    let Some(first) = first else {
        return Vec::new();
    };
    let mut numbers = vec![first];
    // A failed attempt at a range or a list ends the citation: nothing to restore.
    loop {
        // A range: `-`, `–` or `..`, the second number with or without `#`.
        if let Some(sep) = ["–", "-", ".."]
            .iter()
            .find(|sep| rest[i..].starts_with(**sep))
        {
            i += sep.len();
            if let Some(last) = number(&mut i, false) {
                let from = *numbers.last().expect("one number at least");
                if last > from && last - from < 200 {
                    numbers.extend(from + 1..=last);
                    continue;
                }
            }
            break;
        }
        // A list: `, #52` or ` and #52`.
        let r = &rest[i..];
        let after = r
            .strip_prefix(", ")
            .or_else(|| r.strip_prefix(","))
            .or_else(|| r.strip_prefix(" and "));
        if let Some(after) = after {
            i = rest.len() - after.len();
            skip_space(&mut i);
            if let Some(n) = number(&mut i, true) {
                numbers.push(n);
                continue;
            }
        }
        break;
    }
    numbers
}

/// Every citation in every scanned file.
fn references() -> Vec<Reference> {
    let mut out = Vec::new();
    for (file, text) in sources() {
        let literals = string_literals(&text);
        let lower = text.to_ascii_lowercase();
        let mut starts: Vec<(usize, usize, bool)> = Vec::new();
        for (needle, bare_is_citation) in [("security.md", true), ("threat model", false)] {
            let mut from = 0;
            while let Some(pos) = lower[from..].find(needle) {
                let at = from + pos;
                starts.push((at, at + needle.len(), bare_is_citation));
                from = at + needle.len();
            }
        }
        starts.sort_unstable();
        for (at, end, bare_is_citation) in starts {
            let numbers = numbers_after(&text, end);
            let in_literal = literals.iter().any(|r| r.contains(&at));
            // "the threat model" in prose cites nothing; SECURITY.md always means the old
            // list, and so does any mention in a string a user may see.
            if numbers.is_empty() && !bare_is_citation && !in_literal {
                continue;
            }
            let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
            let line_end = text[at..].find('\n').map_or(text.len(), |p| at + p);
            out.push(Reference {
                file: file.clone(),
                line: text[..at].matches('\n').count() + 1,
                numbers,
                in_literal,
                text: text[line_start..line_end].trim().to_string(),
            });
        }
    }
    out
}

/// The text an allowlist entry is compared on: the mechanical rename of `SECURITY.md #NN` to
/// `threat model #NN` does not make an entry stale, rewording the message does.
fn normalized(text: &str) -> String {
    text.replace("SECURITY.md", "threat model")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn allowlist() -> BTreeSet<(String, String)> {
    let path = root().join("tests/threat_model_literals.allow");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (file, text) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("{}: not `file: text`: {line}", path.display()));
            (file.to_string(), normalized(text))
        })
        .collect()
}

#[test]
fn every_cited_number_has_an_entry() {
    let entries = entries();
    let refs = references();
    assert!(
        refs.len() > 50,
        "found only {} citations: is the scanner broken?",
        refs.len()
    );
    let mut report = String::new();
    for r in &refs {
        if r.numbers.is_empty() {
            let _ = writeln!(
                report,
                "{}:{}: cites the threat model without a number: {}",
                r.file, r.line, r.text
            );
        }
        for n in &r.numbers {
            if !entries.contains_key(n) {
                let _ = writeln!(
                    report,
                    "{}:{}: #{n} has no entry in docs/threat-model.md: {}",
                    r.file, r.line, r.text
                );
            }
        }
    }
    assert!(report.is_empty(), "unresolved citations:\n{report}");
}

#[test]
fn entries_are_numbered_from_1_without_gaps() {
    let entries = entries();
    // The numbers of SECURITY.md, where the list began, stay what they were: 1 to 68.
    assert!(
        entries.len() >= 68,
        "docs/threat-model.md has {} entries; the first 68 keep their numbers",
        entries.len()
    );
    let numbers: Vec<u32> = entries.keys().copied().collect();
    let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
    assert_eq!(
        numbers, expected,
        "entries must be numbered 1, 2, 3 ... without gaps"
    );
}

#[test]
fn every_test_and_file_the_document_names_exists() {
    let path = root().join("docs/threat-model.md");
    let doc = std::fs::read_to_string(&path).expect("docs/threat-model.md");
    let functions: BTreeSet<String> = sources()
        .iter()
        .flat_map(|(_, text)| {
            text.match_indices("fn ")
                .map(|(at, _)| {
                    text[at + 3..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut report = String::new();
    let mut tests = 0;
    let mut in_tests = false;
    for line in doc.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("- **") || trimmed.starts_with('#') {
            in_tests = trimmed.starts_with("- **Tests:**");
        }
        for (i, quoted) in line.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let is_path = (quoted.starts_with("crates/") || quoted.starts_with("tests/"))
                && !quoted.contains(' ');
            if is_path && !root().join(quoted).exists() {
                let _ = writeln!(report, "no such file or directory: {quoted}");
            }
            let is_name = !quoted.is_empty()
                && quoted
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if in_tests && is_name {
                tests += 1;
                if !functions.contains(quoted) {
                    let _ = writeln!(report, "no test function {quoted}");
                }
            }
        }
    }
    assert!(
        tests > 200,
        "read only {tests} test names: has the entry format changed?"
    );
    assert!(report.is_empty(), "docs/threat-model.md names:\n{report}");
}

#[test]
fn no_citation_in_a_string_a_user_may_see() {
    let allowed = allowlist();
    let mut used = BTreeSet::new();
    let mut report = String::new();
    for r in references().into_iter().filter(|r| r.in_literal) {
        let key = (r.file.clone(), normalized(&r.text));
        if allowed.contains(&key) {
            used.insert(key);
        } else {
            let _ = writeln!(report, "{}:{}: {}", r.file, r.line, r.text);
        }
    }
    let stale: Vec<String> = allowed
        .difference(&used)
        .map(|(file, text)| format!("{file}: {text}"))
        .collect();
    assert!(
        report.is_empty(),
        "threat-model citations inside string literals (a message must explain itself; put \
         the number in a comment):\n{report}"
    );
    assert!(
        stale.is_empty(),
        "tests/threat_model_literals.allow lists citations that are gone; remove these \
         lines:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_scanner_reads_every_citation_form() {
    let cases: &[(&str, &[u32])] = &[
        (" #41).", &[41]),
        (" #41's class", &[41]),
        (" #3, #41: never", &[3, 41]),
        (" #12–#17).", &[12, 13, 14, 15, 16, 17]),
        (
            " #20-27, #50-55)",
            &[20, 21, 22, 23, 24, 25, 26, 27, 50, 51, 52, 53, 54, 55],
        ),
        (" row 40).", &[40]),
        ("\n    /// #41), and", &[41]),
        ("\n//! #52 and #54", &[52, 54]),
        (" #52-style", &[52]),
        (" says so", &[]),
        (" 41", &[]),
    ];
    for (text, expected) in cases {
        assert_eq!(numbers_after(text, 0), *expected, "{text:?}");
    }
    let src = "// \"x SECURITY.md #1\"\nlet a = '\"'; let s = \"a SECURITY.md #2\"; \
               let r = r#\"b \"SECURITY.md #3\"#; fn f<'a>(x: &'a str) {}";
    let literals = string_literals(src);
    let inside = |needle: &str| {
        let at = src.find(needle).expect("in the sample");
        literals.iter().any(|r| r.contains(&at))
    };
    assert!(!inside("SECURITY.md #1"), "a comment is not a string");
    assert!(inside("SECURITY.md #2"));
    assert!(inside("SECURITY.md #3"));
}
