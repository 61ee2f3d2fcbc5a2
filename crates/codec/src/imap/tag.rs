//! Command tags (RFC 3501 §2.2.1, §9 `tag`): one type for the tag a client sends and the tag a
//! server answers with, so the two compare directly.

use std::borrow::Cow;
use std::fmt;

use crate::core::parse::{expected, PResult};
use crate::EncodeError;

use super::primitive::is_astring_char;

/// `tag = 1*<any ASTRING-CHAR except "+">`.
fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// A command tag: `tag = 1*<any ASTRING-CHAR except "+">` (always ASCII).
///
/// A client builds one with [`Tag::new`] or a [`TagGenerator`]; the parser gives the tag of a
/// tagged response as the same type, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag<'a>(Cow<'a, str>);

impl Tag<'_> {
    /// Checks a tag.
    pub fn new(tag: impl Into<String>) -> Result<Tag<'static>, EncodeError> {
        let tag = tag.into();
        crate::core::text::check_line_safe("tag", tag.as_bytes())?;
        if tag.is_empty() {
            return Err(EncodeError::Empty { field: "tag" });
        }
        if !tag.bytes().all(is_tag_char) {
            return Err(EncodeError::Invalid {
                field: "tag",
                reason: "a tag is made of atom characters (or ']'), without '+'",
            });
        }
        Ok(Tag(Cow::Owned(tag)))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// An owned copy.
    pub fn into_owned(self) -> Tag<'static> {
        Tag(Cow::Owned(self.0.into_owned()))
    }
}

impl fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hands out distinct tags: `A0001`, `A0002`, … (more digits after `A9999`).
#[derive(Debug, Clone)]
pub struct TagGenerator {
    prefix: String,
    next: u64,
}

impl TagGenerator {
    /// Tags `A0001`, `A0002`, ...
    pub fn new() -> Self {
        Self {
            prefix: "A".to_owned(),
            next: 1,
        }
    }

    /// Tags with another prefix (letters only, so tags of two generators never collide with a
    /// different number).
    pub fn with_prefix(prefix: &str) -> Result<Self, EncodeError> {
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(EncodeError::Invalid {
                field: "tag prefix",
                reason: "use one or more ASCII letters",
            });
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            next: 1,
        })
    }

    /// The next tag.
    pub fn next_tag(&mut self) -> Tag<'static> {
        let tag = Tag(Cow::Owned(format!("{}{:04}", self.prefix, self.next)));
        self.next = self.next.wrapping_add(1).max(1);
        tag
    }
}

impl Default for TagGenerator {
    fn default() -> Self {
        Self::new()
    }
}

/// `tag`, as it starts a tagged response.
pub(crate) fn tag(input: &[u8]) -> PResult<'_, Tag<'_>> {
    let n = input.iter().take_while(|&&b| is_tag_char(b)).count();
    // Tag characters are ASCII, so the conversion cannot fail; an empty tag is not one.
    match std::str::from_utf8(&input[..n]) {
        Ok(t) if n > 0 => Ok((&input[n..], Tag(Cow::Borrowed(t)))),
        _ => expected(input, "a tag, \"*\" or \"+\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_and_built_tags_compare() {
        let (rest, parsed) = tag(b"A0001 OK").unwrap();
        assert_eq!(rest, b" OK");
        assert_eq!(parsed, TagGenerator::new().next_tag());
        assert_eq!(parsed, Tag::new("A0001").unwrap());
        assert!(tag(b"+ x").is_err());
        assert!(tag(b" x").is_err());
    }
}
