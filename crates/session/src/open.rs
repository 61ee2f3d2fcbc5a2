//! Opening a connection to a mail server, ready for login: [`open`] runs resolve → connect →
//! implicit TLS or STARTTLS → greeting → capabilities, reporting each step as the account
//! check shows them.
//!
//! What is said (the greeting, the capability query, STARTTLS and its answer, every rule about
//! them) is decided by the opening core, `crate::core::opening`, which has no I/O; this module
//! drives it with [`crate::driver::Driver`] and uses the transport for the I/O only: resolving,
//! connecting, the TLS handshakes, the TLS probe of a silent port, and the upgrade
//! ([`Connection::upgrade_to_tls`], which refuses any byte buffered before it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailcat_codec::imap::TagGenerator;
use mailcat_codec::smtp::command::ClientId;
use mailcat_transport::connect::{
    ack_promptly, answers_tls, connect_tcp_to, resolve, tls_handshake,
};
use mailcat_transport::sniff::PlaintextGreeting;
use mailcat_transport::{
    Connection, Endpoint, Error, MailStream, Protocol, Security, Step, Timeouts,
};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::core::opening::{Event, Opening};
use crate::driver::Driver;

pub use crate::core::opening::{Greeting, ServerCapabilities};

/// A connection with the opening conversation around it (decoders, IMAP tags, the EHLO name),
/// until a protocol session takes it over with [`MailConnection::into_parts`].
#[derive(Debug)]
pub struct MailConnection<S> {
    driver: Driver<S>,
    core: Opening,
}

