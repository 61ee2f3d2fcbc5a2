//! The BODY and BODYSTRUCTURE fetch items (RFC 3501 §7.4.2, §9 `body`; RFC 9051 §9).
//!
//! Recursive by nature (a multipart holds parts, a `message/rfc822` part holds a whole message),
//! so the nesting is checked against [`crate::Limits::max_depth`] *before* each recursion, and
//! never allowed past [`MAX_NESTING`] whatever the limits say: a server cannot overflow the
//! stack with 100,000 `(`.
//!
//! Real servers bend this grammar more than any other; each tolerance below names its server:
//! - `NIL` as the body encoding (iCloud; imap-codec saw it from maddy) → `encoding: None`.
//! - `NIL` as a parameter value (Mail.ru, for `boundary`) → an empty value.
//! - a negative line count (`-1`, Exchange and Dovecot behind it: go-imap #534, MailKit #823)
//!   → rectified to 0, with [`SinglePart::rectified`] set so a caller can tell.
//! - extension data in the non-extensible `BODY` item (Yahoo) → parsed like BODYSTRUCTURE.
//! - `NIL` as the media type, subtype or a parameter name (an attached message whose structure
//!   the server could not read, inside `message/rfc822` too) → an empty string.
//! - a multipart with no parts (an empty `multipart/mixed`): the subtype alone → no parts.
//! - runs of spaces between fields (Exchange, QQ Mail) → one separator.
//! - a disposition sent as a bare string (`NIL "inline" NIL`, Exchange, MailKit #919), or any
//!   extension data that does not follow the grammar → the extension is kept raw only.

use std::borrow::Cow;

use crate::core::parse::{expected, failure, PResult, Problem};

use super::envelope::{envelope, ImapEnvelope};
use super::primitive::{
    byte, nil, nstring, own, own_opt, paren_list, skip_value, sp1, spaces, string, string_or_nil,
    Ctx,
};

/// `body-fld-param`: attribute/value pairs, as sent.
pub type BodyParams<'a> = Vec<(Cow<'a, [u8]>, Cow<'a, [u8]>)>;

/// The hard ceiling on body structure nesting, whatever [`crate::Limits::max_depth`] says.
pub const MAX_NESTING: usize = 128;

/// A body structure: one part, or a multipart of parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStructure<'a> {
    /// A non-multipart part.
    Single(Box<SinglePart<'a>>),
    /// A multipart.
    Multi(Box<MultiPart<'a>>),
}

/// `body-type-1part`: a basic, text or message part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinglePart<'a> {
    /// The media type (`TEXT`, `IMAGE`, `MESSAGE` ...), as sent.
    pub media_type: Cow<'a, [u8]>,
    /// The media subtype (`PLAIN`, `JPEG`, `RFC822` ...), as sent.
    pub media_subtype: Cow<'a, [u8]>,
    /// `body-fld-param`: attribute/value pairs (`charset`, `name` ...).
    pub params: BodyParams<'a>,
    /// `body-fld-id`: the Content-ID.
    pub id: Option<Cow<'a, [u8]>>,
    /// `body-fld-desc`: the Content-Description.
    pub description: Option<Cow<'a, [u8]>>,
    /// `body-fld-enc`: the Content-Transfer-Encoding; `None` where iCloud sends NIL.
    pub encoding: Option<Cow<'a, [u8]>>,
    /// `body-fld-octets`: the size in its encoding.
    pub size: u32,
    /// `body-fld-lines`: text and message parts.
    pub lines: Option<u32>,
    /// For `message/rfc822` (and `message/global`): the enclosed message.
    pub message: Option<Box<EncapsulatedMessage<'a>>>,
    /// Extension data (BODYSTRUCTURE), if sent.
    pub extension: Option<BodyExtension<'a>>,
    /// True if a negative number was rectified to 0 (see the module docs).
    pub rectified: bool,
}

/// The message inside a `message/rfc822` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncapsulatedMessage<'a> {
    /// Its envelope.
    pub envelope: ImapEnvelope<'a>,
    /// Its body structure.
    pub body: BodyStructure<'a>,
}

