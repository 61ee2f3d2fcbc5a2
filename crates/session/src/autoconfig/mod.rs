//! Autoconfiguration: from an e-mail address to the servers that serve it (DESIGN.md), as a
//! mail client's "enter your address" step does.
//!
//! The stages, most trusted first:
//! 1. mailcat's [provider table](providers) (no network);
//! 2. the domain's autoconfig file, Thunderbird's format, over HTTPS only (`autoconfig.DOMAIN`,
//!    then `DOMAIN/.well-known/autoconfig`): the domain's owner speaks, authenticated by TLS;
//! 3. RFC 6186/8314 SRV records (`_imaps._tcp`, `_submissions._tcp` …);
//! 4. a provider of the table recognised by the domain's MX hosts (a custom domain at
//!    Microsoft 365 or Google);
//! 5. host names guessed from the domain and confirmed by connecting ([`probe`]).
//!
//! The table answers alone when it knows the domain. Otherwise stages 2 to 4 run at once, each
//! within [`Discovery::stage_timeout`], and each role (incoming, outgoing) is taken from the
//! most trusted stage that found one; guessing, within one more stage timeout, fills what is
//! still missing. So a whole run takes at most about twice the stage timeout. DNS answers are
//! not authenticated (no DNSSEC here): servers they name outside the address's domain come
//! with a note saying so (RFC 6186 §6).

pub(crate) mod dns;
pub mod probe;
pub mod providers;
pub mod xml;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailcat_transport::{Endpoint, Protocol, Security, Timeouts, TlsSettings};
use rustls::ClientConfig;

use self::providers::{OAuth2Preset, Provider, SignIn};
use crate::http::{self, HttpClient};

/// How to look: which TLS roots, which DNS server, where autoconfig files are, how long.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The trust for HTTPS fetches and probes.
    pub tls: TlsSettings,
    /// The DNS server for SRV and MX queries. Default: those of `/etc/resolv.conf`.
    pub dns_server: Option<SocketAddr>,
    /// Fetch autoconfig files from here instead of the domain's own hosts: `BASE/autoconfig.DOMAIN/…`
    /// and `BASE/DOMAIN/.well-known/…` (tests, or a company mirror). HTTPS only.
    pub url_base: Option<String>,
    /// The limit for each stage. Default: 8 s.
    pub stage_timeout: Duration,
    /// Guess host names and confirm them by connecting, when nothing else found a server.
    /// Default: yes.
    pub probe: bool,
}

impl Default for Discovery {
    fn default() -> Self {
        Self {
            tls: TlsSettings::default(),
            dns_server: None,
            url_base: None,
            stage_timeout: Duration::from_secs(8),
            probe: true,
        }
    }
}

/// A stage of the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// mailcat's table of providers.
    ProviderTable,
    /// The domain's autoconfig file over HTTPS.
    AutoconfigFile,
    /// DNS SRV records.
    Srv,
    /// A known provider behind the domain's MX hosts.
    MxMatch,
    /// Guessed host names, confirmed by connecting.
    Guess,
}

impl Stage {
    /// The stage, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ProviderTable => "provider table",
            Self::AutoconfigFile => "autoconfig file",
            Self::Srv => "DNS SRV records",
            Self::MxMatch => "MX hosts",
            Self::Guess => "guessed names",
        }
    }
}

/// What one stage did.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The stage.
    pub stage: Stage,
    /// Whether it found any server.
    pub found: bool,
    /// What it looked at and what came of it.
    pub detail: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// Where a server was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// mailcat's provider table.
    ProviderTable,
    /// An autoconfig file, at this URL.
    AutoconfigFile {
        /// The URL.
        url: String,
    },
    /// A DNS SRV record of this name.
    Srv {
        /// The record's name (`_imaps._tcp.example.com`).
        name: String,
    },
    /// The table's entry for the provider whose MX host this is.
    MxMatch {
        /// The MX host.
        exchange: String,
    },
    /// A guessed name that answered as a mail server.
    Guess,
}

impl Source {
    /// The source, for people.
    pub fn describe(&self) -> String {
        match self {
            Self::ProviderTable => "mailcat's provider table".into(),
            Self::AutoconfigFile { url } => format!("the autoconfig file {url}"),
            Self::Srv { name } => format!("the DNS SRV record {name}"),
            Self::MxMatch { exchange } => format!("the provider of the MX host {exchange}"),
            Self::Guess => "a guessed name that answered".into(),
        }
    }
}

