//! The rule "poisoned after a desync", once for the three sessions.
//!
//! When the client and the server no longer agree on where the conversation is (a reply
//! nobody asked for, a wrong tag, a success before a SASL exchange was complete, a reply left
//! half read, a connection that failed mid-command), the next bytes read would be taken for the
//! answer to the wrong command (threat model #41, #52). So the session is poisoned: it records
//! why, sends nothing more, and every later command fails at its start with that reason. The
//! same holds once the server ended the session (IMAP `BYE`, SMTP `421`). Each session holds
//! one [`Poison`], sets it on every desync path and checks it before every command.

use mailcat_transport::Endpoint;

use crate::{Error, Reply};

/// Why a session takes no more commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Poisoned {
    /// The server ended the session (IMAP `BYE`, SMTP `421`): its reply.
    Closed(Reply),
    /// The conversation is out of step, or may be: what went wrong.
    OutOfStep(String),
}

/// A session's poison: unset while the conversation is in step.
#[derive(Debug, Default)]
pub(crate) struct Poison(Option<Poisoned>);

impl Poison {
    /// Poisons the session: the conversation is out of step (`why`). The first reason is
    /// kept: what came after it is a consequence.
    pub(crate) fn out_of_step(&mut self, why: impl Into<String>) {
        self.0
            .get_or_insert_with(|| Poisoned::OutOfStep(why.into()));
    }

    /// Poisons the session and gives the error for the command that found the desync: an
    /// [`Error::Protocol`] with `detail`.
    pub(crate) fn desync(&mut self, endpoint: &Endpoint, detail: impl Into<String>) -> Error {
        let detail = detail.into();
        self.out_of_step(detail.clone());
        Error::Protocol {
            host: endpoint.host.clone(),
            protocol: endpoint.protocol,
            detail,
        }
    }

    /// The server ended the session with `words`. Its goodbye is the news even after a desync,
    /// so it replaces an earlier reason.
    pub(crate) fn closed(&mut self, words: impl Into<Reply>) {
        self.0 = Some(Poisoned::Closed(words.into()));
    }

    /// True once the session takes no more commands.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.0.is_some()
    }

    /// The server's goodbye, if it ended the session.
    pub(crate) fn closed_by_server(&self) -> Option<&Reply> {
        match &self.0 {
            Some(Poisoned::Closed(words)) => Some(words),
            _ => None,
        }
    }

    /// Checked at the start of every command: [`Error::Closed`] with the server's words once
    /// it ended the session, [`Error::Protocol`] with the reason once the session is out of
    /// step; nothing is sent then.
    pub(crate) fn check(&self, endpoint: &Endpoint) -> Result<(), Error> {
        match &self.0 {
            None => Ok(()),
            Some(Poisoned::Closed(words)) => Err(Error::Closed {
                host: endpoint.host.clone(),
                reply: words.clone(),
            }),
            Some(Poisoned::OutOfStep(why)) => Err(Error::Protocol {
                host: endpoint.host.clone(),
                protocol: endpoint.protocol,
                detail: format!(
                    "the session cannot be used any more after an earlier error ({why}); \
                     nothing more is sent on this connection"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailcat_transport::{Protocol, Security};

    fn endpoint() -> Endpoint {
        Endpoint::new(Protocol::Pop3, "mail.test", Security::ImplicitTls)
    }

    #[test]
    fn the_first_desync_is_the_reason_and_every_later_command_fails_with_it() {
        let mut poison = Poison::default();
        assert!(poison.check(&endpoint()).is_ok());
        let first = poison.desync(&endpoint(), "expected a status line");
        assert!(matches!(first, Error::Protocol { .. }), "{first:?}");
        poison.out_of_step("a consequence");
        let later = poison.check(&endpoint()).unwrap_err();
        assert!(
            matches!(&later, Error::Protocol { detail, .. } if detail.contains("expected a status line") && !detail.contains("consequence")),
            "{later:?}"
        );
    }

    #[test]
    fn the_servers_goodbye_is_the_news_even_after_a_desync() {
        let mut poison = Poison::default();
        poison.out_of_step("a reply nobody asked for");
        poison.closed("Shutting down");
        assert_eq!(
            poison
                .closed_by_server()
                .map(ToString::to_string)
                .as_deref(),
            Some("Shutting down")
        );
        let later = poison.check(&endpoint()).unwrap_err();
        assert!(
            matches!(&later, Error::Closed { reply, .. } if reply.to_string() == "Shutting down"),
            "{later:?}"
        );
    }
}