/// `body-type-mpart`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiPart<'a> {
    /// The parts.
    pub parts: Vec<BodyStructure<'a>>,
    /// The subtype (`MIXED`, `ALTERNATIVE` ...), as sent.
    pub subtype: Cow<'a, [u8]>,
    /// Extension data (BODYSTRUCTURE), if sent.
    pub extension: Option<BodyExtension<'a>>,
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition<'a> {
    /// `inline`, `attachment` ...
    pub kind: Cow<'a, [u8]>,
    /// `filename` and friends.
    pub params: BodyParams<'a>,
}

/// `body-ext-1part` / `body-ext-mpart`: everything after the mandatory fields.
///
/// `raw` always holds the bytes as sent; the fields are filled when the data follows the
/// grammar, and left empty when it does not (then only `raw` tells).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyExtension<'a> {
    /// Multipart: `body-fld-param`. Empty for a single part.
    pub params: BodyParams<'a>,
    /// Single part: `body-fld-md5`.
    pub md5: Option<Cow<'a, [u8]>>,
    /// `body-fld-dsp`.
    pub disposition: Option<Disposition<'a>>,
    /// `body-fld-lang`.
    pub language: Vec<Cow<'a, [u8]>>,
    /// `body-fld-loc`.
    pub location: Option<Cow<'a, [u8]>>,
    /// The extension bytes as sent.
    pub raw: Cow<'a, [u8]>,
    /// True if `raw` did not follow the grammar and the fields above are incomplete.
    pub malformed: bool,
}

fn own_params(p: BodyParams<'_>) -> BodyParams<'static> {
    p.into_iter().map(|(k, v)| (own(k), own(v))).collect()
}

impl BodyExtension<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> BodyExtension<'static> {
        BodyExtension {
            params: own_params(self.params),
            md5: own_opt(self.md5),
            disposition: self.disposition.map(|d| Disposition {
                kind: own(d.kind),
                params: own_params(d.params),
            }),
            language: self.language.into_iter().map(own).collect(),
            location: own_opt(self.location),
            raw: own(self.raw),
            malformed: self.malformed,
        }
    }
}

impl<'a> BodyStructure<'a> {
    /// An owned copy.
    pub fn into_owned(self) -> BodyStructure<'static> {
        match self {
            BodyStructure::Single(p) => {
                let p = *p;
                BodyStructure::Single(Box::new(SinglePart {
                    media_type: own(p.media_type),
                    media_subtype: own(p.media_subtype),
                    params: own_params(p.params),
                    id: own_opt(p.id),
                    description: own_opt(p.description),
                    encoding: own_opt(p.encoding),
                    size: p.size,
                    lines: p.lines,
                    message: p.message.map(|m| {
                        let m = *m;
                        Box::new(EncapsulatedMessage {
                            envelope: m.envelope.into_owned(),
                            body: m.body.into_owned(),
                        })
                    }),
                    extension: p.extension.map(BodyExtension::into_owned),
                    rectified: p.rectified,
                }))
            }
            BodyStructure::Multi(m) => {
                let m = *m;
                BodyStructure::Multi(Box::new(MultiPart {
                    parts: m.parts.into_iter().map(BodyStructure::into_owned).collect(),
                    subtype: own(m.subtype),
                    extension: m.extension.map(BodyExtension::into_owned),
                }))
            }
        }
    }

    /// True for a multipart.
    pub fn is_multipart(&self) -> bool {
        matches!(self, BodyStructure::Multi(_))
    }
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`.
fn params<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, BodyParams<'a>> {
    if let Ok((rest, ())) = nil(input) {
        return Ok((rest, Vec::new()));
    }
    let (mut rest, ()) = byte(input, b'(', "a parameter list or NIL")?;
    let mut list = Vec::new();
    loop {
        rest = spaces(rest);
        if let Some(r) = rest.strip_prefix(b")") {
            return Ok((r, list));
        }
        let (r, key) = string_or_nil(rest, ctx)?;
        let (r, ()) = sp1(r)?;
        let (r, value) = string_or_nil(r, ctx)?;
        list.push((key, value));
        rest = r;
    }
}

/// A number where the grammar wants `number`, tolerating a sign: `-1` becomes 0 and sets
/// `rectified` (Exchange, Dovecot: see the module docs).
fn lenient_number<'a>(input: &'a [u8], rectified: &mut bool) -> PResult<'a, u32> {
    if let Some(digits) = input.strip_prefix(b"-") {
        let (rest, _) = super::primitive::number64(digits)?;
        *rectified = true;
        return Ok((rest, 0));
    }
    super::primitive::number(input)
}

/// `body = "(" (body-type-1part / body-type-mpart) ")"`.
pub(crate) fn body<'a>(input: &'a [u8], ctx: &Ctx, depth: usize) -> PResult<'a, BodyStructure<'a>> {
    let limit = ctx.max_depth.min(MAX_NESTING);
    if input.first() != Some(&b'(') {
        return expected(input, "a body structure");
    }
    if depth >= limit {
        return failure(input, Problem::TooDeep { limit });
    }
    let inner = spaces(&input[1..]);
    let (rest, b) = if inner.first() == Some(&b'(') {
        multipart(inner, ctx, depth + 1)?
    } else {
        // A multipart with no parts starts with its subtype, as a single part starts with its
        // media type: a single part unless only a multipart fits.
        match single_part(inner, ctx, depth + 1) {
            Ok(parsed) => parsed,
            Err(single_err) => {
                let (after_subtype, _) = string(inner, ctx).map_err(|_| single_err.clone())?;
                let ext = spaces(after_subtype);
                // body-ext-mpart starts with body-fld-param: a list or NIL.
                if !(ext.starts_with(b")") || ext.starts_with(b"(") || nil(ext).is_ok()) {
                    return Err(single_err);
                }
                multipart(inner, ctx, depth + 1).map_err(|_| single_err)?
            }
        }
    };
    let (rest, ()) = byte(spaces(rest), b')', "\")\" after a body structure")?;
    Ok((rest, b))
}

/// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`.
fn multipart<'a>(input: &'a [u8], ctx: &Ctx, depth: usize) -> PResult<'a, BodyStructure<'a>> {
    let mut parts = Vec::new();
    let mut rest = input;
    // Lenient: some servers put spaces between the parts.
    while rest.first() == Some(&b'(') {
        let (r, part) = body(rest, ctx, depth)?;
        parts.push(part);
        rest = spaces(r);
    }
    let (rest, subtype) = string_or_nil(rest, ctx)?;
    let (rest, extension) = extension(rest, ctx, true)?;
    Ok((
        rest,
        BodyStructure::Multi(Box::new(MultiPart {
            parts,
            subtype,
            extension,
        })),
    ))
}

