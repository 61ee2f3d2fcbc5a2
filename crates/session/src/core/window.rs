//! The in-order pipelining window, one for POP3 and SMTP (RFC 2449 §6.6, RFC 2920).
//!
//! Both protocols answer commands strictly in order, with no tag to tell replies apart. So
//! what a reply means is known only from the command it answers: the front of a queue of the
//! commands in flight. The window bounds that queue (a server that announced pipelining still
//! has finite buffers, and a client that writes without reading can deadlock with one that
//! does the same), and it enforces lock-step once the queue is empty: a reply that arrives
//! when nothing is in flight was not asked for (threat model #52). IMAP does not use it: tagged
//! replies complete out of order there.

use std::collections::VecDeque;

/// Commands in flight, oldest first, each with what its reply needs to be understood (`T`).
#[derive(Debug)]
pub(crate) struct InOrder<T> {
    in_flight: VecDeque<T>,
    limit: usize,
}

/// The server sent more than the replies asked for: `extra` bytes were buffered after the last
/// reply due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unasked {
    pub(crate) extra: usize,
}

impl<T> InOrder<T> {
    /// A window of at most `limit` commands in flight (1: lock-step, no pipelining).
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            in_flight: VecDeque::new(),
            limit: limit.max(1),
        }
    }

    /// Sets how many commands may be in flight (after the server announced pipelining, or
    /// after it no longer does). Commands already in flight stay.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// How many more commands may be sent now.
    pub(crate) fn room(&self) -> usize {
        self.limit.saturating_sub(self.in_flight.len())
    }

    /// How many replies are due.
    pub(crate) fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// True when no reply is due.
    pub(crate) fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Records a command sent. The caller checks [`InOrder::room`] first; the window grows
    /// past its limit rather than lose track of a command already written.
    pub(crate) fn sent(&mut self, command: T) {
        self.in_flight.push_back(command);
    }

    /// The command the next reply answers.
    pub(crate) fn due(&self) -> Option<&T> {
        self.in_flight.front()
    }

    /// [`InOrder::due`], to update as its reply comes in parts.
    pub(crate) fn due_mut(&mut self) -> Option<&mut T> {
        self.in_flight.front_mut()
    }

    /// The reply to the oldest command is complete, with `unread` bytes still buffered after
    /// it. Returns that command, or [`Unasked`] when it was the last one due and bytes follow
    /// it anyway (nothing may: lock-step).
    pub(crate) fn answered(&mut self, unread: usize) -> Result<Option<T>, Unasked> {
        let command = self.in_flight.pop_front();
        if self.in_flight.is_empty() && unread > 0 {
            return Err(Unasked { extra: unread });
        }
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_answer_the_commands_in_the_order_they_were_sent() {
        let mut window = InOrder::new(3);
        window.sent("RETR 1");
        window.sent("RETR 2");
        assert_eq!(window.room(), 1);
        assert_eq!(window.due(), Some(&"RETR 1"));
        // Bytes after the first reply belong to the second: not unasked.
        assert_eq!(window.answered(40), Ok(Some("RETR 1")));
        assert_eq!(window.due(), Some(&"RETR 2"));
        assert_eq!(window.answered(0), Ok(Some("RETR 2")));
        assert!(window.is_empty());
        assert_eq!(window.room(), 3);
    }

    #[test]
    fn bytes_after_the_last_reply_due_were_not_asked_for() {
        let mut window = InOrder::new(1);
        window.sent("STAT");
        assert_eq!(window.room(), 0);
        assert_eq!(window.answered(12), Err(Unasked { extra: 12 }));
        assert!(window.is_empty(), "the command was answered all the same");
    }

    #[test]
    fn a_limit_of_zero_is_lock_step() {
        let mut window = InOrder::<()>::new(0);
        assert_eq!(window.room(), 1);
        window.set_limit(8);
        assert_eq!(window.room(), 8);
        window.sent(());
        window.set_limit(1);
        assert_eq!(window.room(), 0);
        assert_eq!(window.len(), 1);
    }
}
