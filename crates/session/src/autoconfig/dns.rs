//! A small DNS client for the two lookups autoconfiguration needs: SRV records (RFC 2782,
//! RFC 6186's `_imaps._tcp.example.com`) and MX records.
//!
//! Hand-written rather than hickory-resolver, whose 186 crates are far more than two record
//! types call for. The core does no I/O ([`encode_query`], [`parse_response`]), so it can be
//! unit-tested and fuzzed; it never panics on any bytes, bounds-checks every read and follows
//! name compression pointers only backwards, a bounded number of times. [`Resolver`] sends the
//! query over UDP to each name server in turn and repeats it over TCP when the reply is
//! truncated; each server gets at most the resolver's timeout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The record type of SRV (RFC 2782).
pub(crate) const TYPE_SRV: u16 = 33;
/// The record type of MX (RFC 1035).
pub(crate) const TYPE_MX: u16 = 15;
const TYPE_CNAME: u16 = 5;
const CLASS_IN: u16 = 1;

const HEADER_LEN: usize = 12;
/// The longest name in text form, without the trailing dot (RFC 1035 §2.3.4, 255 on the wire).
const MAX_NAME_TEXT: usize = 253;
const MAX_NAME_WIRE: usize = 255;
const MAX_LABEL: usize = 63;
/// Compression pointers followed in one name at most; a 255-byte name needs far fewer.
const MAX_JUMPS: usize = 32;
/// CNAMEs followed from the question's name to the records, at most.
const MAX_CNAME_CHAIN: usize = 8;
/// Name servers taken from resolv.conf at most, as the C library does (MAXNS).
const MAX_SERVERS: usize = 3;

const RCODE_NOERROR: u8 = 0;
const RCODE_NXDOMAIN: u8 = 3;

const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Srv {
    /// Lower is tried first.
    pub priority: u16,
    /// Among records of one priority, a higher weight is chosen more often.
    pub weight: u16,
    /// The port the service listens on.
    pub port: u16,
    /// The host, lowercase, without the trailing dot; `""` for the root `.`, which means the
    /// service is not offered at this domain (RFC 2782).
    pub target: String,
}

/// An MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mx {
    /// Lower is preferred.
    pub preference: u16,
    /// The mail exchanger's host, lowercase, without the trailing dot.
    pub exchange: String,
}

/// What a reply says, once checked against its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The TC bit: the reply did not fit in a datagram; ask again over TCP. The records of a
    /// truncated reply are not read (they may be incomplete), so `srv` and `mx` are empty.
    pub truncated: bool,
    /// The response code: 0 no error, 2 server failure, 3 no such name, 5 refused, ...
    pub rcode: u8,
    /// The SRV records of the question's name (or of its CNAME target), sorted by priority
    /// ascending, then weight descending.
    pub srv: Vec<Srv>,
    /// The MX records of the question's name (or of its CNAME target), sorted by preference.
    pub mx: Vec<Mx>,
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DnsError {
    /// The name cannot be looked up as given.
    #[error("{name:?} is not a name that can be looked up in the DNS: {why}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// A reply is too short or inconsistent with itself.
    #[error("malformed DNS reply: {why}")]
    Malformed {
        /// What is wrong with it.
        why: String,
    },
    /// A datagram that is not the reply to this query (another id, not a response, another
    /// question); a resolver ignores it and keeps waiting.
    #[error("a DNS message that does not answer the query: {why}")]
    NotOurReply {
        /// How it differs from the query.
        why: String,
    },
    /// A name server sent no reply within the time allowed.
    #[error("the name server {server} did not answer within {timeout:?}")]
    Timeout {
        /// The name server asked.
        server: SocketAddr,
        /// The time allowed.
        timeout: Duration,
    },
    /// Sending to or receiving from a name server failed.
    #[error("could not query the name server {server}: {source}")]
    Io {
        /// The name server asked.
        server: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A name server sent a reply to the query that cannot be read.
    #[error("the name server {server} sent a malformed reply: {why}")]
    BadReply {
        /// The name server asked.
        server: SocketAddr,
        /// What is wrong with the reply.
        why: String,
    },
    /// A name server answered with an error code (after every other server was tried).
    #[error(
        "the name server {server} could not answer: {} (DNS response code {rcode})",
        rcode_meaning(*.rcode)
    )]
    ServerFailure {
        /// The name server asked.
        server: SocketAddr,
        /// Its response code.
        rcode: u8,
    },
    /// The resolver has no name server to ask.
    #[error("no name server to ask")]
    NoNameServer,
    /// The system's random number generator failed, and a query id must be unpredictable.
    #[error("the system's random number generator failed (a DNS query id must be random)")]
    Random,
}

