//! RFC 5322 §3.4 address lists, as found in To/Cc/Bcc headers and in sendmail-style arguments:
//! the bare `addr-spec` of every mailbox, whatever surrounds it.
//!
//! ```text
//! address-list = address *("," address)
//! address      = mailbox / group
//! mailbox      = name-addr / addr-spec        name-addr  = [display-name] angle-addr
//! angle-addr   = "<" [obs-route] addr-spec ">"
//! group        = display-name ":" [mailbox-list] ";"      (undisclosed-recipients:;)
//! addr-spec    = local-part "@" domain
//! ```
//!
//! Comments `( ... )` (nested, with `\` escapes) and whitespace are dropped anywhere; quoted
//! strings keep their quotes (a quoted local part is passed on as it is written, which SMTP's
//! `Quoted-string` accepts); the obsolete source route `<@a,@b:user@host>` is dropped; empty list
//! elements (`a@b,,c@d`) are skipped (RFC 5322 §4.4). Display names are never looked at beyond
//! finding where they end. An address without a domain (`root`) is an error: this program does
//! not guess a domain for it.

use std::fmt;

/// Why an address list could not be read: what and where, for a message to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AddressError {
    /// The element (or the rest of the text) that is wrong, as written.
    pub near: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.near, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An atom (or any run of characters that are not specials).
    Atom(String),
    /// A quoted string, quotes included, escapes kept.
    Quoted(String),
    /// A domain literal, brackets included.
    Literal(String),
    /// One of `< > , : ; @ .`
    Special(char),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Self::Atom(s) | Self::Quoted(s) | Self::Literal(s) => s.clone(),
            Self::Special(c) => c.to_string(),
        }
    }
}

fn render(tokens: &[Token]) -> String {
    let mut out = String::new();
    for (i, token) in tokens.iter().enumerate() {
        let word = !matches!(token, Token::Special(_));
        let previous_word = i > 0 && !matches!(tokens[i - 1], Token::Special(_));
        if word && previous_word {
            out.push(' ');
        }
        out.push_str(&token.text());
    }
    out
}

fn tokenize(text: &str) -> Result<Vec<Token>, AddressError> {
    let error = |reason| AddressError {
        near: text.trim().to_owned(),
        reason,
    };
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => {
                let mut depth = 1usize;
                while depth > 0 {
                    match chars.next() {
                        Some('\\') => {
                            chars.next();
                        }
                        Some('(') => depth += 1,
                        Some(')') => depth -= 1,
                        Some(_) => {}
                        None => return Err(error("a comment \"(\" is not closed")),
                    }
                }
            }
            '"' => {
                let mut quoted = String::from('"');
                loop {
                    match chars.next() {
                        Some('\\') => {
                            quoted.push('\\');
                            match chars.next() {
                                Some(escaped) => quoted.push(escaped),
                                None => return Err(error("a quoted string is not closed")),
                            }
                        }
                        Some('"') => break,
                        Some(other) => quoted.push(other),
                        None => return Err(error("a quoted string is not closed")),
                    }
                }
                quoted.push('"');
                tokens.push(Token::Quoted(quoted));
            }
            '[' => {
                let mut literal = String::from('[');
                loop {
                    match chars.next() {
                        Some('\\') => {
                            literal.push('\\');
                            if let Some(escaped) = chars.next() {
                                literal.push(escaped);
                            }
                        }
                        Some(']') => break,
                        Some(other) => literal.push(other),
                        None => return Err(error("a domain literal \"[\" is not closed")),
                    }
                }
                literal.push(']');
                tokens.push(Token::Literal(literal));
            }
            '<' | '>' | ',' | ':' | ';' | '@' | '.' => tokens.push(Token::Special(c)),
            ')' => return Err(error("a \")\" closes no comment")),
            _ => {
                let mut atom = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "()<>,:;@.\"[]".contains(next) {
                        break;
                    }
                    atom.push(next);
                    chars.next();
                }
                tokens.push(Token::Atom(atom));
            }
        }
    }
    Ok(tokens)
}

