//! Asking for a password on the terminal, in the order getpass(3), sudo and ssh use: echo goes
//! off (and what was typed ahead is discarded) *before* the prompt appears, so nothing typed
//! after the prompt can ever be shown on the screen.
//!
//! The terminal is `/dev/tty`, not stdin: `send` keeps stdin for the message. Line editing is
//! done here (the terminal is non-canonical while asking) so that Ctrl-C can put the terminal
//! back before the program ends.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};

/// Asks for a password on the controlling terminal, without echo.
///
/// Ctrl-C puts the terminal back and raises SIGINT, as if echo had never been off.
pub(crate) fn ask(prompt: &str) -> io::Result<Vec<u8>> {
    let tty = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let original = termios::tcgetattr(&tty)?;
    let mut quiet = original.clone();
    quiet.local_modes &=
        !(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG | LocalModes::ECHONL);
    quiet.special_codes[SpecialCodeIndex::VMIN] = 1;
    quiet.special_codes[SpecialCodeIndex::VTIME] = 0;
    // `Flush` (TCSAFLUSH): input typed before the prompt was echoed already; it is dropped,
    // not taken as the password.
    termios::tcsetattr(&tty, OptionalActions::Flush, &quiet)?;
    let restore = Restore {
        tty: &tty,
        original: &original,
    };
    let mut write_tty = &tty;
    write_tty.write_all(prompt.as_bytes())?;
    write_tty.flush()?;
    let outcome = read_line(&mut &tty);
    // The newline the user typed is not echoed: end the prompt's line.
    let _ = write_tty.write_all(b"\n");
    drop(restore);
    match outcome? {
        Line::Entered(password) => Ok(password),
        Line::Interrupted => {
            // The terminal is itself again; end the way Ctrl-C ends any program.
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::INT,
            );
            Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"))
        }
        Line::EndOfInput => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "no password was typed",
        )),
    }
}

/// Puts the terminal back as it was, whatever happens while asking.
struct Restore<'a> {
    tty: &'a File,
    original: &'a Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty, OptionalActions::Now, self.original);
    }
}

/// How a line of input ended.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Entered(Vec<u8>),
    Interrupted,
    EndOfInput,
}

/// Reads one edited line, a byte at a time.
fn read_line(input: &mut impl Read) -> io::Result<Line> {
    let mut line = LineEditor::default();
    let mut byte = [0u8; 1];
    loop {
        let n = match input.read(&mut byte) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(Line::EndOfInput);
        }
        if let Some(done) = line.push(byte[0]) {
            return Ok(done);
        }
    }
}

/// The editing keys of a canonical terminal, for a line nobody can see.
#[derive(Default)]
struct LineEditor {
    bytes: Vec<u8>,
}

impl LineEditor {
    /// Takes one byte; returns how the line ended once it has.
    fn push(&mut self, byte: u8) -> Option<Line> {
        match byte {
            b'\r' | b'\n' => return Some(Line::Entered(std::mem::take(&mut self.bytes))),
            0x03 => return Some(Line::Interrupted),
            0x04 if self.bytes.is_empty() => return Some(Line::EndOfInput),
            0x04 => {}
            // Backspace and DEL remove one character, however many bytes its UTF-8 takes.
            0x08 | 0x7f => {
                while let Some(last) = self.bytes.pop() {
                    if last & 0b1100_0000 != 0b1000_0000 {
                        break;
                    }
                }
            }
            // Ctrl-U starts the line again.
            0x15 => self.bytes.clear(),
            _ => self.bytes.push(byte),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[u8]) -> Line {
        read_line(&mut &keys[..]).expect("reading a slice cannot fail")
    }

    #[test]
    fn enter_ends_the_line_with_carriage_return_or_line_feed() {
        assert_eq!(
            typed(b"p@ss \"w0rd\" \\ end\r"),
            Line::Entered(b"p@ss \"w0rd\" \\ end".to_vec())
        );
        assert_eq!(typed(b"secret\nnext"), Line::Entered(b"secret".to_vec()));
    }

    #[test]
    fn backspace_removes_a_whole_character_even_a_multibyte_one() {
        assert_eq!(
            typed("pässx\x7f\x7f\x7fss\r".as_bytes()),
            Line::Entered("päss".as_bytes().to_vec())
        );
        assert_eq!(typed(b"\x08\x08ok\r"), Line::Entered(b"ok".to_vec()));
    }

    #[test]
    fn ctrl_u_starts_again_and_ctrl_c_interrupts() {
        assert_eq!(typed(b"wrong\x15right\r"), Line::Entered(b"right".to_vec()));
        assert_eq!(typed(b"half\x03rest\r"), Line::Interrupted);
    }

    #[test]
    fn ctrl_d_or_the_end_of_input_is_no_password() {
        assert_eq!(typed(b"\x04"), Line::EndOfInput);
        assert_eq!(typed(b"unfinished"), Line::EndOfInput);
        assert_eq!(typed(b"a\x04b\r"), Line::Entered(b"ab".to_vec()));
    }
}