fn rcode_meaning(rcode: u8) -> &'static str {
    match rcode {
        1 => "it could not read the query (FORMERR)",
        2 => "server failure (SERVFAIL)",
        3 => "no such name (NXDOMAIN)",
        4 => "it does not implement this kind of query (NOTIMP)",
        5 => "it refused the query (REFUSED)",
        _ => "an error",
    }
}

fn malformed(why: impl Into<String>) -> DnsError {
    DnsError::Malformed { why: why.into() }
}

fn not_ours(why: impl Into<String>) -> DnsError {
    DnsError::NotOurReply { why: why.into() }
}

/// Checks `name` and returns its labels (without the trailing dot's empty one).
pub(crate) fn validate_name(name: &str) -> Result<Vec<&str>, DnsError> {
    let bad = |why: String| DnsError::BadName {
        name: name.to_owned(),
        why,
    };
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(bad("the name is empty".into()));
    }
    if trimmed.len() > MAX_NAME_TEXT {
        return Err(bad(format!(
            "it is {} bytes long, and DNS allows {MAX_NAME_TEXT}",
            trimmed.len()
        )));
    }
    let labels: Vec<&str> = trimmed.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(bad(
                "it has an empty label (a leading dot, or two dots in a row)".into(),
            ));
        }
        let not_allowed = |c: &char| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_');
        if let Some(c) = label.chars().find(not_allowed) {
            return Err(bad(if c.is_ascii() {
                format!("{c:?} is not allowed (only ASCII letters, digits, '-', '_' and dots)")
            } else {
                format!("{c:?} is not ASCII (write an international name in its xn-- form)")
            }));
        }
        if label.len() > MAX_LABEL {
            return Err(bad(format!(
                "the label {label:?} is {} bytes long, and DNS allows {MAX_LABEL}",
                label.len()
            )));
        }
    }
    Ok(labels)
}

/// The name in the form replies are compared with: lowercase, without the trailing dot.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// A standard query for `name` of type `qtype`, class IN, recursion desired.
///
/// `name` is made of ASCII letters, digits, `-` and `_`, in dot-separated labels of 1 to 63
/// bytes, at most 253 bytes in all; a trailing dot is allowed. Anything else is
/// [`DnsError::BadName`], with the reason.
pub(crate) fn encode_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let labels = validate_name(name)?;
    let mut query = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&FLAG_RD.to_be_bytes());
    // One question; no answer, authority or additional records.
    query.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in labels {
        // At most 63 bytes (checked above), so the length fits a byte.
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.push(0);
    query.extend_from_slice(&qtype.to_be_bytes());
    query.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(query)
}

fn read_u16(msg: &[u8], pos: usize, what: &str) -> Result<u16, DnsError> {
    match msg.get(pos..pos.saturating_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(malformed(format!(
            "it ends at byte {} in the middle of {what}",
            msg.len()
        ))),
    }
}

/// Appends one label in lowercase; a byte a host name cannot hold is written `\DDD`, as in a
/// zone file, so that no such name is ever mistaken for a plain one.
fn push_label(out: &mut String, label: &[u8]) {
    for &byte in label {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte.to_ascii_lowercase()));
        } else {
            out.push_str(&format!("\\{byte:03}"));
        }
    }
}

/// Reads the (possibly compressed) name at `start`: the name in lowercase without the trailing
/// dot (`""` for the root), and the position just after its bytes at `start`.
///
/// A compression pointer must point before the start of the run of labels it ends (a name at
/// the pointer's target was written earlier in the message), which alone rules out loops; the
/// number of jumps is capped as well.
fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut pos = start;
    let mut run_start = start;
    let mut end = None;
    let mut jumps = 0;
    let mut wire_len = 0usize;
    loop {
        let Some(&len) = msg.get(pos) else {
            return Err(malformed(format!(
                "a name at byte {start} runs past the end of the message ({} bytes)",
                msg.len()
            )));
        };
        match len & 0xC0 {
            0x00 => {
                let len = usize::from(len);
                wire_len += 1 + len;
                if wire_len > MAX_NAME_WIRE {
                    return Err(malformed(format!(
                        "a name at byte {start} is longer than {MAX_NAME_WIRE} bytes"
                    )));
                }
                if len == 0 {
                    return Ok((name, end.unwrap_or(pos + 1)));
                }
                let Some(label) = msg.get(pos + 1..pos + 1 + len) else {
                    return Err(malformed(format!(
                        "a label at byte {pos} runs past the end of the message ({} bytes)",
                        msg.len()
                    )));
                };
                if !name.is_empty() {
                    name.push('.');
                }
                push_label(&mut name, label);
                pos += 1 + len;
            }
            0xC0 => {
                let Some(&low) = msg.get(pos + 1) else {
                    return Err(malformed(format!(
                        "a compression pointer at byte {pos} is cut off by the end of the message"
                    )));
                };
                let target = usize::from(u16::from_be_bytes([len & 0x3F, low]));
                if target >= run_start {
                    return Err(malformed(format!(
                        "a compression pointer at byte {pos} points forwards or into its own \
                         name (to byte {target})"
                    )));
                }
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return Err(malformed(format!(
                        "a name at byte {start} has more than {MAX_JUMPS} compression pointers"
                    )));
                }
                end.get_or_insert(pos + 2);
                pos = target;
                run_start = target;
            }
            _ => {
                return Err(malformed(format!(
                    "a label at byte {pos} has the unknown type 0x{:02x}",
                    len & 0xC0
                )))
            }
        }
    }
}