impl<S: AsyncRead + AsyncWrite + Unpin> MailConnection<S> {
    /// Wraps a connection; `client_id` is the name given in SMTP EHLO (an address literal of
    /// the local address is the private, always-valid choice).
    pub fn new(connection: Connection<S>, client_id: ClientId) -> Self {
        let core = Opening::new(
            connection.endpoint().clone(),
            connection.is_tls(),
            client_id,
        );
        Self {
            driver: Driver::new(connection),
            core,
        }
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection<S> {
        self.driver.connection()
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.core.endpoint()
    }

    /// Hands the connection over to a protocol session, with the IMAP tag generator (so tags
    /// keep counting up) when the protocol is IMAP.
    pub fn into_parts(self) -> (Connection<S>, Option<TagGenerator>) {
        (self.driver.into_connection(), self.core.into_tags())
    }

    /// Reads the greeting. A TLS record where a greeting was due means the port expects
    /// implicit TLS; a greeting that refuses service (IMAP BYE, POP3 -ERR, SMTP 421/554) is an
    /// error with the server's words; IMAP `PREAUTH` is refused when STARTTLS is required.
    pub async fn greeting(&mut self) -> Result<Greeting, Error> {
        match self.complete().await? {
            Event::Greeting(greeting) => Ok(greeting),
            _ => Err(self.out_of_step(Step::Greeting)),
        }
    }

    /// Asks for the capabilities (IMAP `CAPABILITY`, POP3 `CAPA`, SMTP `EHLO`).
    ///
    /// A POP3 server without CAPA (RFC 1939 only) answers `-ERR`: that is an empty list. Any
    /// other failure is an error: never "no answer, so no STARTTLS, carry on" (CVE-2021-22946).
    pub async fn capabilities(&mut self) -> Result<ServerCapabilities, Error> {
        self.capabilities_then(|_| {}).await
    }

    /// [`MailConnection::capabilities`], calling `sent` once the request is written, before
    /// the reply is awaited.
    async fn capabilities_then(
        &mut self,
        sent: impl FnOnce(&Connection<S>),
    ) -> Result<ServerCapabilities, Error> {
        let arrived = self
            .driver
            .arrived(&mut self.core)
            .await
            .map_err(transport)?;
        self.core.ask_capabilities(arrived)?;
        self.driver.flush(&mut self.core).await.map_err(transport)?;
        sent(self.driver.connection());
        match self.complete().await? {
            Event::ServerCapabilities(capabilities) => Ok(capabilities),
            _ => Err(self.out_of_step(Step::Capabilities)),
        }
    }

    /// Upgrades to TLS with STARTTLS (IMAP, SMTP) or STLS (POP3):
    /// 1. the server must have offered it (see [`open`]);
    /// 2. the command is sent and its answer must be the go-ahead (IMAP tagged OK, `+OK`,
    ///    `220`); a refusal is an error, never a reason to carry on in plaintext;
    /// 3. if any byte follows the go-ahead, the connection is dropped: it was injected by
    ///    someone on the path (CVE-2021-22947);
    /// 4. the handshake verifies the certificate for the configured host;
    /// 5. everything learned before is forgotten: a fresh connection, fresh decoders and tags;
    ///    the caller must ask for capabilities again (RFC 3207 §4.2, RFC 2595 §3.1).
    pub async fn starttls(mut self, config: Arc<ClientConfig>) -> Result<Self, Error> {
        let arrived = self
            .driver
            .arrived(&mut self.core)
            .await
            .map_err(transport)?;
        self.core.ask_starttls(arrived)?;
        match self.complete().await? {
            Event::StartTls => {}
            _ => return Err(self.out_of_step(Step::StartTls)),
        }
        let client_id = self.core.client_id().clone();
        let connection = self.driver.into_connection().upgrade_to_tls(config).await?;
        let core = Opening::after_starttls(connection.endpoint().clone(), client_id);
        Ok(Self {
            driver: Driver::new(connection),
            core,
        })
    }

    /// Says goodbye (LOGOUT / QUIT) and closes, ignoring errors: nothing depends on it.
    pub async fn close(mut self) {
        self.core.goodbye();
        let _ = self.driver.flush(&mut self.core).await;
        self.driver.shutdown().await;
    }

    /// Drives the core until the reply due is complete. Bytes that do not follow the
    /// protocol are traced before the error is returned, as the server sent them.
    async fn complete(&mut self) -> Result<Event, Error> {
        loop {
            match self.driver.next(&mut self.core).await {
                Ok((Event::Part, _)) => {}
                Ok((event, _)) => return Ok(event),
                Err(crate::Error::Transport(error)) => {
                    if matches!(error, Error::Protocol { .. }) {
                        self.driver.trace_unread();
                    }
                    return Err(error);
                }
                Err(other) => return Err(transport(other)),
            }
        }
    }

    /// An event other than the one asked for: the core never gives one, but if it did the
    /// conversation would be out of step.
    fn out_of_step(&self, step: Step) -> Error {
        let endpoint = self.endpoint();
        Error::Protocol {
            host: endpoint.host.clone(),
            protocol: endpoint.protocol,
            step,
            source: mailcat_codec::DecodeError::Invalid {
                offset: 0,
                expected: "the reply to the command sent",
            },
        }
    }
}

/// The transport's error inside a session error. The opening core reports only transport
/// errors ([`crate::Error::Transport`]); anything else would be a bug, shown as it is.
fn transport(error: crate::Error) -> Error {
    match error {
        crate::Error::Transport(error) => error,
        other => Error::Io {
            host: String::new(),
            step: Step::Response,
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// How long a plaintext connection may wait for its greeting before mailcat asks, on a second
/// connection, whether the port expects TLS from the first byte (an implicit-TLS server waits,
/// silent, for the client's TLS hello; mail servers greet within milliseconds).
const TLS_PROBE_AFTER: Duration = Duration::from_secs(1);

/// Reads the greeting of a plaintext connection; if the server stays silent for a while, finds
/// out whether the port expects implicit TLS (a STARTTLS URL on port 993 ...) by a TLS
/// handshake on a second connection, and if so fails at once with the URL to use instead of
/// waiting for the greeting timeout. A server that merely greets late (a greet pause, a slow
/// reverse lookup) does not answer in TLS, and its greeting is still awaited.
///
/// Not on the ports a protocol uses for STARTTLS (143, 110, 587, 25), where a server that
/// pauses before greeting may take a client that talks first for a spammer (Postfix's
/// postscreen), and where a TLS server would be a surprise anyway.
async fn greeting_or_tls(
    connection: &mut MailConnection<TcpStream>,
    peer: Option<std::net::SocketAddr>,
    tls: Arc<ClientConfig>,
    timeouts: &Timeouts,
) -> Result<Greeting, Error> {
    let endpoint = connection.endpoint().clone();
    let probe_wait = TLS_PROBE_AFTER.min(timeouts.greeting / 2);
    let may_probe = endpoint.security != Security::ImplicitTls
        && endpoint.protocol.security_of_port(endpoint.port) != Some(Security::StartTls);
    let (Some(peer), true) = (peer, may_probe) else {
        return connection.greeting().await;
    };
    let greeting = connection.greeting();
    tokio::pin!(greeting);
    tokio::select! {
        result = &mut greeting => return result,
        () = tokio::time::sleep(probe_wait) => {}
    }
    let probe = answers_tls(peer, &endpoint, tls, timeouts.tls_handshake);
    tokio::select! {
        result = &mut greeting => result,
        Some(answer) = probe => Err(match answer.greeting {
            // Another protocol's TLS port (a POP3 URL on the IMAPS port).
            Some(PlaintextGreeting {
                protocol: Some(found),
                text,
            }) if found != endpoint.protocol => Error::WrongProtocol {
                host: endpoint.host.clone(),
                port: endpoint.port,
                expected: endpoint.protocol,
                found,
                greeting: text,
                tls: true,
            },
            _ => Error::TlsServerOnPlaintextConnection {
                host: endpoint.host.clone(),
                port: endpoint.port,
                tls_url: implicit_tls_url(&endpoint),
            },
        }),
    }
}

/// The implicit-TLS URL to use instead of `endpoint`: the same port, unless it is another
/// protocol's implicit-TLS port (`pop3://host:993`), then the protocol's own.
fn implicit_tls_url(endpoint: &Endpoint) -> String {
    let port = endpoint.port;
    let others_port = [Protocol::Imap, Protocol::Pop3, Protocol::Smtp]
        .into_iter()
        .any(|p| p != endpoint.protocol && p.default_port(Security::ImplicitTls) == port);
    let implicit = Endpoint {
        security: Security::ImplicitTls,
        ..endpoint.clone()
    };
    if others_port {
        implicit
            .with_port(endpoint.protocol.default_port(Security::ImplicitTls))
            .url()
    } else {
        implicit.url()
    }
}

/// One step of [`open`], as it finished.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Which step.
    pub step: Step,
    /// How long it took.
    pub elapsed: Duration,
    /// What it found (the addresses, the TLS version, the greeting ...).
    pub detail: String,
}

/// Everything [`open`] learned.
#[derive(Debug)]
pub struct Opened {
    /// The connection, ready for login.
    pub connection: MailConnection<TcpStream>,
    /// The greeting (before STARTTLS, if that was used: not to be trusted).
    pub greeting: Greeting,
    /// The capabilities, learned over TLS: asked, or listed by an IMAP greeting over implicit
    /// TLS.
    pub capabilities: ServerCapabilities,
}

/// Connects to `endpoint` and gets it ready for login: resolve, connect, implicit TLS or
/// STARTTLS, greeting, capabilities (taken from an IMAP greeting over implicit TLS that lists
/// them, else asked for). Each finished step is reported to `observer`.
///
/// With [`Security::StartTls`], the upgrade is required: a server that does not offer it, or
/// refuses it, is an error (never a plaintext fallback); a `PREAUTH` greeting before TLS too.
pub async fn open(
    endpoint: &Endpoint,
    tls: Arc<ClientConfig>,
    timeouts: &Timeouts,
    observer: &mut (dyn FnMut(StepReport) + Send),
) -> Result<Opened, Error> {
    let mut clock = Instant::now();
    let mut report = |step: Step, detail: String| {
        observer(StepReport {
            step,
            elapsed: clock.elapsed(),
            detail,
        });
        clock = Instant::now();
    };

    let addrs = resolve(endpoint, timeouts).await?;
    report(
        Step::Resolve,
        addrs
            .iter()
            .map(|a| a.ip().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let tcp = connect_tcp_to(endpoint, &addrs, timeouts).await?;
    let local = tcp
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let peer = tcp.peer_addr().ok();
    report(
        Step::Connect,
        peer.map(|a| a.to_string()).unwrap_or_default(),
    );

    let stream = match endpoint.security {
        Security::ImplicitTls => {
            let tls = tls_handshake(tcp, endpoint, tls.clone(), timeouts).await?;
            let stream = MailStream::Tls(Box::new(tls));
            // The greeting may come behind the server's session tickets.
            ack_promptly(stream.get_ref());
            report(
                Step::TlsHandshake,
                stream.tls_description().unwrap_or_default(),
            );
            stream
        }
        Security::StartTls | Security::DangerousPlaintext => MailStream::Plain(tcp),
    };
    let mut connection = MailConnection::new(
        Connection::new(stream, endpoint.clone(), *timeouts),
        ClientId::from(local),
    );
    let greeting = greeting_or_tls(&mut connection, peer, tls.clone(), timeouts).await?;
    report(Step::Greeting, greeting.text.clone());
    // An IMAP greeting over implicit TLS may list the capabilities itself (RFC 9051 §7.1):
    // asking again would only cost a round trip. Before STARTTLS they are asked for as ever.
    let (mut capabilities, source) = match (&endpoint.security, &greeting.capabilities) {
        (Security::ImplicitTls, Some(told)) => (told.clone(), "listed in the greeting: "),
        _ => (connection.capabilities().await?, ""),
    };
    report(
        Step::Capabilities,
        format!("{source}{}", capabilities.items.join(" ")),
    );

    if connection.core.needs_starttls(&capabilities)? {
        connection = connection.starttls(tls).await?;
        report(
            Step::StartTls,
            connection
                .connection()
                .tls_description()
                .unwrap_or_default(),
        );
        // The reply may come behind the server's session tickets.
        capabilities = connection
            .capabilities_then(|sent| ack_promptly(sent.stream().get_ref()))
            .await?;
        report(Step::Capabilities, capabilities.items.join(" "));
    }
    Ok(Opened {
        connection,
        greeting,
        capabilities,
    })
}
