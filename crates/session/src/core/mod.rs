//! The protocol cores: the IMAP, POP3 and SMTP conversations as state machines with no I/O.
//!
//! A core holds everything a conversation decides: what to send, what each reply means, which
//! replies are still due, whether the session is still in step. It never touches a socket, a
//! runtime or a clock, so each rule is tested with byte transcripts and nothing else (see the
//! `tests` modules), and the same core can be driven by any I/O layer. The one async layer that
//! drives them is [`crate::driver::Driver`].
//!
//! The contract between a core and its driver ([`Core`]):
//! 1. the caller asks the core for a command; the core checks that the session may take it
//!    (not poisoned, nothing else in the way), encodes it and queues the bytes;
//! 2. the driver writes what [`Core::poll_transmit`] gives, in order;
//! 3. the driver hands every byte buffered so far to [`Core::handle_input`], which answers one
//!    event and how many bytes it used, or that it needs more; the event's byte ranges point
//!    into the bytes it used, which the driver hands back to the caller with the event;
//! 4. when the connection fails or the server closes it, the core is told
//!    ([`Core::handle_failure`], [`Core::handle_end`]) and poisons itself.
//!
//! Dropping a driver call between two of these steps leaves the core knowing exactly which
//! replies are still due: it is in step, or poisoned with the reason.

pub(crate) mod imap;
pub(crate) mod opening;
mod poison;
pub(crate) mod pop3;
pub(crate) mod smtp;
mod window;

pub(crate) use poison::Poison;
#[allow(unused_imports)]
pub(crate) use window::InOrder;

use mailcat_transport::trace::Redaction;
use mailcat_transport::{Endpoint, Step};

use crate::Error;

/// Bytes a core wants written, and what the trace may show of them.
#[derive(Debug)]
pub(crate) struct Transmit {
    pub(crate) bytes: Vec<u8>,
    pub(crate) redaction: Redaction,
}

/// Commands waiting to be written. Consecutive commands that the trace may show are written
/// together (one write for a pipelined window); a secret always goes alone, so the trace can
/// redact exactly it.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queued: std::collections::VecDeque<Transmit>,
    /// Bytes were handed to the driver and it has not said they were written: if the call
    /// that writes them is dropped, the server may have part of a command.
    writing: bool,
}

impl Outbox {
    /// Queues `bytes`.
    pub(crate) fn push(&mut self, bytes: Vec<u8>, redaction: Redaction) {
        if let (Some(last), Redaction::Normal) = (self.queued.back_mut(), redaction) {
            if last.redaction == Redaction::Normal {
                last.bytes.extend_from_slice(&bytes);
                return;
            }
        }
        self.queued.push_back(Transmit { bytes, redaction });
    }

    /// The next bytes to write. Until [`Outbox::written`] is called, they count as being
    /// written ([`Outbox::cut_off`]). A poisoned session writes nothing more: whatever is still
    /// queued (a pipelined command, a literal, an IDLE's DONE) is dropped, here, for every core
    /// (threat model #45, #52).
    pub(crate) fn pop(&mut self, poison: &Poison) -> Option<Transmit> {
        if poison.is_poisoned() {
            self.queued.clear();
            return None;
        }
        let next = self.queued.pop_front();
        self.writing |= next.is_some();
        next
    }

    /// The driver wrote everything [`Outbox::pop`] gave.
    pub(crate) fn written(&mut self) {
        self.writing = false;
    }

    /// True when a write was started and never finished (its call was dropped, or failed):
    /// the server may hold part of a command, so the conversation is out of step.
    pub(crate) fn cut_off(&self) -> bool {
        self.writing
    }
}

/// What a core made of the bytes buffered so far.
#[derive(Debug)]
pub(crate) enum Progress<E> {
    /// One event, having used the first `consumed` bytes of the input. Byte ranges inside the
    /// event are offsets into those bytes.
    Event { consumed: usize, event: E },
    /// The item in progress needs more bytes.
    NeedInput,
}

/// A sans-I/O protocol core, as the driver sees it.
pub(crate) trait Core {
    /// What one step of a reply is: a status, a listing line, a body chunk, a completion.
    type Event;

    /// The next bytes to write, if a command is queued.
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// The driver wrote everything [`Core::poll_transmit`] gave so far ([`Outbox::written`]).
    fn transmitted(&mut self) {}

