//! The one async layer under the sessions: it owns the transport's connection and moves bytes
//! between it and a protocol core ([`crate::core`]).
//!
//! The driver decides nothing about the protocol. It writes what the core queued, reads when
//! the core needs input, hands the core every byte buffered so far, and gives the caller each
//! event with the bytes it was decoded from (zero-copy: a body chunk is a slice of them, routed
//! to the caller's sink by the session). The transport applies the timeouts and the throughput
//! floor to every read and write; a failure is reported to the core, which poisons itself.
//!
//! # Cancellation
//!
//! Every method is cancel-safe in the transport's sense: bytes read are never lost, since they
//! stay in the connection's buffer until an event consumes them. What a dropped call means for
//! the conversation is the core's business: it knows which replies are still due.

use bytes::Bytes;
use mailcat_transport::Connection;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::core::{Core, Progress};
use crate::Error;

/// A connection and the loop that drives a core over it.
#[derive(Debug)]
pub(crate) struct Driver<S> {
    connection: Connection<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    pub(crate) fn new(connection: Connection<S>) -> Self {
        Self { connection }
    }

    /// The connection (endpoint, TLS state, bytes written).
    pub(crate) fn connection(&self) -> &Connection<S> {
        &self.connection
    }

    /// Writes everything `core` has queued, in order. A write that fails poisons the core.
    pub(crate) async fn flush<C: Core>(&mut self, core: &mut C) -> Result<(), Error> {
        while let Some(transmit) = core.poll_transmit() {
            if let Err(e) = self
                .connection
                .send(&transmit.bytes, transmit.redaction)
                .await
            {
                return Err(core.handle_failure(e, "a command could not be sent"));
            }
        }
        core.transmitted();
        Ok(())
    }

    /// Writes what `core` queued, then reads until it has the next event. Returns the event
    /// and the bytes it was decoded from (its byte ranges are offsets into them).
    pub(crate) async fn next<C: Core>(&mut self, core: &mut C) -> Result<(C::Event, Bytes), Error> {
        self.flush(core).await?;
        loop {
            match core.handle_input(self.connection.input())? {
                Progress::Event { consumed, event } => {
                    return Ok((event, self.connection.consume(consumed)));
                }
                Progress::NeedInput => {}
            }
            if self.connection.at_end() {
                return Err(core.handle_end(self.connection.input()));
            }
            if let Err(e) = self.connection.fill(core.read_step()).await {
                return Err(
                    core.handle_failure(e, "the connection failed in the middle of a reply")
                );
            }
        }
    }

    /// Takes in what the server sent since the last read without waiting (one poll, no
    /// timer), and returns every byte buffered: before a command that must be the only one in
    /// flight, the core judges them ([`crate::core::nothing_unsolicited`]).
    pub(crate) async fn arrived<C: Core>(&mut self, core: &mut C) -> Result<&[u8], Error> {
        if let Err(e) = self.connection.take_arrived().await {
            return Err(core.handle_failure(e, "the connection failed between commands"));
        }
        Ok(self.connection.input())
    }

    /// Gives the connection back: for the TLS upgrade after STARTTLS, or to the session that
    /// takes it over.
    pub(crate) fn into_connection(self) -> Connection<S> {
        self.connection
    }

    /// After a protocol error: traces the bytes still buffered (they broke the conversation,
    /// and `-v` shows them as the server sent them) and drops them, since nothing will read
    /// them any more.
    pub(crate) fn trace_unread(&mut self) {
        let unread = self.connection.input().len();
        self.connection.consume(unread);
    }

    /// Closes the connection (TLS close_notify, then TCP FIN), within the write timeout.
    pub(crate) async fn shutdown(self) {
        self.connection.shutdown().await;
    }
}
