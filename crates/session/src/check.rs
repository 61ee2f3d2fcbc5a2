//! The account check, a mail client's "Test Account Settings": for the incoming and the
//! outgoing server, one step at a time (resolve, connect, TLS or STARTTLS, greeting,
//! capabilities, login with the account's credential), each step timed; optionally a message to
//! the account itself that must arrive. Each step is reported as it finishes, so an app can show
//! progress; each failure comes with its [`Verdict`] and advice that depends on the settings (an
//! old host name, a provider that wants OAuth2 or an app password, a port of the other TLS mode).

use std::time::{Duration, Instant};

use mailcat_transport::{Endpoint, Protocol, Security, Step};

use crate::auth;
use crate::autoconfig::providers::{self, SignIn};
use crate::smtp::{Envelope, MessageInfo};
use crate::{
    Account, Credential, CredentialKind, Error, ImapSession, Pop3Session, SmtpSession, StepReport,
};

/// Which server of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// The IMAP or POP3 server.
    Incoming,
    /// The SMTP server.
    Outgoing,
}

impl Role {
    /// `incoming` or `outgoing`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Incoming => "incoming",
            Self::Outgoing => "outgoing",
        }
    }
}

/// What kind of problem a failure is, for an app to show in its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Everything worked.
    Success,
    /// The server cannot be reached as configured: DNS, connection, timeout, the wrong TLS mode
    /// or port, the connection lost.
    Network,
    /// The server's certificate was refused.
    Certificate,
    /// The login was refused, or the credential could not be had.
    Authentication,
    /// The server lacks something needed (STARTTLS, a usable login mechanism, an extension).
    MissingCapability,
    /// The server answered with an error, or broke the protocol.
    ServerError,
}

impl Verdict {
    /// A short name: `success`, `network`, `certificate`, `authentication`,
    /// `missing_capability`, `server_error`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Network => "network",
            Self::Certificate => "certificate",
            Self::Authentication => "authentication",
            Self::MissingCapability => "missing_capability",
            Self::ServerError => "server_error",
        }
    }

    /// The verdict for a failure.
    pub fn of(error: &Error) -> Self {
        use mailcat_transport::Error as T;
        match error {
            Error::Transport(T::Certificate { .. }) => Self::Certificate,
            Error::Transport(T::StartTlsNotOffered { .. } | T::PreauthBeforeTls { .. }) => {
                Self::MissingCapability
            }
            Error::Transport(
                T::Protocol { .. }
                | T::Refused { .. }
                | T::OutOfStep { .. }
                | T::TlsAbortedByServer { .. },
            ) => Self::ServerError,
            Error::Transport(_) => Self::Network,
            e if e.is_auth() => Self::Authentication,
            Error::Credential { .. } | Error::MechanismUnfit { .. } => Self::Authentication,
            Error::AuthenticationUnavailable { .. }
            | Error::NoUsableMechanism { .. }
            | Error::MechanismNotOffered { .. }
            | Error::PlaintextAuthRefused { .. }
            | Error::MissingExtension { .. } => Self::MissingCapability,
            Error::Closed { .. } | Error::Io(_) => Self::Network,
            _ => Self::ServerError,
        }
    }
}

/// What the check should do besides connecting.
#[derive(Debug, Clone)]
pub struct Options {
    /// Log in with the account's credential (without one, only the connection steps run).
    pub log_in: bool,
    /// Send a message to the account itself and wait until the incoming server has it (then
    /// remove it). Runs only when every server passed.
    pub send_test: bool,
    /// How long to wait for the test message.
    pub arrival_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            log_in: true,
            send_test: false,
            arrival_timeout: Duration::from_secs(120),
        }
    }
}

/// The check's progress, reported as each step finishes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A server's checks begin.
    Server {
        /// Which server.
        role: Role,
        /// Where it is.
        endpoint: &'a Endpoint,
    },
    /// A connection step finished. `secured` is false for what a server said before TLS was
    /// up (threat model #10: anyone on the path could have written it).
    Step {
        /// The step, its time and what it found.
        report: &'a StepReport,
        /// Whether TLS protected what the step shows.
        secured: bool,
    },
    /// The login (or, for the test message, the sending or the arrival) succeeded.
    Done {
        /// `login`, `send` or `arrival`.
        step: &'static str,
        /// How long it took.
        elapsed: Duration,
        /// What it found.
        detail: String,
    },
    /// Something the user should know: a pinned certificate, an old host name.
    Note(String),
    /// The connection steps passed; logging in was not asked for (no credential at hand).
    LoginSkipped,
    /// The server (or the test message) passed.
    Passed,
    /// A step failed.
    Failed {
        /// The step that failed (`DNS lookup`, `TLS handshake`, `login`, `test message` …).
        step: &'static str,
        /// What happened.
        error: &'a Error,
        /// Advice that depends on the settings, when there is some.
        advice: Option<String>,
    },
    /// The test message's checks begin.
    TestMessage,
}

