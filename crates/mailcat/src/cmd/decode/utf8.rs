//! After `* ENABLED UTF8=ACCEPT` (RFC 6855 §3) a server's strings are UTF-8: mailbox names,
//! envelope fields, ID parameters. Before it, 8-bit bytes in them are tolerated (servers such
//! as 163.com send raw UTF-8 unasked); after it, bytes that are not UTF-8 are refused at the
//! offset of the first bad byte. Message bodies are never checked: they may carry any octet.

use mailcat_codec::imap::{Address, Capability, Data, Response};
use mailcat_codec::DecodeError;

/// Whether an ENABLED response turns UTF-8 mode on.
pub(super) fn enables(capabilities: &[Capability<'_>]) -> bool {
    capabilities
        .iter()
        .any(|c| c.is("UTF8=ACCEPT") || c.is("UTF8=ONLY"))
}

/// Refuses a string of `response` that is not UTF-8. `frame` is the buffer the response was
/// decoded from: the offset is the bad byte's there when the string points into it, else 0.
pub(super) fn check(response: &Response<'_>, frame: &[u8]) -> Result<(), DecodeError> {
    let Response::Data(data) = response else {
        return Ok(());
    };
    let mut strings: Vec<&[u8]> = Vec::new();
    match data {
        Data::List(list) | Data::Lsub(list) => strings.push(&list.mailbox.raw),
        Data::Status(status) => strings.push(&status.mailbox.raw),
        Data::Id(Some(params)) => {
            for (key, value) in params {
                strings.push(key);
                strings.extend(value.as_deref());
            }
        }
        Data::Fetch(fetch) => {
            if let Some(envelope) = fetch.envelope() {
                let fields = [
                    &envelope.date,
                    &envelope.subject,
                    &envelope.in_reply_to,
                    &envelope.message_id,
                ];
                strings.extend(fields.into_iter().filter_map(|f| f.as_deref()));
                let lists = [
                    &envelope.from,
                    &envelope.sender,
                    &envelope.reply_to,
                    &envelope.to,
                    &envelope.cc,
                    &envelope.bcc,
                ];
                for address in lists.into_iter().flatten() {
                    strings.extend(address_strings(address));
                }
            }
        }
        _ => {}
    }
    for string in strings {
        if let Err(error) = std::str::from_utf8(string) {
            return Err(DecodeError::Invalid {
                offset: offset_in(string, frame).map_or(0, |at| at + error.valid_up_to()),
                expected: "UTF-8 in a string once UTF8=ACCEPT is enabled (RFC 6855)",
            });
        }
    }
    Ok(())
}

fn address_strings<'a>(address: &'a Address<'_>) -> impl Iterator<Item = &'a [u8]> {
    [&address.name, &address.adl, &address.mailbox, &address.host]
        .into_iter()
        .filter_map(|part| part.as_deref())
}

/// Where `part` starts in `whole`, if it is a slice of it.
fn offset_in(part: &[u8], whole: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}