/// The bare addresses (`local@domain`) of an address list, in order.
pub(super) fn parse_list(text: &str) -> Result<Vec<String>, AddressError> {
    let tokens = tokenize(text)?;
    let mut addresses = Vec::new();
    let mut item: Vec<Token> = Vec::new();
    let mut in_angle = false;
    let mut in_group = false;
    for token in tokens {
        match token {
            Token::Special('<') if !in_angle => {
                in_angle = true;
                item.push(token);
            }
            Token::Special('>') if in_angle => {
                in_angle = false;
                item.push(token);
            }
            // In an angle address a ':' ends an obsolete route; outside, it starts a group
            // whose display name is what came before.
            Token::Special(':') if !in_angle => {
                if in_group {
                    return Err(AddressError {
                        near: render(&item),
                        reason: "a group cannot hold another group",
                    });
                }
                in_group = true;
                item.clear();
            }
            Token::Special(';') if !in_angle => {
                if !in_group {
                    return Err(AddressError {
                        near: render(&item),
                        reason: "a \";\" ends no group (a group is written name: a@b, c@d;)",
                    });
                }
                finish(&mut item, &mut addresses)?;
                in_group = false;
            }
            Token::Special(',') if !in_angle => finish(&mut item, &mut addresses)?,
            token => item.push(token),
        }
    }
    if in_angle {
        return Err(AddressError {
            near: render(&item),
            reason: "a \"<\" is not closed by \">\"",
        });
    }
    if in_group {
        return Err(AddressError {
            near: render(&item),
            reason: "a group is not closed by \";\"",
        });
    }
    finish(&mut item, &mut addresses)?;
    Ok(addresses)
}

/// Turns one list element (a mailbox) into its address, if it is not empty.
fn finish(item: &mut Vec<Token>, addresses: &mut Vec<String>) -> Result<(), AddressError> {
    let tokens = std::mem::take(item);
    if tokens.is_empty() {
        return Ok(());
    }
    let near = || render(&tokens);
    let spec: &[Token] = match tokens.iter().position(|t| *t == Token::Special('<')) {
        Some(open) => {
            let close = tokens
                .iter()
                .position(|t| *t == Token::Special('>'))
                .filter(|&close| close > open)
                .ok_or_else(|| AddressError {
                    near: near(),
                    reason: "a \"<\" is not closed by \">\"",
                })?;
            if tokens[close + 1..]
                .iter()
                .any(|t| *t != Token::Special('>'))
            {
                return Err(AddressError {
                    near: near(),
                    reason: "text after the \">\" of an address (a missing comma?)",
                });
            }
            let inner = &tokens[open + 1..close];
            // obs-route: "@a,@b:" before the address; the tokenizer kept the ',' and ':'.
            match inner.first() {
                Some(Token::Special('@')) => {
                    match inner.iter().position(|t| *t == Token::Special(':')) {
                        Some(colon) => &inner[colon + 1..],
                        None => {
                            return Err(AddressError {
                                near: near(),
                                reason: "a source route \"<@host\" without \":\"",
                            })
                        }
                    }
                }
                _ => inner,
            }
        }
        None => &tokens,
    };
    addresses.push(addr_spec(spec).map_err(|reason| AddressError {
        near: near(),
        reason,
    })?);
    Ok(())
}