/// One server's outcome.
#[derive(Debug)]
pub struct ServerResult {
    /// Which server.
    pub role: Role,
    /// Where it is.
    pub endpoint: Endpoint,
    /// Ok, or the first failure.
    pub outcome: Result<(), Error>,
}

impl ServerResult {
    /// The kind of outcome.
    pub fn verdict(&self) -> Verdict {
        match &self.outcome {
            Ok(()) => Verdict::Success,
            Err(error) => Verdict::of(error),
        }
    }
}

/// The check's outcome.
#[derive(Debug)]
pub struct Report {
    /// Each server checked, in order.
    pub servers: Vec<ServerResult>,
    /// The test message's outcome, if it was sent.
    pub test_message: Option<Result<(), Error>>,
}

impl Report {
    /// True when every server and the test message (if any) passed.
    pub fn passed(&self) -> bool {
        self.servers.iter().all(|s| s.outcome.is_ok()) && !matches!(self.test_message, Some(Err(_)))
    }
}

/// Checks `servers` of `account`: each with the credential of its role (send uses the incoming
/// credential unless the account has its own), reporting to `observer` as steps finish. Fails
/// only when the account's TLS settings cannot be used (an unreadable CA file).
pub async fn check(
    account: &Account,
    servers: &[(Role, Endpoint)],
    options: &Options,
    observer: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Report, Error> {
    let tls = account.tls.client_config()?;
    let mut report = Report {
        servers: Vec::new(),
        test_message: None,
    };
    for (role, endpoint) in servers {
        observer(Progress::Server {
            role: *role,
            endpoint,
        });
        if let Some(advice) = legacy_host_advice(endpoint) {
            observer(Progress::Note(advice));
        }
        let credential = match role {
            Role::Incoming => &account.credential,
            Role::Outgoing => account.outgoing_credential(),
        };
        // The step after the connection steps, once they passed: `login`, then `logout`.
        let mut after_open = None;
        let outcome = check_server(
            account,
            endpoint,
            &tls,
            credential,
            options,
            &mut after_open,
            observer,
        )
        .await;
        match &outcome {
            Ok(()) => {
                if !options.log_in {
                    observer(Progress::LoginSkipped);
                }
                observer(Progress::Passed);
            }
            Err(error) => observer(Progress::Failed {
                step: after_open.unwrap_or_else(|| failed_step(error)),
                error,
                advice: advice(error, endpoint, credential.kind()),
            }),
        }
        report.servers.push(ServerResult {
            role: *role,
            endpoint: endpoint.clone(),
            outcome,
        });
    }
    if options.send_test && report.passed() {
        observer(Progress::TestMessage);
        let outcome = send_test(account, options.arrival_timeout, observer).await;
        match &outcome {
            Ok(()) => observer(Progress::Passed),
            Err(error) => observer(Progress::Failed {
                step: "test message",
                error,
                advice: None,
            }),
        }
        report.test_message = Some(outcome);
    }
    Ok(report)
}

async fn check_server(
    account: &Account,
    endpoint: &Endpoint,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    credential: &Credential,
    options: &Options,
    after_open: &mut Option<&'static str>,
    observer: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(), Error> {
    let mut secured = endpoint.security == Security::ImplicitTls;
    let opened = crate::open(endpoint, tls.clone(), &account.timeouts, &mut |report| {
        secured |= report.step == Step::StartTls;
        observer(Progress::Step {
            report: &report,
            secured,
        });
    })
    .await?;
    let presented = opened.connection.connection().peer_certificate();
    if presented.is_some_and(|p| account.tls.pinned.contains(&p)) {
        observer(Progress::Note(
            "the certificate is trusted because you pinned it (by its fingerprint), not because \
             an authority vouches for it: its names and dates are not checked"
                .into(),
        ));
    }
    if !options.log_in {
        opened.connection.close().await;
        return Ok(());
    }
    let started = Instant::now();
    let plaintext = account.plaintext;
    // Whatever fails from here on (a refusal, or a server silent after AUTH) fails the login.
    *after_open = Some("login");
    let logged_in = |observer: &mut (dyn FnMut(Progress<'_>) + Send),
                     after_open: &mut Option<&'static str>| {
        observer(Progress::Done {
            step: "login",
            elapsed: started.elapsed(),
            detail: describe(credential),
        });
        *after_open = Some("logout");
    };
    match endpoint.protocol {
        Protocol::Imap => {
            let mut session = ImapSession::new(opened.connection, opened.capabilities);
            session.set_greeting_alert(opened.greeting.alert);
            session.set_alert_sink(account.alerts.clone());
            if let Err(error) = session.login(credential, plaintext).await {
                auth::goodbye_after_failed_login(&error, session.logout()).await;
                return Err(error);
            }
            logged_in(observer, after_open);
            session.logout().await
        }
        Protocol::Pop3 => {
            let mut session = Pop3Session::new(opened.connection, opened.capabilities);
            session.set_greeting(&opened.greeting);
            if let Err(error) = session.login(credential, plaintext).await {
                auth::goodbye_after_failed_login(&error, session.quit()).await;
                return Err(error);
            }
            logged_in(observer, after_open);
            session.quit().await
        }
        Protocol::Smtp => {
            let mut session = SmtpSession::new(opened.connection, opened.capabilities);
            if let Err(error) = session.login(credential, plaintext).await {
                auth::goodbye_after_failed_login(&error, session.logout()).await;
                return Err(error);
            }
            logged_in(observer, after_open);
            session.logout().await
        }
    }
}

/// The step a failure of the connection steps happened in, for people.
fn failed_step(error: &Error) -> &'static str {
    match error {
        Error::Transport(e) => e.step().map(|s| s.describe()).unwrap_or("setup"),
        _ => "login",
    }
}

/// "as alice@example.com with a password", or which OAuth2 sign-in gave the token.
fn describe(credential: &Credential) -> String {
    if let Some(oauth) = credential.oauth2_sign_in() {
        return format!(
            "as {} with the OAuth2 sign-in ({}, tokens in {})",
            credential.login(),
            oauth.provider().kind,
            oauth.store().location()
        );
    }
    let kind = credential.kind().describe();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("as {} with {article} {kind}", credential.login())
}

/// Sends a message to the account itself and waits until the incoming server has it; then
/// removes it again.
async fn send_test(
    account: &Account,
    arrival_timeout: Duration,
    observer: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(), Error> {
    let token = format!(
        "mailcat-check-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let address: crate::smtp::Address = account.email.parse()?;
    let message = format!(
        "From: {address}\r\nTo: {address}\r\nSubject: mailcat account check {token}\r\nMessage-ID: <{token}@mailcat.invalid>\r\n\r\n\
         This message was sent by mailcat's account check to see that mail arrives. It is removed again.\r\n"
    );
    let started = Instant::now();
    let envelope = Envelope {
        from: Some(address.clone()),
        to: vec![address],
        ..Default::default()
    };
    account
        .send(
            &envelope,
            &mut message.as_bytes(),
            &MessageInfo::of_bytes(message.as_bytes()),
        )
        .await?;
    observer(Progress::Done {
        step: "send",
        elapsed: started.elapsed(),
        detail: "accepted by the outgoing server".into(),
    });
    let started = Instant::now();
    let mut incoming = account.receive().await?;
    loop {
        // The test message is among the newest: a mailbox of a million is not listed whole.
        let mut listing = incoming.list_start(None, Some(ARRIVAL_WINDOW)).await?;
        let mut listed = Vec::new();
        while let Some(batch) = incoming
            .list_next(&mut listing, crate::ListDetail::Headers)
            .await?
        {
            listed.extend(batch);
        }
        if let Some(found) = listed.into_iter().find(|m| {
            m.headers
                .subject
                .as_deref()
                .is_some_and(|s| s.contains(&token))
        }) {
            observer(Progress::Done {
                step: "arrival",
                elapsed: started.elapsed(),
                detail: "the message is in the incoming mailbox (removed again)".into(),
            });
            incoming.delete(std::slice::from_ref(&found.id)).await?;
            return incoming.close().await;
        }
        if started.elapsed() > arrival_timeout {
            let host = incoming.endpoint().host.clone();
            incoming.abort().await;
            return Err(Error::Rejected {
                host,
                command: "the test message".into(),
                reply: format!(
                    "did not arrive within {} s; check the provider's spam folder and forwarding rules",
                    arrival_timeout.as_secs()
                )
                .into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How many of the newest messages the round trip looks through for its test message (mail
/// arriving meanwhile may come after it).
const ARRIVAL_WINDOW: u64 = 200;

/// A known provider's old host name: what to use today.
pub fn legacy_host_advice(endpoint: &Endpoint) -> Option<String> {
    let (provider, true) = providers::by_host(&endpoint.host)? else {
        return None;
    };
    let today = if endpoint.protocol == Protocol::Smtp {
        provider.outgoing()
    } else {
        provider.incoming()
    }
    .into_iter()
    .find(|e| e.protocol == endpoint.protocol)?;
    Some(format!(
        "{} is an old name of {}'s servers; today's {} server is {}",
        endpoint.host,
        provider.name,
        endpoint.protocol,
        today.url()
    ))
}

/// Advice that depends on what the user configured, not only on what happened: a refused
/// password at a provider that wants OAuth2 or an app password, a port of the other TLS mode.
pub fn advice(error: &Error, endpoint: &Endpoint, kind: CredentialKind) -> Option<String> {
    match error {
        // A refusal that already says "OAuth2" (535 5.7.139) needs no more.
        e if e.is_auth()
            && kind == CredentialKind::Password
            && !matches!(e, Error::BasicAuthDisabled { .. }) =>
        {
            let (provider, _) = providers::by_host(&endpoint.host)?;
            let mut advice = (provider.sign_in != SignIn::Password)
                .then(|| format!("{} takes {}", provider.name, provider.sign_in.advice()));
            if let Some(note) = provider.note {
                advice = Some(match advice {
                    Some(advice) => format!("{advice}; {note}"),
                    None => format!("{}: {note}", provider.name),
                });
            }
            advice
        }
        Error::Transport(mailcat_transport::Error::ConnectionRefused { .. }) => {
            match endpoint.protocol.security_of_port(endpoint.port) {
                Some(s) if s != endpoint.security => Some(format!(
                    "port {} is normally {} with {}; check the URL's scheme",
                    endpoint.port,
                    endpoint.protocol,
                    s.describe()
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(host: &str) -> Error {
        Error::AuthenticationFailed {
            host: host.into(),
            login: "me@example.com".into(),
            mechanism: "PLAIN",
            reply: "[AUTHENTICATIONFAILED] Invalid credentials".into(),
            hint: None,
        }
    }

    fn url(url: &str) -> Endpoint {
        Endpoint::parse_url(url).expect("URL")
    }

    #[test]
    fn a_refused_password_at_a_known_provider_says_how_it_signs_in() {
        let gmail = url("imaps://imap.gmail.com");
        let said =
            advice(&refused("imap.gmail.com"), &gmail, CredentialKind::Password).expect("advice");
        assert!(said.starts_with("Gmail takes OAuth2"), "{said}");
        assert!(said.contains("app password"), "{said}");
        // GMX takes passwords, but POP3 and IMAP must be switched on first.
        let gmx = url("imaps://imap.gmx.net");
        let said =
            advice(&refused("imap.gmx.net"), &gmx, CredentialKind::Password).expect("advice");
        assert!(said.contains("switched on"), "{said}");
        // Not for a token, and not for a server mailcat does not know.
        let token = advice(
            &refused("imap.gmail.com"),
            &gmail,
            CredentialKind::OAuth2Token,
        );
        assert_eq!(token, None);
        let other = url("imaps://mail.example.com");
        let unknown = advice(
            &refused("mail.example.com"),
            &other,
            CredentialKind::Password,
        );
        assert_eq!(unknown, None);
    }

    #[test]
    fn a_legacy_host_name_gets_todays() {
        assert_eq!(
            legacy_host_advice(&url("pop3s://pop3.live.com")).as_deref(),
            Some("pop3.live.com is an old name of Outlook.com's servers; today's POP3 server is pop3s://outlook.office365.com:995")
        );
        assert!(legacy_host_advice(&url("smtp://smtp.live.com:587"))
            .expect("advice")
            .ends_with("smtp://smtp-mail.outlook.com:587"));
        assert_eq!(
            legacy_host_advice(&url("imaps://outlook.office365.com")),
            None
        );
    }

    #[test]
    fn verdicts_sort_failures_for_apps() {
        assert_eq!(Verdict::of(&refused("x")), Verdict::Authentication);
        let certificate = Error::Transport(mailcat_transport::Error::Certificate {
            host: "x".into(),
            problem: mailcat_transport::CertificateProblem::Expired,
        });
        assert_eq!(Verdict::of(&certificate), Verdict::Certificate);
        let refused_connection = Error::Transport(mailcat_transport::Error::ConnectionRefused {
            host: "x".into(),
            port: 993,
            addr: "127.0.0.1:993".parse().expect("address"),
        });
        assert_eq!(Verdict::of(&refused_connection), Verdict::Network);
        let missing = Error::MissingExtension {
            host: "x".into(),
            extension: "DSN",
            needed_for: "delivery status notifications",
        };
        assert_eq!(Verdict::of(&missing), Verdict::MissingCapability);
        // A server whose own TLS set-up fails is the server's error, not the network.
        let aborted = Error::Transport(mailcat_transport::Error::TlsAbortedByServer {
            host: "x".into(),
            alert: Some("internal error".into()),
        });
        assert_eq!(Verdict::of(&aborted), Verdict::ServerError);
    }
}