/// A server found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Where and how to connect.
    pub endpoint: Endpoint,
    /// The login, when the source says it is not the address.
    pub login: Option<String>,
    /// Where it was found.
    pub source: Source,
}

/// The result of a search.
#[derive(Debug, Clone)]
pub struct Found {
    /// The address searched for.
    pub email: String,
    /// The provider's name, when known.
    pub provider: Option<String>,
    /// Incoming servers, preferred first.
    pub incoming: Vec<Server>,
    /// Outgoing servers, preferred first.
    pub outgoing: Vec<Server>,
    /// How to sign in, when known.
    pub sign_in: Option<SignIn>,
    /// The OAuth2 preset for mailcat's own sign-in, when the provider is one of the table's
    /// that has one (Outlook.com, Microsoft 365, Gmail).
    pub oauth2: Option<OAuth2Preset>,
    /// What the user must know (a setting to switch on, an unauthenticated DNS answer …).
    pub notes: Vec<String>,
    /// What each stage did, in order.
    pub attempts: Vec<Attempt>,
}

impl Found {
    /// True when an incoming and an outgoing server were found.
    pub fn is_complete(&self) -> bool {
        !self.incoming.is_empty() && !self.outgoing.is_empty()
    }
}

/// Why no search could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AutoconfigError {
    /// The address is not one.
    #[error("{0:?} is not an e-mail address: write it as name@example.com")]
    BadAddress(String),
    /// An internationalised domain: DNS and the autoconfig URLs need its ASCII form.
    #[error("the domain {0:?} is not in ASCII: give its ASCII form (xn--…), as your provider writes it in the server names")]
    NonAsciiDomain(String),
    /// The TLS settings cannot be used (an unreadable CA file).
    #[error(transparent)]
    Tls(#[from] mailcat_transport::Error),
}

/// What one stage found.
#[derive(Debug, Default)]
struct Finding {
    provider: Option<String>,
    incoming: Vec<Server>,
    outgoing: Vec<Server>,
    sign_in: Option<SignIn>,
    oauth2: Option<OAuth2Preset>,
    notes: Vec<String>,
}

/// Finds the servers for `email`.
pub async fn discover(email: &str, how: &Discovery) -> Result<Found, AutoconfigError> {
    let email = email.trim();
    let bad = || AutoconfigError::BadAddress(email.to_owned());
    let (_, domain) = email
        .rsplit_once('@')
        .filter(|(local, _)| !local.is_empty())
        .ok_or_else(bad)?;
    if !domain.is_ascii() {
        return Err(AutoconfigError::NonAsciiDomain(domain.to_owned()));
    }
    if dns::validate_name(domain).is_err() || !domain.contains('.') {
        return Err(bad());
    }
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut found = Found {
        email: email.to_owned(),
        provider: None,
        incoming: Vec::new(),
        outgoing: Vec::new(),
        sign_in: None,
        oauth2: None,
        notes: Vec::new(),
        attempts: Vec::new(),
    };

    let started = Instant::now();
    if let Some(provider) = providers::by_domain(&domain) {
        found.attempts.push(Attempt {
            stage: Stage::ProviderTable,
            found: true,
            detail: format!("{domain} is {}", provider.name),
            elapsed: started.elapsed(),
        });
        adopt(&mut found, from_provider(provider, Source::ProviderTable));
        return Ok(found);
    }
    found.attempts.push(Attempt {
        stage: Stage::ProviderTable,
        found: false,
        detail: format!("{domain} is not in mailcat's table"),
        elapsed: started.elapsed(),
    });

    let tls = how.tls.client_config()?;
    let resolver = match how.dns_server {
        Some(server) => dns::Resolver::with_server(server, how.stage_timeout),
        None => dns::Resolver::system(how.stage_timeout),
    };
    let limit = how.stage_timeout;
    let (file, srv, mx) = tokio::join!(
        timed(
            Stage::AutoconfigFile,
            limit,
            from_file(email, &domain, how, &tls)
        ),
        timed(Stage::Srv, limit, from_srv(&domain, &resolver)),
        timed(Stage::MxMatch, limit, from_mx(&domain, &resolver)),
    );
    for (attempt, finding) in [file, srv, mx] {
        found.attempts.push(attempt);
        adopt(&mut found, finding);
    }

    if how.probe && !found.is_complete() {
        let (attempt, finding) = timed(
            Stage::Guess,
            limit,
            from_guesses(&domain, &found, &tls, limit),
        )
        .await;
        found.attempts.push(attempt);
        adopt(&mut found, finding);
    }
    Ok(found)
}