/// Checks that `bytes` is the reply to the query `id` for `name` and `qtype`, and reads its
/// SRV or MX records.
///
/// A reply with another id, without the QR bit, or with another question is
/// [`DnsError::NotOurReply`]; one that is too short or inconsistent is [`DnsError::Malformed`].
/// Records of other types (CNAME, ...) are skipped; records of the question's type count when
/// their owner is the question's name or, through the reply's CNAMEs, an alias of it. The
/// records of a reply with an error code or the TC bit are not read.
pub(crate) fn parse_response(
    bytes: &[u8],
    id: u16,
    name: &str,
    qtype: u16,
) -> Result<Response, DnsError> {
    if bytes.len() < HEADER_LEN {
        return Err(malformed(format!(
            "it is {} bytes long, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    let got_id = read_u16(bytes, 0, "the header")?;
    if got_id != id {
        return Err(not_ours(format!("its id is {got_id}, the query's is {id}")));
    }
    let flags = read_u16(bytes, 2, "the header")?;
    if flags & FLAG_QR == 0 {
        return Err(not_ours("it is a query, not a response"));
    }
    let opcode = (flags >> 11) & 0x0F;
    if opcode != 0 {
        return Err(not_ours(format!("its opcode is {opcode}, not 0 (QUERY)")));
    }
    let truncated = flags & FLAG_TC != 0;
    let rcode = (flags & 0x0F) as u8;
    let qdcount = read_u16(bytes, 4, "the header")?;
    let ancount = read_u16(bytes, 6, "the header")?;
    if qdcount != 1 {
        return Err(not_ours(format!(
            "it has {qdcount} questions, not the query's one"
        )));
    }

    let (qname, pos) = read_name(bytes, HEADER_LEN)?;
    let got_qtype = read_u16(bytes, pos, "the question")?;
    let got_qclass = read_u16(bytes, pos + 2, "the question")?;
    let mut pos = pos + 4;
    let want = normalize(name);
    if qname != want || got_qtype != qtype || got_qclass != CLASS_IN {
        return Err(not_ours(format!(
            "it is about {qname:?} type {got_qtype} class {got_qclass}, the query about \
             {want:?} type {qtype} class {CLASS_IN}"
        )));
    }

    let mut response = Response {
        truncated,
        rcode,
        srv: Vec::new(),
        mx: Vec::new(),
    };
    if truncated || rcode != RCODE_NOERROR {
        return Ok(response);
    }

    let mut cnames: Vec<(String, String)> = Vec::new();
    let mut srv: Vec<(String, Srv)> = Vec::new();
    let mut mx: Vec<(String, Mx)> = Vec::new();
    for index in 0..ancount {
        let (owner, after_owner) = read_name(bytes, pos)?;
        let rtype = read_u16(bytes, after_owner, "a record's type")?;
        let rclass = read_u16(bytes, after_owner + 2, "a record's class")?;
        // after_owner + 4: the TTL, 4 bytes, unused.
        let rdlength = usize::from(read_u16(bytes, after_owner + 8, "a record's length")?);
        let rdata = after_owner + 10;
        let rdata_end = rdata + rdlength;
        if rdata_end > bytes.len() {
            return Err(malformed(format!(
                "answer {index} says its data is {rdlength} bytes long, past the end of the \
                 message ({} bytes)",
                bytes.len()
            )));
        }
        // A name in the data must end exactly where RDLENGTH says the data does.
        let name_in_data = |at: usize| -> Result<String, DnsError> {
            if at >= rdata_end {
                return Err(malformed(format!(
                    "answer {index} (type {rtype}) has {rdlength} bytes of data, too few"
                )));
            }
            let (name, end) = read_name(bytes, at)?;
            if end != rdata_end {
                return Err(malformed(format!(
                    "answer {index} (type {rtype}) says its data is {rdlength} bytes long, \
                     but it is {}",
                    end.saturating_sub(rdata)
                )));
            }
            Ok(name)
        };
        if rclass == CLASS_IN {
            match rtype {
                TYPE_SRV if qtype == TYPE_SRV => {
                    let record = Srv {
                        priority: read_u16(bytes, rdata, "an SRV record")?,
                        weight: read_u16(bytes, rdata + 2, "an SRV record")?,
                        port: read_u16(bytes, rdata + 4, "an SRV record")?,
                        target: name_in_data(rdata + 6)?,
                    };
                    srv.push((owner, record));
                }
                TYPE_MX if qtype == TYPE_MX => {
                    let record = Mx {
                        preference: read_u16(bytes, rdata, "an MX record")?,
                        exchange: name_in_data(rdata + 2)?,
                    };
                    mx.push((owner, record));
                }
                TYPE_CNAME => cnames.push((owner, name_in_data(rdata)?)),
                _ => {}
            }
        }
        pos = rdata_end;
    }

    // The names whose records answer the question: its own, and its aliases in the reply.
    let mut owners = vec![want];
    while owners.len() <= MAX_CNAME_CHAIN {
        let Some(last) = owners.last() else { break };
        match cnames.iter().find(|(alias, _)| alias == last) {
            Some((_, target)) if !owners.contains(target) => owners.push(target.clone()),
            _ => break,
        }
    }
    response.srv = srv
        .into_iter()
        .filter(|(owner, _)| owners.contains(owner))
        .map(|(_, record)| record)
        .collect();
    response
        .srv
        .sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
    response.mx = mx
        .into_iter()
        .filter(|(owner, _)| owners.contains(owner))
        .map(|(_, record)| record)
        .collect();
    response.mx.sort_by_key(|record| record.preference);
    Ok(response)
}

/// Where queries go, and how long to wait.
#[derive(Debug, Clone)]
pub(crate) struct Resolver {
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl Resolver {
    /// The name servers of /etc/resolv.conf (`nameserver` lines, port 53, at most 3, IPv4 and
    /// IPv6), else 127.0.0.1:53. Each server gets at most `timeout`.
    pub(crate) fn system(timeout: Duration) -> Self {
        let mut servers = match std::fs::read_to_string("/etc/resolv.conf") {
            Ok(text) => parse_resolv_conf(&text),
            Err(error) => {
                tracing::debug!("dns: cannot read /etc/resolv.conf ({error}); asking 127.0.0.1");
                Vec::new()
            }
        };
        if servers.is_empty() {
            servers.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        Self { servers, timeout }
    }

    /// One given server (tests, or a user who points mailcat at a resolver).
    pub(crate) fn with_server(server: SocketAddr, timeout: Duration) -> Self {
        Self {
            servers: vec![server],
            timeout,
        }
    }

    /// SRV records of `name`, sorted by priority ascending, then weight descending. NXDOMAIN or
    /// no records → `Ok` of an empty list.
    pub(crate) async fn srv(&self, name: &str) -> Result<Vec<Srv>, DnsError> {
        Ok(self.lookup(name, TYPE_SRV).await?.srv)
    }

    /// MX records of `domain`, sorted by preference. NXDOMAIN or none → `Ok` of an empty list.
    pub(crate) async fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsError> {
        Ok(self.lookup(domain, TYPE_MX).await?.mx)
    }

    /// Asks each server in turn until one answers with records, no records, or NXDOMAIN; any
    /// other outcome (an error code, no reply, a broken reply) moves on to the next server, and
    /// the last server's failure is the result.
    async fn lookup(&self, name: &str, qtype: u16) -> Result<Response, DnsError> {
        // A bad name is the caller's mistake; no server needs to hear about it.
        encode_query(0, name, qtype)?;
        let mut failure = DnsError::NoNameServer;
        for &server in &self.servers {
            match self.ask(server, name, qtype).await {
                Ok(response) if response.rcode == RCODE_NOERROR => return Ok(response),
                Ok(response) if response.rcode == RCODE_NXDOMAIN => {
                    tracing::debug!("dns: {name} type {qtype}: no such name, says {server}");
                    return Ok(Response {
                        srv: Vec::new(),
                        mx: Vec::new(),
                        ..response
                    });
                }
                Ok(response) => {
                    tracing::debug!(
                        "dns: {name} type {qtype}: {server} answered rcode {}",
                        response.rcode
                    );
                    failure = DnsError::ServerFailure {
                        server,
                        rcode: response.rcode,
                    };
                }
                Err(error) => {
                    tracing::debug!("dns: {name} type {qtype}: {error}");
                    failure = error;
                }
            }
        }
        Err(failure)
    }

    /// One query to one server, over UDP and if need be TCP, all within the timeout.
    async fn ask(&self, server: SocketAddr, name: &str, qtype: u16) -> Result<Response, DnsError> {
        let id = random_id()?;
        let query = encode_query(id, name, qtype)?;
        tracing::debug!("dns: asking {server} for {name} type {qtype} (id {id})");
        let exchange = async {
            let response = udp_exchange(server, &query, id, name, qtype).await?;
            if !response.truncated {
                return Ok(response);
            }
            tracing::debug!("dns: {server}'s reply for {name} is truncated; asking over TCP");
            tcp_exchange(server, &query, id, name, qtype).await
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_elapsed) => Err(DnsError::Timeout {
                server,
                timeout: self.timeout,
            }),
        }
    }
}

fn random_id() -> Result<u16, DnsError> {
    let mut id = [0u8; 2];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| DnsError::Random)?;
    Ok(u16::from_be_bytes(id))
}

/// The servers of resolv.conf's `nameserver` lines, at most three; a link-local IPv6 address
/// keeps a numeric zone (`fe80::1%2`), and is skipped with a named one, which would need the
/// interface's index.
fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let word = words.next()?;
            if let Ok(ip) = word.parse::<IpAddr>() {
                return Some(SocketAddr::new(ip, 53));
            }
            let (ip, zone) = word.split_once('%')?;
            let ip: Ipv6Addr = ip.parse().ok()?;
            let scope = zone.parse::<u32>().ok()?;
            Some(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, scope)))
        })
        .take(MAX_SERVERS)
        .collect()
}