/// `body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]`.
fn single_part<'a>(input: &'a [u8], ctx: &Ctx, depth: usize) -> PResult<'a, BodyStructure<'a>> {
    let (rest, media_type) = string_or_nil(input, ctx)?;
    let (rest, ()) = sp1(rest)?;
    let (rest, media_subtype) = string_or_nil(rest, ctx)?;
    let (rest, ()) = sp1(rest)?;
    // body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets
    let (rest, params) = params(rest, ctx)?;
    let (rest, ()) = sp1(rest)?;
    let (rest, id) = nstring(rest, ctx)?;
    let (rest, ()) = sp1(rest)?;
    let (rest, description) = nstring(rest, ctx)?;
    let (rest, ()) = sp1(rest)?;
    let (rest, encoding) = nstring(rest, ctx)?;
    let (rest, ()) = sp1(rest)?;
    let mut rectified = false;
    let (mut rest, size) = lenient_number(rest, &mut rectified)?;

    let is_text = media_type.eq_ignore_ascii_case(b"TEXT");
    let is_message = media_type.eq_ignore_ascii_case(b"MESSAGE")
        && (media_subtype.eq_ignore_ascii_case(b"RFC822")
            || media_subtype.eq_ignore_ascii_case(b"GLOBAL"));
    let mut message = None;
    let mut lines = None;
    let after_spaces = spaces(rest);
    if is_message && after_spaces.len() < rest.len() && after_spaces.first() == Some(&b'(') {
        // body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines
        let (r, env) = envelope(after_spaces, ctx)?;
        let (r, ()) = sp1(r)?;
        let (r, inner) = body(r, ctx, depth)?;
        let (r, ()) = sp1(r)?;
        let (r, n) = lenient_number(r, &mut rectified)?;
        message = Some(Box::new(EncapsulatedMessage {
            envelope: env,
            body: inner,
        }));
        lines = Some(n);
        rest = r;
    } else if is_text {
        let (r, ()) = sp1(rest)?;
        let (r, n) = lenient_number(r, &mut rectified)?;
        lines = Some(n);
        rest = r;
    } else if after_spaces.len() < rest.len() {
        let r = after_spaces;
        // Lenient: a line count on a part that is not text (`"multipart" "appledouble" ...
        // "7BIT" -1`, Exchange, MailKit #823).
        if matches!(r.first(), Some(b'-') | Some(b'0'..=b'9')) {
            let (r, n) = lenient_number(r, &mut rectified)?;
            lines = Some(n);
            rest = r;
        }
    }
    let (rest, extension) = extension(rest, ctx, false)?;
    Ok((
        rest,
        BodyStructure::Single(Box::new(SinglePart {
            media_type,
            media_subtype,
            params,
            id,
            description,
            encoding,
            size,
            lines,
            message,
            extension,
            rectified,
        })),
    ))
}