/// Takes the roles `finding` fills that are still empty (stages come most trusted first).
fn adopt(found: &mut Found, finding: Finding) {
    let fills_incoming = found.incoming.is_empty() && !finding.incoming.is_empty();
    let fills_outgoing = found.outgoing.is_empty() && !finding.outgoing.is_empty();
    if !(fills_incoming || fills_outgoing) {
        return;
    }
    if fills_incoming {
        found.incoming = finding.incoming;
    }
    if fills_outgoing {
        found.outgoing = finding.outgoing;
    }
    if found.provider.is_none() {
        found.provider = finding.provider;
    }
    if found.sign_in.is_none() {
        found.sign_in = finding.sign_in;
    }
    if found.oauth2.is_none() {
        found.oauth2 = finding.oauth2;
    }
    for note in finding.notes {
        if !found.notes.contains(&note) {
            found.notes.push(note);
        }
    }
}

/// Runs a stage within `limit`, timing it. A stage that runs out of time found nothing.
async fn timed(
    stage: Stage,
    limit: Duration,
    work: impl std::future::Future<Output = (bool, String, Finding)>,
) -> (Attempt, Finding) {
    let started = Instant::now();
    let (found, detail, finding) = match tokio::time::timeout(limit, work).await {
        Ok(outcome) => outcome,
        Err(_) => (
            false,
            format!("no answer within {} s", limit.as_secs_f64()),
            Finding::default(),
        ),
    };
    let attempt = Attempt {
        stage,
        found,
        detail,
        elapsed: started.elapsed(),
    };
    (attempt, finding)
}

fn from_provider(provider: &Provider, source: Source) -> Finding {
    let servers = |endpoints: Vec<Endpoint>| {
        endpoints
            .into_iter()
            .map(|endpoint| Server {
                endpoint,
                login: None,
                source: source.clone(),
            })
            .collect()
    };
    Finding {
        provider: Some(provider.name.to_owned()),
        incoming: servers(provider.incoming()),
        outgoing: servers(provider.outgoing()),
        sign_in: Some(provider.sign_in),
        oauth2: provider.oauth2,
        notes: provider.note.map(str::to_owned).into_iter().collect(),
    }
}

/// The two places a domain publishes its autoconfig file.
fn autoconfig_urls(email: &str, domain: &str, base: Option<&str>) -> [String; 2] {
    // Everything but RFC 3986's unreserved characters is encoded.
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    let query = format!("?emailaddress={}", http::percent_encode(email, unreserved));
    match base {
        None => [
            format!("https://autoconfig.{domain}/mail/config-v1.1.xml{query}"),
            format!("https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml"),
        ],
        Some(base) => {
            let base = base.trim_end_matches('/');
            [
                format!("{base}/autoconfig.{domain}/mail/config-v1.1.xml{query}"),
                format!("{base}/{domain}/.well-known/autoconfig/mail/config-v1.1.xml"),
            ]
        }
    }
}

/// Fuzzing: [`autoconfig_urls`].
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_autoconfig_urls(email: &str, domain: &str, base: Option<&str>) -> [String; 2] {
    autoconfig_urls(email, domain, base)
}

/// The largest autoconfig file accepted.
const MAX_FILE: usize = 256 * 1024;

/// The body of a 200 answer: anything else is an error here.
async fn fetch_file(client: &HttpClient, url: &str) -> Result<Vec<u8>, http::HttpsError> {
    let response = client
        .get_accepting(url, "application/xml, text/xml")
        .await?;
    Ok(response.require_ok()?.body)
}

