//! Flags on the command line (RFC 3501 §9 / RFC 9051 §9: `flag-list`, `store-att-flags`,
//! `append`). The type is [`crate::imap::Flag`], shared with the response parser.

use super::string::Writer;
use crate::imap::primitive::check_atom;
use crate::imap::Flag;
use crate::EncodeError;

/// Refuses what a client may not send: `\Recent` and `\*`, and keywords or extension flags that
/// are not atoms (a parsed flag may carry 8-bit bytes, or anything may be built by hand).
fn check_sendable(flag: &Flag<'_>) -> Result<(), EncodeError> {
    match flag {
        Flag::Seen | Flag::Answered | Flag::Flagged | Flag::Deleted | Flag::Draft => Ok(()),
        Flag::Recent | Flag::MayCreate => Err(EncodeError::Invalid {
            field: "flag",
            reason: "\\Recent and \\* cannot be set by a client (RFC 3501 §2.3.2)",
        }),
        Flag::Keyword(k) => check_atom("flag keyword", k.as_bytes()),
        Flag::Extension(name) => match name.strip_prefix(b"\\") {
            Some(name) => check_atom("flag extension", name),
            None => Err(EncodeError::Invalid {
                field: "flag extension",
                reason: "an extension flag is a backslash and an atom",
            }),
        },
    }
}

/// `flag-list = "(" [flag *(SP flag)] ")"`. On error nothing is written.
pub(crate) fn write_flag_list(w: &mut Writer<'_>, flags: &[Flag<'_>]) -> Result<(), EncodeError> {
    flags.iter().try_for_each(check_sendable)?;
    w.raw(b"(");
    for (i, flag) in flags.iter().enumerate() {
        if i > 0 {
            w.sp();
        }
        w.raw(flag.as_bytes());
    }
    w.raw(b")");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::imap::command::EncodeOptions;

    fn flag_list(flags: &[Flag<'_>]) -> Result<String, EncodeError> {
        let options = EncodeOptions::default();
        let mut w = Writer::new(&options);
        write_flag_list(&mut w, flags)?;
        let line = w.finish().to_bytes();
        Ok(String::from_utf8(line).unwrap().trim_end().to_owned())
    }

    #[test]
    fn system_flags_and_keywords() {
        let flags = [
            Flag::Seen,
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Draft,
            Flag::keyword("$Forwarded").unwrap(),
        ];
        assert_eq!(
            flag_list(&flags).unwrap(),
            "(\\Seen \\Answered \\Flagged \\Deleted \\Draft $Forwarded)"
        );
        assert_eq!(flag_list(&[]).unwrap(), "()");
        assert_eq!(
            flag_list(&[Flag::Extension(Cow::Borrowed(b"\\Important"))]).unwrap(),
            "(\\Important)"
        );
    }

    #[test]
    fn refuses_non_atoms() {
        for bad in [
            "",
            "two words",
            "\\Seen",
            "a)",
            "a]",
            "x\r\nA2 DELETE INBOX",
            "é",
            "50%",
        ] {
            assert!(Flag::keyword(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_server_only_and_malformed_flags() {
        for bad in [
            Flag::Recent,
            Flag::MayCreate,
            Flag::Extension(Cow::Borrowed(b"Important")),
            Flag::Extension(Cow::Borrowed(b"\\a b")),
            Flag::Extension(Cow::Borrowed(b"\\")),
        ] {
            assert!(flag_list(std::slice::from_ref(&bad)).is_err(), "{bad:?}");
        }
        // An 8-bit keyword a server sent (the parser is lenient) is not sent back.
        let (_, parsed) = crate::imap::flag::flag_list("(Wichtig\u{e4})".as_bytes()).unwrap();
        assert!(flag_list(&parsed).is_err());
    }
}
