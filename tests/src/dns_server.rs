//! A DNS server on loopback for the autoconfiguration tests: SRV and MX answers from a table,
//! over UDP and over TCP on the same port number. It runs on std threads, so async tests and
//! tests that run mailcat as a subprocess can both use it.
//!
//! It encodes its replies itself and shares no code with mailcat's DNS client, so a mistake in
//! the client's reading of the wire format is not mirrored here. As real servers do, it
//! compresses names: each answer's owner is a pointer to the question (byte 12), and a target
//! that ends with part of the question's name ends with a pointer into it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

const TYPE_SRV: u16 = 33;
const TYPE_MX: u16 = 15;
const RCODE_NXDOMAIN: u8 = 3;

/// What the server answers for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An SRV record (RFC 2782); a `target` of `"."` or `""` is the root.
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Among one priority, higher is chosen more often.
        weight: u16,
        /// The service's port.
        port: u16,
        /// The service's host.
        target: String,
    },
    /// An MX record.
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// The mail exchanger's host.
        exchange: String,
    },
    /// The name does not exist: NXDOMAIN, whatever the type asked.
    NxDomain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    Silent,
    Truncating,
}

/// A running server; its threads end with the test process.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Shared {
    records: Vec<(String, Answer)>,
    mode: Mode,
    queries: Arc<AtomicUsize>,
}

impl DnsServer {
    /// Serves `records` (name, answer) over UDP on 127.0.0.1:0, and TCP on the same port
    /// number; names compared case-insensitively; a name with no entry → NOERROR with no
    /// answers (or NXDOMAIN if an entry says so).
    pub fn start(records: Vec<(String, Answer)>) -> Self {
        Self::spawn(records, Mode::Normal)
    }

    /// A server that receives queries and never answers (for timeout tests).
    pub fn silent() -> Self {
        Self::spawn(Vec::new(), Mode::Silent)
    }

    /// A server that answers every UDP query with TC set and no answers, and serves the records
    /// properly over TCP (tests the TCP fallback).
    pub fn truncating(records: Vec<(String, Answer)>) -> Self {
        Self::spawn(records, Mode::Truncating)
    }

    /// The address, for UDP and TCP alike.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many queries it has received so far, over UDP and TCP.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    fn spawn(records: Vec<(String, Answer)>, mode: Mode) -> Self {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("the UDP socket's address");
        let queries = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            records,
            mode,
            queries: Arc::clone(&queries),
        });
        let udp_shared = Arc::clone(&shared);
        thread::spawn(move || serve_udp(&udp, &udp_shared));
        thread::spawn(move || {
            for stream in tcp.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&shared);
                thread::spawn(move || serve_tcp(stream, &shared));
            }
        });
        Self { addr, queries }
    }
}

/// A UDP socket on an ephemeral loopback port and a TCP listener on the same port number;
/// a few tries, in case the port is taken for TCP.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP port");
        let addr = udp.local_addr().expect("the UDP socket's address");
        if let Ok(tcp) = TcpListener::bind(addr) {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

fn serve_udp(socket: &UdpSocket, shared: &Shared) {
    let mut buffer = [0u8; 512];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        shared.queries.fetch_add(1, Ordering::SeqCst);
        let Some(query) = buffer.get(..len).and_then(Query::parse) else {
            continue;
        };
        let reply = match shared.mode {
            Mode::Silent => continue,
            Mode::Truncating => encode_reply(&query, 0, true, &[]),
            Mode::Normal => reply(&query, &shared.records),
        };
        let _ = socket.send_to(&reply, from);
    }
}

/// Messages over TCP each follow their 2-byte length (RFC 1035 §4.2.2); several queries may
/// share a connection.
fn serve_tcp(mut stream: TcpStream, shared: &Shared) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut message).is_err() {
            return;
        }
        shared.queries.fetch_add(1, Ordering::SeqCst);
        if shared.mode == Mode::Silent {
            continue;
        }
        let Some(query) = Query::parse(&message) else {
            return;
        };
        let reply = reply(&query, &shared.records);
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).is_err() {
            return;
        }
    }
}