async fn from_file(
    email: &str,
    domain: &str,
    how: &Discovery,
    tls: &Arc<ClientConfig>,
) -> (bool, String, Finding) {
    let [first, second] = autoconfig_urls(email, domain, how.url_base.as_deref());
    let client = HttpClient::new(Arc::clone(tls))
        .with_timeout(how.stage_timeout)
        .with_max_body(MAX_FILE);
    let (a, b) = tokio::join!(fetch_file(&client, &first), fetch_file(&client, &second));
    let mut details = Vec::new();
    for (url, fetched) in [(&first, a), (&second, b)] {
        let body = match fetched {
            Ok(body) => body,
            Err(error) => {
                details.push(error.to_string());
                continue;
            }
        };
        let config = match xml::parse(&body, email) {
            Ok(config) => config,
            Err(error) => {
                details.push(format!("{url}: {error}"));
                continue;
            }
        };
        let source = Source::AutoconfigFile { url: url.clone() };
        let servers = |list: &[xml::ConfigServer]| -> Vec<Server> {
            list.iter()
                .map(|s| Server {
                    endpoint: Endpoint::new(s.protocol, s.host.clone(), s.security)
                        .with_port(s.port),
                    login: s.username.clone().filter(|u| u != email),
                    source: source.clone(),
                })
                .collect()
        };
        let incoming = servers(&config.incoming);
        let outgoing = servers(&config.outgoing);
        if incoming.is_empty() && outgoing.is_empty() {
            details.push(format!("{url}: names no usable server"));
            continue;
        }
        let only_oauth2 = config.incoming.iter().chain(&config.outgoing).all(|s| {
            !s.authentication.is_empty() && s.authentication.iter().all(|a| a == "OAuth2")
        });
        details.push(format!("{url}: found"));
        let finding = Finding {
            provider: config.display_name.clone(),
            incoming,
            outgoing,
            sign_in: only_oauth2.then_some(SignIn::OAuth2Only),
            oauth2: None,
            notes: config.skipped.clone(),
        };
        return (true, details.join("; "), finding);
    }
    (false, details.join("; "), Finding::default())
}

/// The SRV names of RFC 6186 and RFC 8314, implicit TLS first within each role.
const SRV_SERVICES: [(&str, Protocol, Security); 6] = [
    ("_imaps._tcp", Protocol::Imap, Security::ImplicitTls),
    ("_imap._tcp", Protocol::Imap, Security::StartTls),
    ("_pop3s._tcp", Protocol::Pop3, Security::ImplicitTls),
    ("_pop3._tcp", Protocol::Pop3, Security::StartTls),
    ("_submissions._tcp", Protocol::Smtp, Security::ImplicitTls),
    ("_submission._tcp", Protocol::Smtp, Security::StartTls),
];

async fn from_srv(domain: &str, resolver: &dns::Resolver) -> (bool, String, Finding) {
    let names = SRV_SERVICES.map(|(service, _, _)| format!("{service}.{domain}"));
    let (a, b, c, d, e, f) = tokio::join!(
        resolver.srv(&names[0]),
        resolver.srv(&names[1]),
        resolver.srv(&names[2]),
        resolver.srv(&names[3]),
        resolver.srv(&names[4]),
        resolver.srv(&names[5]),
    );
    let mut finding = Finding::default();
    let mut details = Vec::new();
    let mut elsewhere = Vec::new();
    for (((_, protocol, security), name), answer) in
        SRV_SERVICES.iter().zip(&names).zip([a, b, c, d, e, f])
    {
        let records = match answer {
            Ok(records) => records,
            Err(error) => {
                details.push(format!("{name}: {error}"));
                continue;
            }
        };
        for record in records {
            if record.target.is_empty() {
                details.push(format!("{name}: the domain says it offers no such service"));
                continue;
            }
            let outside =
                record.target != domain && !record.target.ends_with(&format!(".{domain}"));
            if outside && !elsewhere.contains(&record.target) {
                elsewhere.push(record.target.clone());
            }
            let server = Server {
                endpoint: Endpoint::new(*protocol, record.target.clone(), *security)
                    .with_port(record.port),
                login: None,
                source: Source::Srv { name: name.clone() },
            };
            details.push(format!("{name}: {}", server.endpoint.url()));
            match protocol {
                Protocol::Smtp => finding.outgoing.push(server),
                _ => finding.incoming.push(server),
            }
        }
    }
    if !elsewhere.is_empty() {
        finding.notes.push(format!(
            "DNS (not authenticated) sends {domain}'s mail to {}: make sure that is your provider",
            elsewhere.join(", ")
        ));
    }
    let any = !(finding.incoming.is_empty() && finding.outgoing.is_empty());
    if details.is_empty() {
        details.push(format!("none under {domain}"));
    }
    (any, details.join("; "), finding)
}

