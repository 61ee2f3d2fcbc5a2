//! With `--after`, whether the input starts at the connection (with the greeting, which answers
//! no command) or with the reply to the first command: both readings run side by side, each
//! refusing what its commands cannot explain, and the one that survives is printed.
//!
//! The two readings differ by one reply, so at most one of them has a reply for every command
//! and none left over; until one is refused, their JSON is held back (at most one object per
//! command, since extra replies are refused). When both are refused, the one that read further
//! names the error, except that "the input ended before every command had its reply" yields to
//! a reply that did not fit its command.

use mailcat_codec::DecodeError;
use serde_json::Value;

use super::JsonDecoder;

/// One reading of the input.
struct Reading {
    decoder: Box<dyn JsonDecoder>,
    /// Bytes of the stream this reading has used.
    used: usize,
    /// Its JSON, held back while the other reading is alive.
    held: Vec<Value>,
}

/// Runs a reading that starts with the greeting and one that does not, over the same bytes.
pub(super) struct Readings {
    /// Alive readings; the one with the greeting first.
    alive: Vec<Reading>,
    /// The stream offset of the buffer the pump gives (bytes every alive reading has used).
    base: usize,
    /// The most telling refusal so far.
    refused: Option<Refusal>,
    /// The stream offset of the error reported, once no reading is left.
    reported: Option<usize>,
}

/// Why a reading was refused.
struct Refusal {
    /// The stream offset the error's offset counts from.
    base: usize,
    error: DecodeError,
    /// The error's offset in the stream.
    at: usize,
    /// It came at the end of the input (a command without its reply).
    at_end: bool,
    /// The reading's JSON not yet printed: printed if this error is the one reported.
    held: Vec<Value>,
}

impl Readings {
    /// Readings of the same input with a greeting first and without one.
    pub(super) fn new(with_greeting: Box<dyn JsonDecoder>, without: Box<dyn JsonDecoder>) -> Self {
        let reading = |decoder| Reading {
            decoder,
            used: 0,
            held: Vec::new(),
        };
        Self {
            alive: vec![reading(with_greeting), reading(without)],
            base: 0,
            refused: None,
            reported: None,
        }
    }

    /// Records a refused reading (`base`: the stream offset its error counts from), keeping the
    /// most telling refusal: a reply that does not fit over a missing one, then the furthest.
    fn refuse(&mut self, reading: Reading, base: usize, error: DecodeError, at_end: bool) {
        let at = base + error.offset().unwrap_or(0);
        let better = match &self.refused {
            None => true,
            Some(old) if old.at_end != at_end => old.at_end,
            Some(old) => at > old.at,
        };
        if better {
            self.refused = Some(Refusal {
                base,
                error,
                at,
                at_end,
                held: reading.held,
            });
        }
    }

    /// The error to report once no reading is alive (counting from [`JsonDecoder::error_base`]);
    /// the JSON its reading decoded before it goes to `out`.
    fn verdict(&mut self, out: &mut Vec<Value>) -> DecodeError {
        match self.refused.take() {
            Some(mut refusal) => {
                out.append(&mut refusal.held);
                self.reported = Some(refusal.base);
                refusal.error
            }
            None => DecodeError::Invalid {
                offset: 0,
                expected: "a reply",
            },
        }
    }

    /// Hands the held JSON of the only reading left to `out`, and from then on passes through.
    fn release(&mut self, out: &mut Vec<Value>) {
        if let [only] = self.alive.as_mut_slice() {
            out.append(&mut only.held);
        }
    }
}

impl JsonDecoder for Readings {
    fn decode(&mut self, buf: &[u8], out: &mut Vec<Value>) -> Result<usize, DecodeError> {
        let mut index = 0;
        while index < self.alive.len() {
            let reading = &mut self.alive[index];
            let mut refused = None;
            loop {
                let start = reading.used - self.base;
                if start >= buf.len() {
                    break;
                }
                match reading.decoder.decode(&buf[start..], &mut reading.held) {
                    Ok(n) => reading.used += n,
                    Err(DecodeError::Incomplete) => break,
                    Err(error) => {
                        refused = Some((reading.used, error));
                        break;
                    }
                }
            }
            match refused {
                Some((base, error)) => {
                    let reading = self.alive.remove(index);
                    self.refuse(reading, base, error, false);
                }
                None => index += 1,
            }
        }
        if self.alive.is_empty() {
            return Err(self.verdict(out));
        }
        self.release(out);
        let used = self.alive.iter().map(|r| r.used).min().unwrap_or(self.base);
        let advanced = used - self.base;
        self.base = used;
        if advanced == 0 {
            Err(DecodeError::Incomplete)
        } else {
            Ok(advanced)
        }
    }

    fn finish(&mut self, rest: &[u8], out: &mut Vec<Value>) -> Result<(), DecodeError> {
        let mut index = 0;
        while index < self.alive.len() {
            let reading = &mut self.alive[index];
            let start = (reading.used - self.base).min(rest.len());
            match reading.decoder.finish(&rest[start..], &mut reading.held) {
                Ok(()) => index += 1,
                Err(error) => {
                    let base = reading.used;
                    let reading = self.alive.remove(index);
                    self.refuse(reading, base, error, true);
                }
            }
        }
        // Both fit only when nothing tells them apart: the greeting reading wins.
        self.alive.truncate(1);
        match self.alive.first_mut() {
            Some(reading) => {
                out.append(&mut reading.held);
                Ok(())
            }
            None => Err(self.verdict(out)),
        }
    }

    fn error_base(&self) -> Option<usize> {
        self.reported
    }
}