/// The extension data after the mandatory fields, up to (not including) the closing `)`.
fn extension<'a>(
    input: &'a [u8],
    ctx: &Ctx,
    multipart: bool,
) -> PResult<'a, Option<BodyExtension<'a>>> {
    // Find its extent first, value by value, without interpreting it.
    let mut end = input;
    loop {
        let after = spaces(end);
        if after.first() == Some(&b')') || after.is_empty() {
            break;
        }
        if after.len() == end.len() {
            return expected(end, "a space or \")\"");
        }
        end = skip_value(after, ctx)?.0;
    }
    let raw = &input[..input.len() - end.len()];
    let raw = spaces(raw);
    if raw.is_empty() {
        return Ok((end, None));
    }
    let mut ext = BodyExtension {
        params: Vec::new(),
        md5: None,
        disposition: None,
        language: Vec::new(),
        location: None,
        raw: Cow::Borrowed(raw),
        malformed: false,
    };
    if structured_extension(raw, ctx, multipart, &mut ext).is_err() {
        ext = BodyExtension {
            params: Vec::new(),
            md5: None,
            disposition: None,
            language: Vec::new(),
            location: None,
            raw: Cow::Borrowed(raw),
            malformed: true,
        };
    }
    Ok((end, Some(ext)))
}

/// `body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc
/// *(SP body-extension)]]]` (multipart: `body-fld-param` in place of the md5).
fn structured_extension<'a>(
    raw: &'a [u8],
    ctx: &Ctx,
    multipart: bool,
    ext: &mut BodyExtension<'a>,
) -> PResult<'a, ()> {
    let rest = if multipart {
        let (r, p) = params(raw, ctx)?;
        ext.params = p;
        r
    } else {
        let (r, md5) = nstring(raw, ctx)?;
        ext.md5 = md5;
        r
    };
    let Some(rest) = rest.strip_prefix(b" ") else {
        return done(rest);
    };
    // body-fld-dsp
    let rest = if let Ok((r, ())) = nil(rest) {
        r
    } else {
        let (r, ()) = byte(rest, b'(', "a disposition")?;
        let (r, kind) = string(r, ctx)?;
        let (r, ()) = sp1(r)?;
        let (r, p) = params(r, ctx)?;
        let (r, ()) = byte(r, b')', "\")\"")?;
        ext.disposition = Some(Disposition { kind, params: p });
        r
    };
    let Some(rest) = rest.strip_prefix(b" ") else {
        return done(rest);
    };
    // body-fld-lang = nstring / "(" string *(SP string) ")"
    let rest = if rest.first() == Some(&b'(') {
        let (r, l) = paren_list(rest, |i| string(i, ctx))?;
        ext.language = l;
        r
    } else {
        let (r, l) = nstring(rest, ctx)?;
        ext.language.extend(l);
        r
    };
    let Some(rest) = rest.strip_prefix(b" ") else {
        return done(rest);
    };
    let (rest, location) = nstring(rest, ctx)?;
    ext.location = location;
    // *(SP body-extension): already known to be well-formed values.
    Ok((rest, ()))
}