async fn from_mx(domain: &str, resolver: &dns::Resolver) -> (bool, String, Finding) {
    let exchanges = match resolver.mx(domain).await {
        Ok(exchanges) => exchanges,
        Err(error) => return (false, error.to_string(), Finding::default()),
    };
    if exchanges.is_empty() {
        return (
            false,
            format!("{domain} has no MX record"),
            Finding::default(),
        );
    }
    for mx in &exchanges {
        if let Some(provider) = providers::by_mx(&mx.exchange) {
            let detail = format!("{} is {}", mx.exchange, provider.name);
            let source = Source::MxMatch {
                exchange: mx.exchange.clone(),
            };
            return (true, detail, from_provider(provider, source));
        }
    }
    let names: Vec<&str> = exchanges.iter().map(|mx| mx.exchange.as_str()).collect();
    (
        false,
        format!("{} belong to no provider mailcat knows", names.join(", ")),
        Finding::default(),
    )
}

async fn from_guesses(
    domain: &str,
    found: &Found,
    tls: &Arc<ClientConfig>,
    limit: Duration,
) -> (bool, String, Finding) {
    let (incoming, outgoing) = probe::guesses(domain);
    let mut candidates = Vec::new();
    if found.incoming.is_empty() {
        candidates.extend(incoming);
    }
    if found.outgoing.is_empty() {
        candidates.extend(outgoing);
    }
    let timeouts = Timeouts::uniform(limit);
    let outcomes = probe::confirm(&candidates, Arc::clone(tls), &timeouts, limit).await;
    let mut finding = Finding::default();
    let mut answered = Vec::new();
    for (endpoint, outcome) in outcomes {
        if outcome.is_ok() {
            answered.push(endpoint.url());
            let server = Server {
                endpoint,
                login: None,
                source: Source::Guess,
            };
            match server.endpoint.protocol {
                Protocol::Smtp => finding.outgoing.push(server),
                _ => finding.incoming.push(server),
            }
        }
    }
    let detail = if answered.is_empty() {
        format!(
            "none of {} guesses ({} …) answered as a mail server",
            candidates.len(),
            candidates
                .iter()
                .take(2)
                .map(|c| c.host.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("answered: {}", answered.join(", "))
    };
    (!answered.is_empty(), detail, finding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoconfig_urls_carry_the_address_encoded() {
        let [first, second] = autoconfig_urls("a+b@example.com", "example.com", None);
        assert_eq!(
            first,
            "https://autoconfig.example.com/mail/config-v1.1.xml?emailaddress=a%2Bb%40example.com"
        );
        assert_eq!(
            second,
            "https://example.com/.well-known/autoconfig/mail/config-v1.1.xml"
        );
        let [first, _] =
            autoconfig_urls("a@example.com", "example.com", Some("https://127.0.0.1:1/"));
        assert!(
            first.starts_with("https://127.0.0.1:1/autoconfig.example.com/mail/"),
            "{first}"
        );
    }

    #[tokio::test]
    async fn a_table_domain_needs_no_network() {
        // No DNS server exists at this address: the table must answer alone.
        let how = Discovery {
            dns_server: Some("127.0.0.1:9".parse().expect("address")),
            stage_timeout: Duration::from_millis(1),
            ..Discovery::default()
        };
        let found = discover("me@outlook.com", &how).await.expect("found");
        assert_eq!(found.provider.as_deref(), Some("Outlook.com"));
        assert_eq!(found.incoming[0].endpoint.host, "outlook.office365.com");
        assert_eq!(found.incoming[0].source, Source::ProviderTable);
        assert_eq!(found.sign_in, Some(SignIn::OAuth2Only));
        let preset = found.oauth2.expect("Outlook.com has an OAuth2 preset");
        assert_eq!(
            (preset.kind, preset.tenant),
            (
                crate::oauth2::provider::ProviderKind::Microsoft,
                Some("consumers")
            )
        );
        assert_eq!(found.attempts.len(), 1);
    }

    #[tokio::test]
    async fn not_an_address_is_refused() {
        mailcat_tests::assert_matches!(
            discover("me@müller.de", &Discovery::default()).await,
            Err(AutoconfigError::NonAsciiDomain(_))
        );
        for bad in [
            "nobody",
            "@example.com",
            "me@",
            "me@exa mple.com",
            "me@localhost",
        ] {
            assert!(
                matches!(
                    discover(bad, &Discovery::default()).await,
                    Err(AutoconfigError::BadAddress(_))
                ),
                "{bad}"
            );
        }
    }
}