/// `local-part "@" domain` from its tokens: words separated by dots, one `@`, a dotted domain
/// or a domain literal.
fn addr_spec(tokens: &[Token]) -> Result<String, &'static str> {
    if tokens.is_empty() {
        return Err("an empty address \"<>\"");
    }
    let at = tokens
        .iter()
        .position(|t| *t == Token::Special('@'))
        .ok_or("no \"@domain\": give the whole address, e.g. root@example.com")?;
    let (local, domain) = (&tokens[..at], &tokens[at + 1..]);
    let dotted =
        |parts: &[Token], what: &'static str, words: bool| -> Result<String, &'static str> {
            let mut out = String::new();
            let mut expect_word = true;
            for token in parts {
                match (token, expect_word) {
                    (Token::Atom(s), true) => out.push_str(s),
                    (Token::Quoted(s), true) if words => out.push_str(s),
                    (Token::Special('.'), false) => out.push('.'),
                    (Token::Special('@'), _) => return Err("more than one \"@\""),
                    (Token::Atom(_) | Token::Quoted(_), false) => return Err(
                        "spaces inside an address (a display name needs <...> around the address)",
                    ),
                    _ => return Err(what),
                }
                expect_word = !expect_word;
            }
            if expect_word {
                return Err(what);
            }
            Ok(out)
        };
    let local = dotted(
        local,
        "the part before \"@\" is not a valid local part",
        true,
    )?;
    let domain = match domain {
        [Token::Literal(literal)] => literal.clone(),
        _ => dotted(domain, "the part after \"@\" is not a valid domain", false)?,
    };
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<String> {
        parse_list(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> AddressError {
        match parse_list(text) {
            Ok(list) => panic!("{text:?} parsed as {list:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn bare_addresses_and_lists() {
        assert_eq!(ok("a@example.com"), ["a@example.com"]);
        assert_eq!(
            ok(" a@example.com ,b@example.org"),
            ["a@example.com", "b@example.org"]
        );
        assert_eq!(ok(""), Vec::<String>::new());
        // RFC 5322 §4.4: empty list elements are skipped.
        assert_eq!(ok("a@x.test,, ,b@y.test,"), ["a@x.test", "b@y.test"]);
    }

    #[test]
    fn display_names_quoted_and_with_specials() {
        assert_eq!(
            ok("Alice Example <alice@example.com>, \"Doe, John\" <john@example.com>"),
            ["alice@example.com", "john@example.com"]
        );
        assert_eq!(ok("John Q. Public <jqp@example.com>"), ["jqp@example.com"]);
        assert_eq!(
            ok("\"quote \\\" and <angle> @ at\" <q@example.com>"),
            ["q@example.com"]
        );
        assert_eq!(
            ok("=?UTF-8?Q?Andr=C3=A9?= <andre@example.com>"),
            ["andre@example.com"]
        );
        assert_eq!(ok("<bare@example.com>"), ["bare@example.com"]);
    }

    #[test]
    fn comments_anywhere_even_nested_and_with_escapes() {
        assert_eq!(
            ok("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
            ["pete@silly.test"]
        );
        assert_eq!(
            ok("a@example.com (Alice (the (first)) one)"),
            ["a@example.com"]
        );
        assert_eq!(ok("(comment only), b@example.com"), ["b@example.com"]);
    }

    #[test]
    fn groups_empty_and_with_members() {
        assert_eq!(ok("undisclosed-recipients:;"), Vec::<String>::new());
        assert_eq!(
            ok("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Mary <mary@x.test>"),
            ["c@a.test", "joe@where.test", "jdoe@one.test", "mary@x.test"]
        );
        assert_eq!(ok("friends: ; x@y.test"), ["x@y.test"]);
    }

    #[test]
    fn quoted_local_parts_domain_literals_and_obsolete_forms() {
        assert_eq!(ok("\"john doe\"@example.com"), ["\"john doe\"@example.com"]);
        assert_eq!(ok("a@[192.0.2.1]"), ["a@[192.0.2.1]"]);
        // obs-route and obs-local-part / obs-domain with spaces around the dots.
        assert_eq!(
            ok("<@relay.test,@other.test:user@host.test>"),
            ["user@host.test"]
        );
        assert_eq!(ok("john . doe @ example . com"), ["john.doe@example.com"]);
        assert_eq!(ok("utf8 <jörg@bücher.example>"), ["jörg@bücher.example"]);
    }

    #[test]
    fn malformed_lists_say_what_is_wrong() {
        assert!(err("root").reason.contains("@domain"));
        assert!(err("Alice <alice@example.com")
            .reason
            .contains("not closed"));
        assert!(err("\"unterminated <a@b.test>")
            .reason
            .contains("quoted string"));
        assert!(err("a@b.test (open comment").reason.contains("comment"));
        assert!(err("John Doe john@example.com").reason.contains("spaces"));
        assert!(err("a@@b.test").reason.contains("more than one"));
        assert!(err("a@b.test;").reason.contains("ends no group"));
        assert!(err("g: a@b.test").reason.contains("not closed"));
        assert!(err("<a@b.test> trailing").reason.contains("after"));
        assert!(err("a.@b.test").reason.contains("local part"));
        assert!(err("a@b..test").reason.contains("domain"));
        assert!(err("<>").reason.contains("empty"));
        let e = err("ok@x.test, Doe, John <j@x.test>");
        assert_eq!(e.near, "Doe");
        assert_eq!(
            e.to_string(),
            "\"Doe\": no \"@domain\": give the whole address, e.g. root@example.com"
        );
    }
}