fn done(rest: &[u8]) -> PResult<'_, ()> {
    if rest.is_empty() {
        Ok((rest, ()))
    } else {
        expected(rest, "a space")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::imap::primitive::TEST_CTX as CTX;

    fn parse(s: &str) -> BodyStructure<'_> {
        let (rest, b) = body(s.as_bytes(), &CTX, 0).unwrap();
        assert!(rest.is_empty(), "left: {:?}", String::from_utf8_lossy(rest));
        b
    }

    fn single<'b, 'a>(b: &'b BodyStructure<'a>) -> &'b SinglePart<'a> {
        match b {
            BodyStructure::Single(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc3501_text_plain() {
        let b = parse(r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)"#);
        let p = single(&b);
        assert_eq!(p.size, 3028);
        assert_eq!(p.lines, Some(92));
        assert_eq!(p.params[0].1, Cow::Borrowed(&b"US-ASCII"[..]));
        assert!(p.extension.is_none());
    }

    #[test]
    fn multipart_with_extension_data() {
        let b = parse(
            r#"(("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "base64" 5374 125 NIL NIL NIL)("IMAGE" "PNG" ("NAME" "IMAGE002.PNG") "<id>" "image002.png" "base64" 14824 NIL ("INLINE" ("FILENAME" "image002.png" "size" "10831")) NIL) "RELATIVE" ("BOUNDARY" "--x") NIL NIL)"#,
        );
        let BodyStructure::Multi(m) = &b else {
            panic!()
        };
        assert_eq!(m.parts.len(), 2);
        assert_eq!(&*m.subtype, b"RELATIVE");
        let ext = m.extension.as_ref().unwrap();
        assert_eq!(ext.params[0].0, Cow::Borrowed(&b"BOUNDARY"[..]));
        let img = single(&m.parts[1]);
        let d = img
            .extension
            .as_ref()
            .unwrap()
            .disposition
            .as_ref()
            .unwrap();
        assert_eq!(&*d.kind, b"INLINE");
        assert_eq!(d.params.len(), 2);
    }

    #[test]
    fn icloud_nil_encoding() {
        // iCloud (imap-proto #205, swift-nio-imap #685).
        let b =
            parse(r#"("text" "plain" ("CHARSET" "UTF-8") NIL NIL NIL 1694 51 NIL NIL NIL NIL)"#);
        let p = single(&b);
        assert_eq!(p.encoding, None);
        assert_eq!(p.lines, Some(51));
    }

    #[test]
    fn mailru_nil_boundary_value() {
        // Mail.ru: `("boundary" NIL)`.
        let b =
            parse(r#"(("text" "plain" NIL NIL NIL "7bit" 1 1) "mixed" ("boundary" NIL) NIL NIL)"#);
        let BodyStructure::Multi(m) = &b else {
            panic!()
        };
        assert_eq!(
            m.extension.as_ref().unwrap().params[0].1,
            Cow::Borrowed(&b""[..])
        );
    }

    #[test]
    fn exchange_negative_line_count_is_rectified() {
        // Exchange (MailKit #823): a multipart described as a single part of `-1` octets.
        let b = parse(
            r#"((("text" "plain" ("charset" "US-ASCII") NIL NIL "7bit" 6 3 NIL NIL NIL NIL) "alternative" ("boundary" "B_1") NIL NIL)("multipart" "appledouble" ("boundary" "B_2") NIL NIL "7BIT" -1 NIL NIL NIL NIL) "mixed" ("boundary" "B_3") NIL NIL)"#,
        );
        let BodyStructure::Multi(m) = &b else {
            panic!()
        };
        let odd = single(&m.parts[1]);
        assert_eq!(odd.size, 0);
        assert!(odd.rectified);
        assert!(odd.extension.is_some());
    }

    #[test]
    fn dovecot_message_rfc822_with_negative_lines() {
        // go-imap #534 (Dovecot behind Exchange): -1 inside an encapsulated message.
        let b = parse(
            r#"(("text" "plain" NIL NIL NIL "7bit" 155 1)("message" "feedback-report" NIL NIL NIL "7bit" 141)("message" "rfc822" NIL NIL NIL "8bit" 0 ("Thu, 8 Jun 2023 11:37:19 +0200" "s" (("a" NIL "b" "c")) NIL NIL NIL NIL NIL NIL "<id>") ("multipart" "parallel" ("boundary" "_90b_") NIL NIL "7BIT" -1) 0) "report")"#,
        );
        let BodyStructure::Multi(m) = &b else {
            panic!()
        };
        let msg = single(&m.parts[2]);
        let inner = &msg.message.as_ref().unwrap().body;
        assert!(single(inner).rectified);
        assert_eq!(msg.lines, Some(0));
    }

    #[test]
    fn exchange_bare_string_disposition_is_kept_raw() {
        // Exchange (MailKit #919): `NIL "inline" NIL NIL` where a list or NIL is due.
        let b = parse(
            r#"("text" "plain" ("charset" "ISO-8859-1") NIL NIL "QUOTED-PRINTABLE" 850 31 NIL "inline" NIL NIL)"#,
        );
        let ext = single(&b).extension.as_ref().unwrap();
        assert!(ext.malformed);
        assert_eq!(&*ext.raw, b"NIL \"inline\" NIL NIL");
    }

    #[test]
    fn yahoo_extension_data_in_body() {
        // Yahoo sends extension data in the non-extensible BODY item: same parser.
        let b = parse(r#"("text" "html" ("charset" "utf-8") NIL NIL "7bit" 10 1 NIL NIL NIL NIL)"#);
        assert!(single(&b).extension.is_some());
    }

    #[test]
    fn nil_where_a_string_is_due() {
        // NIL media type and subtype, NIL parameter name (seen from Cyrus on broken MIME, and
        // from pymap): read as empty strings.
        let b = parse(r#"(NIL NIL (NIL "x") NIL NIL "7bit" 12 1)"#);
        let p = single(&b);
        assert_eq!((&*p.media_type, &*p.media_subtype), (&b""[..], &b""[..]));
        assert_eq!(p.params[0].0, Cow::Borrowed(&b""[..]));
        let b = parse(r#"("text" NIL ("charset" "us-ascii") NIL NIL "7bit" 12 1)"#);
        assert_eq!(single(&b).lines, Some(1));
    }

    #[test]
    fn nil_media_type_inside_message_rfc822() {
        // An attached message whose own structure the server could not read.
        let b = parse(
            r#"("message" "rfc822" NIL NIL NIL "7bit" 100 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (NIL NIL NIL NIL NIL NIL 0 0) 5)"#,
        );
        let inner = &single(&b).message.as_ref().unwrap().body;
        assert_eq!(single(inner).media_type, Cow::Borrowed(&b""[..]));
        assert_eq!(single(&b).lines, Some(5));
    }

    #[test]
    fn empty_multipart() {
        // A multipart with no parts (an empty `multipart/mixed` message): Dovecot and Cyrus
        // send the subtype alone, with or without extension data.
        for wire in [
            r#"("mixed")"#,
            r#"("mixed" ("boundary" "b") NIL NIL)"#,
            r#"( "alternative" NIL)"#,
        ] {
            let b = parse(wire);
            let BodyStructure::Multi(m) = &b else {
                panic!("{wire}: {b:?}")
            };
            assert!(m.parts.is_empty(), "{wire}");
        }
    }

    #[test]
    fn doubled_spaces_between_fields() {
        let b = parse(r#"("text"  "plain"  ("charset"  "utf-8")  NIL NIL  "7bit"  12  1 )"#);
        let p = single(&b);
        assert_eq!((p.size, p.lines), (12, Some(1)));
        assert_eq!(p.params[0].1, Cow::Borrowed(&b"utf-8"[..]));
        let b = parse(r#"(("text" "plain" NIL NIL NIL "7bit" 1 1)  "mixed"  ("boundary" "x"))"#);
        assert!(b.is_multipart());
    }

    #[test]
    fn deep_nesting_is_refused_before_recursing() {
        let deep = vec![b'('; 100_000];
        match body(&deep, &CTX, 0) {
            Err(nom::Err::Failure(e)) => assert_eq!(e.problem, Problem::TooDeep { limit: 16 }),
            other => panic!("{other:?}"),
        }
        // Even with no configured limit, the hard ceiling holds.
        let unlimited = Ctx {
            max_depth: usize::MAX,
            max_literal: 10,
        };
        match body(&deep, &unlimited, 0) {
            Err(nom::Err::Failure(e)) => {
                assert_eq!(e.problem, Problem::TooDeep { limit: MAX_NESTING });
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "(",
            "(\"text\" \"plain\")",
            "(\"mixed\" \"x\")",
            "((\"text\" \"plain\" NIL NIL NIL \"7bit\" x 1) \"mixed\")",
            "()",
        ] {
            assert!(body(bad.as_bytes(), &CTX, 0).is_err(), "{bad}");
        }
    }
}