    /// Decodes the front of `input` (every byte buffered and not yet used). An error poisons
    /// the core: the conversation is out of step.
    fn handle_input(&mut self, input: &[u8]) -> Result<Progress<Self::Event>, Error>;

    /// The server closed the connection with `unread` bytes buffered (maybe none): the error
    /// for the reply that was due, and the core is poisoned.
    fn handle_end(&mut self, unread: &[u8]) -> Error;

    /// The connection failed (I/O, a timeout) while `doing`: the core is poisoned, and the
    /// error is returned as the session reports it.
    fn handle_failure(&mut self, error: mailcat_transport::Error, doing: &str) -> Error;

    /// The transport step a read is for, which picks its silence limit.
    fn read_step(&self) -> Step {
        Step::Response
    }
}

/// The rule "nothing unsolicited before a command", for the lock-step protocols (POP3, SMTP)
/// and for any command that must be alone in flight: once every reply asked for was read,
/// the server has nothing to say, so bytes already buffered were sent unasked. They would be
/// read as the answer to the next command: a desync or an injection (threat model #52). The
/// session is poisoned and the error shows the first line of what came.
pub(crate) fn nothing_unsolicited(
    poison: &mut Poison,
    endpoint: &Endpoint,
    buffered: &[u8],
) -> Result<(), Error> {
    if buffered.is_empty() {
        return Ok(());
    }
    Err(poison.desync(
        endpoint,
        format!(
            "nothing before the next command, but the server sent {:?}",
            first_line(buffered)
        ),
    ))
}

/// The first line of `bytes` as people read it: lossy UTF-8 without CRLF, at most 200 bytes.
pub(crate) fn first_line(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailcat_transport::{Protocol, Security};

    fn endpoint() -> Endpoint {
        Endpoint::new(Protocol::Pop3, "mail.example.com", Security::ImplicitTls)
    }

    #[test]
    fn bytes_waiting_before_a_command_poison_the_session_and_are_shown() {
        let mut poison = Poison::default();
        assert!(nothing_unsolicited(&mut poison, &endpoint(), b"").is_ok());
        assert!(!poison.is_poisoned());
        let err = nothing_unsolicited(&mut poison, &endpoint(), b"+OK planted\r\n+OK more\r\n")
            .expect_err("unsolicited bytes");
        assert!(err.to_string().contains("\"+OK planted\""), "{err}");
        assert!(poison.is_poisoned());
        assert!(poison.check(&endpoint()).is_err());
    }

    #[test]
    fn a_poisoned_session_writes_nothing_more_and_its_queue_is_dropped() {
        let mut outbox = Outbox::default();
        outbox.push(b"RETR 1\r\n".to_vec(), Redaction::Normal);
        outbox.push(b"PASS x\r\n".to_vec(), Redaction::Secret);
        let mut poison = Poison::default();
        poison.out_of_step("a reply nobody asked for");
        assert!(outbox.pop(&poison).is_none());
        assert!(outbox.queued.is_empty(), "dropped, not kept for later");
        assert!(!outbox.cut_off(), "nothing was handed out");
    }

    #[test]
    fn commands_go_out_together_but_a_secret_goes_alone() {
        let mut outbox = Outbox::default();
        outbox.push(b"RETR 1\r\n".to_vec(), Redaction::Normal);
        outbox.push(b"RETR 2\r\n".to_vec(), Redaction::Normal);
        outbox.push(b"PASS x\r\n".to_vec(), Redaction::Secret);
        outbox.push(b"STAT\r\n".to_vec(), Redaction::Normal);
        let first = outbox.pop(&Poison::default()).expect("queued");
        assert_eq!(first.bytes, b"RETR 1\r\nRETR 2\r\n");
        let secret = outbox.pop(&Poison::default()).expect("queued");
        assert_eq!(
            (secret.bytes.as_slice(), secret.redaction),
            (&b"PASS x\r\n"[..], Redaction::Secret)
        );
        assert_eq!(
            outbox.pop(&Poison::default()).expect("queued").bytes,
            b"STAT\r\n"
        );
        assert!(outbox.queued.is_empty());
        assert!(outbox.cut_off(), "popped, never said written");
        outbox.written();
        assert!(!outbox.cut_off());
    }

    #[test]
    fn the_first_line_is_cut_at_200_bytes() {
        let long = vec![b'a'; 500];
        assert_eq!(first_line(&long).len(), 200);
        assert_eq!(first_line(b"one\r\ntwo"), "one");
    }
}