/// What a query asks, as far as this server cares.
#[derive(Debug)]
struct Query<'a> {
    id: u16,
    recursion_desired: bool,
    /// The question section as received (name, type, class), echoed in the reply.
    question: &'a [u8],
    /// The question's name's labels, as received.
    labels: Vec<String>,
    qtype: u16,
}

impl<'a> Query<'a> {
    /// A query with one question whose name is uncompressed (as every client writes it).
    fn parse(message: &'a [u8]) -> Option<Self> {
        let header = message.get(..12)?;
        let mut pos = 12;
        let mut labels = Vec::new();
        loop {
            let len = usize::from(*message.get(pos)?);
            pos += 1;
            if len == 0 {
                break;
            }
            if len > 63 {
                return None;
            }
            labels.push(String::from_utf8_lossy(message.get(pos..pos + len)?).into_owned());
            pos += len;
        }
        let qtype = message.get(pos..pos + 2)?;
        Some(Query {
            id: u16::from_be_bytes([header[0], header[1]]),
            recursion_desired: header[2] & 0x01 != 0,
            question: message.get(12..pos + 4)?,
            labels,
            qtype: u16::from_be_bytes([qtype[0], qtype[1]]),
        })
    }

    fn name(&self) -> String {
        self.labels.join(".").to_ascii_lowercase()
    }
}

fn reply(query: &Query<'_>, records: &[(String, Answer)]) -> Vec<u8> {
    let name = query.name();
    let entries: Vec<&Answer> = records
        .iter()
        .filter(|(owner, _)| owner.trim_end_matches('.').eq_ignore_ascii_case(&name))
        .map(|(_, answer)| answer)
        .collect();
    if entries.contains(&&Answer::NxDomain) {
        return encode_reply(query, RCODE_NXDOMAIN, false, &[]);
    }
    let answers: Vec<&Answer> = entries
        .into_iter()
        .filter(|answer| match answer {
            Answer::Srv { .. } => query.qtype == TYPE_SRV,
            Answer::Mx { .. } => query.qtype == TYPE_MX,
            Answer::NxDomain => false,
        })
        .collect();
    encode_reply(query, 0, false, &answers)
}

fn encode_reply(query: &Query<'_>, rcode: u8, truncated: bool, answers: &[&Answer]) -> Vec<u8> {
    // QR, RA, and RD as the query had it.
    let mut flags: u16 = 0x8080 | u16::from(rcode);
    if query.recursion_desired {
        flags |= 0x0100;
    }
    if truncated {
        flags |= 0x0200;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&query.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(query.question);
    for answer in answers {
        let (rtype, rdata) = match answer {
            Answer::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                let mut rdata = Vec::new();
                rdata.extend_from_slice(&priority.to_be_bytes());
                rdata.extend_from_slice(&weight.to_be_bytes());
                rdata.extend_from_slice(&port.to_be_bytes());
                rdata.extend(encode_name(target, &query.labels));
                (TYPE_SRV, rdata)
            }
            Answer::Mx {
                preference,
                exchange,
            } => {
                let mut rdata = preference.to_be_bytes().to_vec();
                rdata.extend(encode_name(exchange, &query.labels));
                (TYPE_MX, rdata)
            }
            Answer::NxDomain => continue,
        };
        // The owner: a pointer to the question's name, at byte 12.
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes()); // class IN
        out.extend_from_slice(&300u32.to_be_bytes()); // TTL
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    out
}

/// `name` in wire form; when its last labels are the last labels of the question's name, they
/// are a pointer into the question (which starts at byte 12) instead.
fn encode_name(name: &str, question: &[String]) -> Vec<u8> {
    let name = name.trim_end_matches('.');
    let labels: Vec<&str> = if name.is_empty() {
        Vec::new()
    } else {
        name.split('.').collect()
    };
    let mut out = Vec::new();
    for (skip, label) in labels.iter().enumerate() {
        let tail = &labels[skip..];
        if tail.len() <= question.len() {
            let start = question.len() - tail.len();
            let same = tail
                .iter()
                .zip(&question[start..])
                .all(|(a, b)| a.eq_ignore_ascii_case(b));
            if same {
                let offset: usize =
                    12 + question[..start].iter().map(|l| 1 + l.len()).sum::<usize>();
                out.extend_from_slice(&(0xc000 | offset as u16).to_be_bytes());
                return out;
            }
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}