/// Sends the query in a datagram and waits for the reply to it, ignoring datagrams from other
/// addresses and replies to other queries (the caller bounds the wait).
async fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    qtype: u16,
) -> Result<Response, DnsError> {
    let io = |source| DnsError::Io { server, source };
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    // Connected, so the kernel drops datagrams from elsewhere and reports a closed port (ICMP)
    // as an error at once, instead of a silence that lasts the whole timeout.
    socket.connect(server).await.map_err(io)?;
    socket.send(query).await.map_err(io)?;
    let mut buffer = vec![0u8; 65_535];
    loop {
        let (len, from) = socket.recv_from(&mut buffer).await.map_err(io)?;
        if from.ip() != server.ip() || from.port() != server.port() {
            tracing::debug!("dns: ignoring a datagram from {from} (waiting for {server})");
            continue;
        }
        match parse_response(buffer.get(..len).unwrap_or_default(), id, name, qtype) {
            Err(DnsError::NotOurReply { why }) => {
                tracing::debug!("dns: ignoring a datagram from {server}: {why}");
            }
            Err(DnsError::Malformed { why }) => return Err(DnsError::BadReply { server, why }),
            result => return result,
        }
    }
}

/// The query over TCP (RFC 1035 §4.2.2: each message after its 2-byte length).
async fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    qtype: u16,
) -> Result<Response, DnsError> {
    let io = |source| DnsError::Io { server, source };
    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    // A query is at most 12 + 255 + 4 bytes, so its length fits two bytes.
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(io)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(io)?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await.map_err(io)?;
    match parse_response(&reply, id, name, qtype) {
        Err(DnsError::Malformed { why } | DnsError::NotOurReply { why }) => {
            Err(DnsError::BadReply { server, why })
        }
        result => result,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A resource record of class IN, TTL 3600.
    fn rr(owner: &[u8], rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let mut record = owner.to_vec();
        record.extend_from_slice(&rtype.to_be_bytes());
        record.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        record.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        record.extend_from_slice(rdata);
        record
    }

    const SRV_QUESTION: &[u8] = b"\x06_imaps\x04_tcp\x07example\x03com\x00\x00\x21\x00\x01";
    const SRV_NAME: &str = "_imaps._tcp.example.com";

    /// Header (id 0x1234, QR RD RA, NOERROR) and the question for `_imaps._tcp.example.com`
    /// SRV, which ends at byte 41; `example.com` is at byte 24 (0x18).
    fn srv_head(ancount: u16) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x81, 0x80, 0, 1];
        message.extend_from_slice(&ancount.to_be_bytes());
        message.extend_from_slice(&[0, 0, 0, 0]);
        message.extend_from_slice(SRV_QUESTION);
        assert_eq!(message.len(), 41);
        assert_eq!(&message[24..32], b"\x07example");
        message
    }

    /// Four answers, owners compressed to the question (byte 12): three SRV and an A to skip.
    fn srv_response() -> Vec<u8> {
        let mut m = srv_head(4);
        // 41: priority 10, weight 5, port 993, "IMAP" + pointer to "example.com"; the
        // target's name starts at 59 (0x3b).
        m.extend(rr(
            b"\xc0\x0c",
            33,
            b"\x00\x0a\x00\x05\x03\xe1\x04IMAP\xc0\x18",
        ));
        assert_eq!(&m[59..64], b"\x04IMAP");
        // 66: an A record, skipped.
        m.extend(rr(b"\xc0\x0c", 1, &[192, 0, 2, 1]));
        assert_eq!(m.len(), 82);
        // 82: priority 20, weight 0, port 993, "backup" + pointer to "example.com"; the
        // target's name starts at 100.
        m.extend(rr(
            b"\xc0\x0c",
            33,
            b"\x00\x14\x00\x00\x03\xe1\x06backup\xc0\x18",
        ));
        assert_eq!(&m[100..107], b"\x06backup");
        // 109: priority 10, weight 50, port 9993, "b" + pointer to "IMAP.example.com" (two
        // jumps).
        m.extend(rr(
            b"\xc0\x0c",
            33,
            b"\x00\x0a\x00\x32\x27\x09\x01b\xc0\x3b",
        ));
        assert_eq!(m.len(), 131);
        m
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn is_malformed(result: Result<Response, DnsError>) -> bool {
        matches!(result, Err(DnsError::Malformed { .. }))
    }

    #[test]
    fn query_bytes_for_a_known_name() {
        let query = encode_query(0x1234, SRV_NAME, TYPE_SRV).unwrap();
        let mut expected = vec![
            0x12, 0x34, // id
            0x01, 0x00, // RD
            0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // one question
        ];
        expected.extend_from_slice(SRV_QUESTION);
        assert_eq!(query, expected);
        assert_eq!(
            encode_query(0x1234, "_imaps._tcp.example.com.", TYPE_SRV).unwrap(),
            expected
        );
        let mx = encode_query(0xbeef, "Example.COM", TYPE_MX).unwrap();
        assert_eq!(
            mx,
            b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
              \x07Example\x03COM\x00\x00\x0f\x00\x01"
        );
    }

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (".", "empty"),
            ("a..com", "empty label"),
            (".example.com", "empty label"),
            ("example.com..", "empty label"),
            ("exa mple.com", "' ' is not allowed"),
            ("a/b.com", "'/' is not allowed"),
            ("bücher.de", "not ASCII"),
            (&long_label, "63"),
            (&long_name, "253"),
        ];
        for (name, reason) in cases {
            match encode_query(1, name, TYPE_MX) {
                Err(error @ DnsError::BadName { .. }) => {
                    let text = error.to_string();
                    assert!(text.contains(reason), "{name:?}: {text}");
                }
                other => panic!("{name:?}: {other:?}"),
            }
        }
        // The limits themselves are allowed.
        let max_label = format!("{}.com", "a".repeat(63));
        let max_name = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
        assert_eq!(max_name.len(), 253);
        assert!(encode_query(1, &max_label, TYPE_MX).is_ok());
        assert!(encode_query(1, &max_name, TYPE_MX).is_ok());
        assert!(encode_query(1, &format!("{max_name}."), TYPE_MX).is_ok());
    }

    #[test]
    fn srv_records_with_compression_sorted() {
        let response = parse_response(&srv_response(), 0x1234, SRV_NAME, TYPE_SRV).unwrap();
        assert!(!response.truncated);
        assert_eq!(response.rcode, 0);
        assert!(response.mx.is_empty());
        assert_eq!(
            response.srv,
            [
                srv(10, 50, 9993, "b.imap.example.com"),
                srv(10, 5, 993, "imap.example.com"),
                srv(20, 0, 993, "backup.example.com"),
            ]
        );
        // The question is compared without regard to case or a trailing dot.
        let upper = parse_response(&srv_response(), 0x1234, "_IMAPS._tcp.Example.com.", 33);
        assert_eq!(upper.unwrap().srv.len(), 3);
    }

    #[test]
    fn root_target_is_kept_as_empty() {
        let mut m = srv_head(1);
        m.extend(rr(b"\xc0\x0c", 33, &[0, 0, 0, 0, 0, 0, 0]));
        let response = parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV).unwrap();
        assert_eq!(response.srv, [srv(0, 0, 0, "")]);
    }

    #[test]
    fn mx_records_sorted_by_preference() {
        let mut m = vec![0xbe, 0xef, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07Example\x03COM\x00\x00\x0f\x00\x01");
        // "mx2" + pointer to the question's name; an uncompressed name in capitals; a CNAME.
        m.extend(rr(b"\xc0\x0c", 15, b"\x00\x14\x03mx2\xc0\x0c"));
        m.extend(rr(b"\xc0\x0c", 5, b"\x05alias\xc0\x0c"));
        m.extend(rr(
            b"\xc0\x0c",
            15,
            b"\x00\x0a\x03MX1\x07example\x03com\x00",
        ));
        let response = parse_response(&m, 0xbeef, "example.com", TYPE_MX).unwrap();
        assert!(response.srv.is_empty());
        assert_eq!(
            response.mx,
            [
                Mx {
                    preference: 10,
                    exchange: "mx1.example.com".into()
                },
                Mx {
                    preference: 20,
                    exchange: "mx2.example.com".into()
                },
            ]
        );
    }

    #[test]
    fn records_of_a_cname_target_count_and_others_do_not() {
        let mut m = vec![0xbe, 0xef, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x03com\x00\x00\x0f\x00\x01");
        // 29: example.com CNAME mail.example.net, whose name starts at 41.
        m.extend(rr(b"\xc0\x0c", 5, b"\x04mail\x07example\x03net\x00"));
        assert_eq!(&m[41..46], b"\x04mail");
        m.extend(rr(b"\xc0\x29", 15, b"\x00\x05\x02mx\xc0\x29"));
        // An MX of an unrelated name, which is not an answer to the question.
        m.extend(rr(b"\x05other\x00", 15, b"\x00\x01\x02mx\xc0\x0c"));
        let response = parse_response(&m, 0xbeef, "example.com", TYPE_MX).unwrap();
        assert_eq!(
            response.mx,
            [Mx {
                preference: 5,
                exchange: "mx.mail.example.net".into()
            }]
        );
    }

    #[test]
    fn pointer_loops_are_rejected() {
        // A pointer to itself, as the first answer's owner.
        let mut m = srv_response();
        m[41..43].copy_from_slice(b"\xc0\x29");
        assert!(is_malformed(parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV)));
        // A label and a pointer back to that label: a.a.a.a...
        let mut m = srv_head(1);
        m.extend(rr(b"\x01a\xc0\x29", 33, b"\x00\x00\x00\x00\x00\x00\x00"));
        let error = parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV).unwrap_err();
        assert!(error.to_string().contains("compression pointer"), "{error}");
        // A long chain of pointers, each backwards: over the cap on jumps.
        let mut m = srv_head(2);
        let mut chain = b"\xc0\x0c".to_vec();
        for k in 1..40u8 {
            chain.extend_from_slice(&[0xc0, 53 + 2 * (k - 1)]);
        }
        m.extend(rr(b"\xc0\x0c", 99, &chain));
        let last = 53 + 2 * 39;
        m.extend(rr(&[0xc0, last], 33, b"\x00\x00\x00\x00\x00\x00\x00"));
        let error = parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV).unwrap_err();
        assert!(error.to_string().contains("more than 32"), "{error}");
    }

    #[test]
    fn forward_pointer_is_rejected() {
        // The first target's pointer, at 64, aimed at "backup.example.com" (100), later on.
        let mut m = srv_response();
        m[65] = 100;
        let error = parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV).unwrap_err();
        assert!(matches!(error, DnsError::Malformed { .. }), "{error:?}");
        assert!(error.to_string().contains("forwards"), "{error}");
    }

    #[test]
    fn every_truncation_is_malformed_without_panic() {
        let full = srv_response();
        assert!(parse_response(&full, 0x1234, SRV_NAME, TYPE_SRV).is_ok());
        for len in 0..full.len() {
            let result = parse_response(&full[..len], 0x1234, SRV_NAME, TYPE_SRV);
            assert!(
                matches!(result, Err(DnsError::Malformed { .. })),
                "{len}: {result:?}"
            );
        }
    }

    #[test]
    fn any_single_byte_changed_never_panics() {
        let full = srv_response();
        for pos in 0..full.len() {
            for value in 0..=255u8 {
                let mut m = full.clone();
                m[pos] = value;
                let _ = parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV);
            }
        }
    }

    #[test]
    fn inconsistent_rdlength_is_malformed() {
        let mut m = srv_response();
        m[52] = 14; // the first SRV's data is 13 bytes
        let error = parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV).unwrap_err();
        assert!(error.to_string().contains("13"), "{error}");
        let mut m = srv_response();
        m[52] = 5; // too short even for priority, weight and port
        assert!(is_malformed(parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV)));
        let mut m = srv_response();
        m[119] = 0x40; // the last record's RDLENGTH, 0x400a: past the end of the message
        let error = parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV).unwrap_err();
        assert!(error.to_string().contains("past the end"), "{error}");
    }

    #[test]
    fn replies_to_other_queries_are_not_ours() {
        let m = srv_response();
        let wrong_id = parse_response(&m, 0x1235, SRV_NAME, TYPE_SRV);
        assert!(
            matches!(wrong_id, Err(DnsError::NotOurReply { .. })),
            "{wrong_id:?}"
        );
        let other_name = parse_response(&m, 0x1234, "_pop3s._tcp.example.com", TYPE_SRV);
        mailcat_tests::assert_matches!(other_name, Err(DnsError::NotOurReply { .. }));
        let other_type = parse_response(&m, 0x1234, SRV_NAME, TYPE_MX);
        mailcat_tests::assert_matches!(other_type, Err(DnsError::NotOurReply { .. }));
        let mut query = m.clone();
        query[2] &= 0x7f; // QR clear: a query
        let query = parse_response(&query, 0x1234, SRV_NAME, TYPE_SRV);
        mailcat_tests::assert_matches!(query, Err(DnsError::NotOurReply { .. }));
    }

    #[test]
    fn nxdomain_and_truncated_replies_have_no_records() {
        let mut m = srv_head(0);
        m[3] = 0x83; // NXDOMAIN
        let response = parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV).unwrap();
        assert_eq!(response.rcode, 3);
        assert!(response.srv.is_empty());
        // TC set: the records (here a cut-off one) are not read.
        let mut m = srv_response();
        m[2] |= 0x02;
        m.truncate(70);
        let response = parse_response(&m, 0x1234, SRV_NAME, TYPE_SRV).unwrap();
        assert!(response.truncated);
        assert!(response.srv.is_empty());
    }

    #[test]
    fn resolv_conf_name_servers() {
        let text = "# generated\nsearch example.com\nnameserver 192.0.2.1\n\
                    nameserver   2001:db8::53  # comment\nnameserver fe80::1%eth0\n\
                    nameserver fe80::2%3\nnameserver bogus\nnameserver 192.0.2.4\n";
        let servers = parse_resolv_conf(text);
        assert_eq!(
            servers,
            [
                "192.0.2.1:53".parse::<SocketAddr>().unwrap(),
                "[2001:db8::53]:53".parse().unwrap(),
                SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 53, 0, 3)),
            ]
        );
        assert!(parse_resolv_conf("domain example.com\n").is_empty());
        assert!(!Resolver::system(Duration::from_secs(1)).servers.is_empty());
    }

    /// A UDP responder on loopback that answers each query by echoing it with `flags`, after
    /// sending `strays` replies with the wrong id and REFUSED first.
    fn echo_server(flags: u16, strays: usize) -> SocketAddr {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while let Ok((len, from)) = socket.recv_from(&mut buffer) {
                let mut reply = buffer[..len].to_vec();
                reply[2..4].copy_from_slice(&flags.to_be_bytes());
                for _ in 0..strays {
                    let mut stray = reply.clone();
                    stray[1] ^= 0x01;
                    stray[3] = 0x85;
                    let _ = socket.send_to(&stray, from);
                }
                let _ = socket.send_to(&reply, from);
            }
        });
        addr
    }

    fn resolver(servers: Vec<SocketAddr>) -> Resolver {
        Resolver {
            servers,
            timeout: Duration::from_millis(300),
        }
    }

    #[tokio::test]
    async fn stray_replies_with_other_ids_are_ignored() {
        let server = echo_server(0x8185, 0);
        let refused = resolver(vec![server]).mx("example.com").await;
        assert!(
            matches!(refused, Err(DnsError::ServerFailure { rcode: 5, .. })),
            "{refused:?}"
        );
        // Had a stray been taken for the reply, the lookup would fail with REFUSED.
        let stray_then_ok = echo_server(0x8180, 3);
        let records = resolver(vec![stray_then_ok])
            .mx("example.com")
            .await
            .unwrap();
        assert!(records.is_empty());
    }

    #[tokio::test]
    async fn servfail_and_silence_move_on_to_the_next_server() {
        use mailcat_tests::dns_server::{Answer, DnsServer};
        let records = vec![(
            "example.com".to_string(),
            Answer::Mx {
                preference: 10,
                exchange: "mx.example.com".into(),
            },
        )];
        let good = DnsServer::start(records);
        let silent = DnsServer::silent();
        let servfail = echo_server(0x8182, 0);
        let both = resolver(vec![silent.addr(), servfail, good.addr()]);
        let mx = both.mx("example.com").await.unwrap();
        assert_eq!(mx.len(), 1);
        assert_eq!(silent.queries(), 1);
        let failing = resolver(vec![servfail]).mx("example.com").await;
        let error = failing.unwrap_err();
        assert!(
            matches!(error, DnsError::ServerFailure { rcode: 2, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("SERVFAIL"), "{error}");
    }

    #[tokio::test]
    async fn a_bad_name_asks_no_server() {
        let silent = mailcat_tests::dns_server::DnsServer::silent();
        let error = resolver(vec![silent.addr()]).srv("a..b").await.unwrap_err();
        assert!(matches!(error, DnsError::BadName { .. }), "{error:?}");
        assert_eq!(silent.queries(), 0);
    }
}

/// The client against a DNS server on loopback.
#[cfg(test)]
#[path = "dns_server_tests.rs"]
mod server_tests;
