//! The ENVELOPE fetch item (RFC 3501 §7.4.2, §9 `envelope`, `address`).

use std::borrow::Cow;

use crate::core::parse::PResult;

use super::primitive::{byte, nil, nstring, own_opt, sp, spaces, Ctx};

/// An address: `"(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`.
///
/// RFC 822 group syntax is flattened as sent: a start-of-group marker has `host == None` and
/// the group name in `mailbox`; the end-of-group marker has both `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address<'a> {
    /// The display name (often RFC 2047-encoded).
    pub name: Option<Cow<'a, [u8]>>,
    /// The source route (obsolete).
    pub adl: Option<Cow<'a, [u8]>>,
    /// The local part, or a group name.
    pub mailbox: Option<Cow<'a, [u8]>>,
    /// The domain.
    pub host: Option<Cow<'a, [u8]>>,
}

impl Address<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> Address<'static> {
        Address {
            name: own_opt(self.name),
            adl: own_opt(self.adl),
            mailbox: own_opt(self.mailbox),
            host: own_opt(self.host),
        }
    }
}

/// The parsed envelope. NIL address lists are empty vectors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImapEnvelope<'a> {
    /// `Date:`.
    pub date: Option<Cow<'a, [u8]>>,
    /// `Subject:`.
    pub subject: Option<Cow<'a, [u8]>>,
    /// `From:`.
    pub from: Vec<Address<'a>>,
    /// `Sender:`.
    pub sender: Vec<Address<'a>>,
    /// `Reply-To:`.
    pub reply_to: Vec<Address<'a>>,
    /// `To:`.
    pub to: Vec<Address<'a>>,
    /// `Cc:`.
    pub cc: Vec<Address<'a>>,
    /// `Bcc:`.
    pub bcc: Vec<Address<'a>>,
    /// `In-Reply-To:`.
    pub in_reply_to: Option<Cow<'a, [u8]>>,
    /// `Message-ID:`.
    pub message_id: Option<Cow<'a, [u8]>>,
}

impl ImapEnvelope<'_> {
    /// An owned copy.
    pub fn into_owned(self) -> ImapEnvelope<'static> {
        let own_list = |l: Vec<Address<'_>>| l.into_iter().map(Address::into_owned).collect();
        ImapEnvelope {
            date: own_opt(self.date),
            subject: own_opt(self.subject),
            from: own_list(self.from),
            sender: own_list(self.sender),
            reply_to: own_list(self.reply_to),
            to: own_list(self.to),
            cc: own_list(self.cc),
            bcc: own_list(self.bcc),
            in_reply_to: own_opt(self.in_reply_to),
            message_id: own_opt(self.message_id),
        }
    }
}

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`.
fn address<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Address<'a>> {
    let (rest, ()) = byte(input, b'(', "an address")?;
    let (rest, name) = nstring(rest, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, adl) = nstring(rest, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, mailbox) = nstring(rest, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, host) = nstring(rest, ctx)?;
    let (rest, ()) = byte(rest, b')', "\")\" after an address")?;
    Ok((
        rest,
        Address {
            name,
            adl,
            mailbox,
            host,
        },
    ))
}

/// `env-from = "(" 1*address ")" / nil` (and the other address lists). Some servers separate
/// addresses with a space (Exchange); tolerated.
fn address_list<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, Vec<Address<'a>>> {
    if let Ok((rest, ())) = nil(input) {
        return Ok((rest, Vec::new()));
    }
    let (mut rest, ()) = byte(input, b'(', "an address list or NIL")?;
    let mut list = Vec::new();
    loop {
        rest = spaces(rest);
        if let Some(r) = rest.strip_prefix(b")") {
            return Ok((r, list));
        }
        let (r, a) = address(rest, ctx)?;
        list.push(a);
        rest = r;
    }
}

/// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP env-to
/// SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`.
pub(crate) fn envelope<'a>(input: &'a [u8], ctx: &Ctx) -> PResult<'a, ImapEnvelope<'a>> {
    let (rest, ()) = byte(input, b'(', "an envelope")?;
    let (rest, date) = nstring(rest, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, subject) = nstring(rest, ctx)?;
    let mut lists: [Vec<Address<'a>>; 6] = Default::default();
    let mut rest = rest;
    for slot in lists.iter_mut() {
        let (r, ()) = sp(rest)?;
        let (r, l) = address_list(r, ctx)?;
        *slot = l;
        rest = r;
    }
    let (rest, ()) = sp(rest)?;
    let (rest, in_reply_to) = nstring(rest, ctx)?;
    let (rest, ()) = sp(rest)?;
    let (rest, message_id) = nstring(rest, ctx)?;
    let (rest, ()) = byte(spaces(rest), b')', "\")\" after an envelope")?;
    let [from, sender, reply_to, to, cc, bcc] = lists;
    Ok((
        rest,
        ImapEnvelope {
            date,
            subject,
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to,
            message_id,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::imap::primitive::TEST_CTX as CTX;

    #[test]
    fn rfc3501_example_envelope() {
        let input = br#"("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "<B27397-0100000@cac.washington.edu>")"#;
        let (rest, e) = envelope(input, &CTX).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            e.subject.as_deref(),
            Some(&b"IMAP4rev1 WG mtg summary and minutes"[..])
        );
        assert_eq!(e.cc.len(), 2);
        assert_eq!(e.cc[1].host.as_deref(), Some(&b"MIT.EDU"[..]));
        assert!(e.bcc.is_empty());
        assert_eq!(
            e.message_id.as_deref(),
            Some(&b"<B27397-0100000@cac.washington.edu>"[..])
        );
    }

    #[test]
    fn literal_subject_and_nil_everything() {
        let input = b"(NIL {5}\r\nhello NIL NIL NIL NIL NIL NIL NIL NIL)";
        let (_, e) = envelope(input, &CTX).unwrap();
        assert_eq!(e.subject.as_deref(), Some(&b"hello"[..]));
        assert!(e.from.is_empty() && e.date.is_none());
    }

    #[test]
    fn truncated_envelope_is_an_error() {
        assert!(envelope(b"(NIL NIL NIL)", &CTX).is_err());
    }
}
