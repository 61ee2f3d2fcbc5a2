//! Getting a TCP connection and a TLS session: resolve, try each address with its own timeout,
//! shake hands, and say which step failed and why.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Step};
use crate::sniff::{is_tls_record, plaintext_greeting, PlaintextGreeting, Sniffed};
use crate::{dns_hint, Endpoint, Security, Timeouts};

/// Resolves the endpoint's host name; IP addresses are used as they are.
pub async fn resolve(endpoint: &Endpoint, timeouts: &Timeouts) -> Result<Vec<SocketAddr>, Error> {
    let host = endpoint.host.as_str();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, endpoint.port)]);
    }
    let lookup = tokio::net::lookup_host((host, endpoint.port));
    let result = match timeout(timeouts.resolve, lookup).await {
        Ok(result) => result.map(|addrs| addrs.collect::<Vec<_>>()),
        Err(_) => {
            return Err(timeout_error(
                endpoint,
                Step::Resolve,
                timeouts.resolve,
                None,
            ))
        }
    };
    match result {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(Error::HostNotFound {
            host: host.to_owned(),
            hint: dns_hint::suggest(host),
        }),
        Err(source) => {
            let hint = dns_hint::suggest(host);
            // A TLD that does not exist is "not found" whatever the resolver said.
            if hint.is_some() || is_not_found(&source) {
                Err(Error::HostNotFound {
                    host: host.to_owned(),
                    hint,
                })
            } else {
                Err(Error::Resolve {
                    host: host.to_owned(),
                    source,
                })
            }
        }
    }
}

/// getaddrinfo's "no such name" answers, as the standard library reports them.
fn is_not_found(error: &io::Error) -> bool {
    let text = error.to_string();
    [
        "not known",
        "No address associated",
        "nodename nor servname",
        "No such host",
    ]
    .iter()
    .any(|s| text.contains(s))
}

/// Resolves the host and opens a TCP connection to it.
pub async fn connect_tcp(endpoint: &Endpoint, timeouts: &Timeouts) -> Result<TcpStream, Error> {
    let addrs = resolve(endpoint, timeouts).await?;
    connect_tcp_to(endpoint, &addrs, timeouts).await
}

/// Opens a TCP connection: each address in turn, each with its own timeout.
pub async fn connect_tcp_to(
    endpoint: &Endpoint,
    addrs: &[SocketAddr],
    timeouts: &Timeouts,
) -> Result<TcpStream, Error> {
    let mut last = None;
    for &addr in addrs {
        match timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Commands are small and each waits for its reply: do not let Nagle hold them.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(connect_error(endpoint, addr, e)),
            Err(_) => {
                last = Some(timeout_error(
                    endpoint,
                    Step::Connect,
                    timeouts.connect,
                    None,
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::HostNotFound {
        host: endpoint.host.clone(),
        hint: None,
    }))
}

fn connect_error(endpoint: &Endpoint, addr: SocketAddr, source: io::Error) -> Error {
    if source.kind() == io::ErrorKind::ConnectionRefused {
        Error::ConnectionRefused {
            host: endpoint.host.clone(),
            port: endpoint.port,
            addr,
        }
    } else {
        Error::Connect {
            host: endpoint.host.clone(),
            port: endpoint.port,
            source,
        }
    }
}

/// Runs the TLS handshake over `stream`, verifying the certificate for the endpoint's host.
pub async fn tls_handshake<S>(
    stream: S,
    endpoint: &Endpoint,
    config: Arc<ClientConfig>,
    timeouts: &Timeouts,
) -> Result<TlsStream<Sniffed<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake(stream, endpoint, config, timeouts, false).await
}

/// The handshake after a STARTTLS go-ahead: anything but a TLS record from the server is
/// plaintext injected by someone on the path, whatever it looks like.
pub(crate) async fn tls_handshake_after_starttls<S>(
    stream: S,
    endpoint: &Endpoint,
    config: Arc<ClientConfig>,
    timeouts: &Timeouts,
) -> Result<TlsStream<Sniffed<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake(stream, endpoint, config, timeouts, true).await
}

