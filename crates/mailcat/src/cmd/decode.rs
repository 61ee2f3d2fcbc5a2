//! `mailcat decode imap|pop3|smtp [--after CMD]...`: raw server bytes on stdin, one JSON object
//! per response; with `--after`, each reply is checked against the client command it answers.

mod greeting;
mod imap;
mod pop3;
mod smtp;
mod utf8;

use std::io::{self, BufWriter, Read, Write};

use mailcat_codec::DecodeError;
use serde_json::Value;

use crate::cli::{DecodeArgs, Protocol};
use crate::exit;

/// A protocol decoder seen from the JSON printer.
trait JsonDecoder {
    /// Decodes from the front of `buf`; pushes zero or more JSON objects and returns the bytes used.
    fn decode(&mut self, buf: &[u8], out: &mut Vec<Value>) -> Result<usize, DecodeError>;

    /// The input ended with `rest` still unused (possibly empty): flush or explain.
    fn finish(&mut self, rest: &[u8], out: &mut Vec<Value>) -> Result<(), DecodeError>;

    /// The stream offset the last error's offset counts from, when it is not the start of the
    /// buffer given (an error about bytes already let go).
    fn error_base(&self) -> Option<usize> {
        None
    }
}

/// The decoder for `args`: with `--after`, one that checks each reply against its command,
/// reading the input both with and without a greeting first where the two can differ.
fn decoder(args: &DecodeArgs) -> Result<Box<dyn JsonDecoder>, String> {
    if args.after.is_empty() {
        return Ok(match args.protocol {
            Protocol::Imap => Box::new(imap::Decoder::new()),
            Protocol::Pop3 => Box::new(pop3::Decoder::new()),
            Protocol::Smtp => Box::new(smtp::Decoder::new()),
        });
    }
    Ok(match args.protocol {
        Protocol::Imap => Box::new(imap::Decoder::after(&args.after)?),
        Protocol::Pop3 => {
            let commands = args
                .after
                .iter()
                .map(|line| pop3::Command::parse(line))
                .collect::<Result<Vec<_>, _>>()?;
            Box::new(greeting::Readings::new(
                Box::new(pop3::Decoder::after(&commands, true)),
                Box::new(pop3::Decoder::after(&commands, false)),
            ))
        }
        Protocol::Smtp => {
            let commands: Vec<_> = args.after.iter().map(|l| smtp::Command::parse(l)).collect();
            Box::new(greeting::Readings::new(
                Box::new(smtp::Decoder::after(&commands, true)),
                Box::new(smtp::Decoder::after(&commands, false)),
            ))
        }
    })
}

/// Runs the command; returns the exit code.
pub(crate) fn run(args: &DecodeArgs) -> u8 {
    let name = match args.protocol {
        Protocol::Imap => "IMAP",
        Protocol::Pop3 => "POP3",
        Protocol::Smtp => "SMTP",
    };
    let mut decoder = match decoder(args) {
        Ok(decoder) => decoder,
        Err(problem) => {
            eprintln!("mailcat: {problem}");
            return exit::USAGE;
        }
    };
    let stdout = io::stdout();
    let mut sink = BufWriter::with_capacity(64 * 1024, stdout.lock());
    match pump(&mut io::stdin().lock(), decoder.as_mut(), &mut sink) {
        Ok(()) => match sink.flush() {
            Ok(()) => exit::OK,
            Err(err) => io_failure("stdout", &err),
        },
        Err(Failure::Decode(err)) => {
            let _ = sink.flush();
            eprintln!("mailcat: malformed {name} input: {err}");
            exit::DATAERR
        }
        Err(Failure::Io(what, err)) => {
            let _ = sink.flush();
            io_failure(what, &err)
        }
    }
}

fn io_failure(what: &str, err: &io::Error) -> u8 {
    if err.kind() == io::ErrorKind::BrokenPipe {
        return exit::OK;
    }
    eprintln!("mailcat: cannot use {what}: {err}");
    exit::IOERR
}

enum Failure {
    Decode(DecodeError),
    Io(&'static str, io::Error),
}

const READ_CHUNK: usize = 64 * 1024;

/// Feeds `input` through `decoder`, writing one JSON line per decoded value.
///
/// One buffer serves the whole stream; consumed bytes are dropped before each read, so memory
/// stays bounded by the decoder's limits whatever the stream's length.
fn pump(
    input: &mut dyn Read,
    decoder: &mut dyn JsonDecoder,
    sink: &mut dyn Write,
) -> Result<(), Failure> {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut start = 0usize;
    let mut stream_offset = 0usize; // offset in the whole stream of buf[start]
    let mut out = Vec::new();
    let mut eof = false;
    loop {
        let result = if start == buf.len() && !eof {
            Err(DecodeError::Incomplete)
        } else {
            decoder.decode(&buf[start..], &mut out)
        };
        match result {
            Ok(used) => {
                start += used;
                stream_offset += used;
                print(&mut out, sink)?;
            }
            Err(DecodeError::Incomplete) if eof => {
                let finished = decoder.finish(&buf[start..], &mut out);
                print(&mut out, sink)?;
                let base = decoder.error_base().unwrap_or(stream_offset);
                return finished.map_err(|err| Failure::Decode(err.shifted(base)));
            }
            Err(DecodeError::Incomplete) => {
                sink.flush().map_err(|err| Failure::Io("stdout", err))?;
                buf.drain(..start);
                start = 0;
                let filled = buf.len();
                buf.resize(filled + READ_CHUNK, 0);
                let read = loop {
                    match input.read(&mut buf[filled..]) {
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other,
                    }
                };
                match read {
                    Ok(n) => {
                        buf.truncate(filled + n);
                        eof = n == 0;
                    }
                    Err(err) => return Err(Failure::Io("stdin", err)),
                }
            }
            Err(err) => {
                print(&mut out, sink)?;
                let base = decoder.error_base().unwrap_or(stream_offset);
                return Err(Failure::Decode(err.shifted(base)));
            }
        }
    }
}

fn print(values: &mut Vec<Value>, sink: &mut dyn Write) -> Result<(), Failure> {
    for value in values.drain(..) {
        serde_json::to_writer(&mut *sink, &value)
            .map_err(|err| Failure::Io("stdout", err.into()))?;
        sink.write_all(b"\n")
            .map_err(|err| Failure::Io("stdout", err))?;
    }
    Ok(())
}

/// Bytes as a JSON string: UTF-8 as is, anything else escaped (`\xNN`), so output stays valid JSON.
fn text(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => Value::String(mailcat_codec::core::text::escape_bytes(bytes)),
    }
}