async fn handshake<S>(
    stream: S,
    endpoint: &Endpoint,
    config: Arc<ClientConfig>,
    timeouts: &Timeouts,
    after_starttls: bool,
) -> Result<TlsStream<Sniffed<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|_| Error::Tls {
        host: endpoint.host.clone(),
        source: rustls::Error::General(format!(
            "{:?} is not a valid host name for TLS",
            endpoint.host
        )),
    })?;
    let handshake = TlsConnector::from(config)
        .connect(name, Sniffed::new(stream))
        .into_fallible();
    match timeout(timeouts.tls_handshake, handshake).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err((_, stream)))
            if after_starttls
                && !stream.first_bytes().is_empty()
                && !is_tls_record(stream.first_bytes()) =>
        {
            Err(Error::StartTlsInjection {
                host: endpoint.host.clone(),
                command: endpoint.protocol.starttls_command(),
                buffered: stream.first_bytes().len(),
            })
        }
        Ok(Err((error, stream))) => Err(crate::tls::classify_handshake_error(
            error,
            &endpoint.host,
            endpoint.port,
            endpoint.protocol,
            stream.first_bytes(),
        )),
        Err(_) => {
            let hint = match endpoint.protocol.security_of_port(endpoint.port) {
                Some(Security::StartTls) if endpoint.security == Security::ImplicitTls => {
                    Some(format!(
                        "port {} is normally {} with STARTTLS: try {}",
                        endpoint.port,
                        endpoint.protocol,
                        Endpoint {
                            security: Security::StartTls,
                            ..endpoint.clone()
                        }
                        .url()
                    ))
                }
                _ => None,
            };
            Err(timeout_error(
                endpoint,
                Step::TlsHandshake,
                timeouts.tls_handshake,
                hint,
            ))
        }
    }
}

/// Asks the kernel to acknowledge the server's next data at once instead of delaying the ACK
/// (by 40 ms on Linux): call it after a TLS handshake, once the client's last write before
/// waiting for a reply is done (after the handshake itself for implicit TLS, after the
/// command that follows it for STARTTLS).
///
/// Why: a TLS 1.3 server sends its session tickets after the client's Finished, and its next
/// reply (the greeting; the answer to EHLO) in a write of its own. A server that leaves Nagle's
/// algorithm on (Postfix does) holds that reply until the tickets are acknowledged, and the
/// client, which wrote right after receiving data, is in the kernel's interactive mode and
/// delays that acknowledgement, hoping to piggyback it on data it will never send: 40 ms lost
/// on every SMTPS connection to Postfix, and after STARTTLS whenever EHLO went out before the
/// tickets came in. Leaving interactive mode makes the kernel acknowledge the tickets as soon
/// as they are read. It lasts until the client writes again, so it costs
/// nothing later. Linux and Android only (`TCP_QUICKACK`); elsewhere it does nothing.
pub fn ack_promptly(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = stream.set_quickack(true) {
        tracing::debug!(target: crate::trace::TARGET, "TCP_QUICKACK not set: {e}");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

/// How long a TLS probe waits for the greeting once its handshake succeeded.
const PROBE_GREETING_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// What [`answers_tls`] found: the server speaks TLS, and (when the certificate checked out
/// and the server greeted in time) the greeting that came over it.
#[derive(Debug)]
pub struct TlsAnswer {
    /// The greeting read over TLS, if any.
    pub greeting: Option<PlaintextGreeting>,
}

/// Whether the server at `addr` answers a TLS ClientHello with TLS: a handshake on a
/// connection of its own, within `limit`. A refused certificate still came in a TLS record, so
/// it counts; when the handshake succeeds, the greeting that follows tells which protocol
/// the port serves. Nothing is sent but the ClientHello, and the connection is closed at once.
/// How a silent server on a plaintext connection is found to be an implicit-TLS port.
///
/// `None`: no TLS answer within `limit` (or the host is no valid TLS name).
pub async fn answers_tls(
    addr: SocketAddr,
    endpoint: &Endpoint,
    config: Arc<ClientConfig>,
    limit: std::time::Duration,
) -> Option<TlsAnswer> {
    let name = ServerName::try_from(endpoint.host.clone()).ok()?;
    let probe = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let _ = tcp.set_nodelay(true);
        let handshake = TlsConnector::from(config)
            .connect(name, Sniffed::new(tcp))
            .into_fallible()
            .await;
        match handshake {
            Ok(mut tls) => {
                let mut buf = [0u8; 128];
                let greeting = match timeout(PROBE_GREETING_WAIT, tls.read(&mut buf)).await {
                    Ok(Ok(n)) => plaintext_greeting(&buf[..n]),
                    _ => None,
                };
                let _ = tls.shutdown().await;
                Some(TlsAnswer { greeting })
            }
            Err((_, stream)) => {
                is_tls_record(stream.first_bytes()).then_some(TlsAnswer { greeting: None })
            }
        }
    };
    timeout(limit, probe).await.ok().flatten()
}

pub(crate) fn timeout_error(
    endpoint: &Endpoint,
    step: Step,
    after: std::time::Duration,
    hint: Option<String>,
) -> Error {
    Error::Timeout {
        host: endpoint.host.clone(),
        port: endpoint.port,
        step,
        after,
        hint,
        too_slow: None,
    }
}
