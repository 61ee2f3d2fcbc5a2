//! Thunderbird's autoconfig XML, the "clientConfig" format
//! (<https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat>).
//!
//! Only what mailcat can use is read: the provider's id, name and domains, and its IMAP, POP3
//! and SMTP servers with TLS. Servers without TLS, of other types (Exchange, JMAP …), or with a
//! bad host name or port are left out, each with a line in [`ProviderConfig::skipped`] that
//! says why. Unknown elements are ignored wherever they are; a DOCTYPE is refused, so no entity
//! is ever defined by the document.

use mailcat_transport::{Protocol, Security};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;
use quick_xml::XmlVersion;

/// One server from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigServer {
    /// IMAP or POP3 (incoming), SMTP (outgoing).
    pub protocol: Protocol,
    /// The host name, placeholders substituted.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Implicit TLS (`SSL`) or STARTTLS; never plaintext.
    pub security: Security,
    /// The user name to log in with, placeholders substituted, if the file gives one.
    pub username: Option<String>,
    /// The `<authentication>` values as written (`password-cleartext`, `OAuth2` …), in order.
    pub authentication: Vec<String>,
}

/// What a provider's file says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderConfig {
    /// The `id` of `<emailProvider>` (usually the provider's main domain).
    pub id: Option<String>,
    /// `<displayName>`.
    pub display_name: Option<String>,
    /// The `<domain>` entries: the domains this configuration serves.
    pub domains: Vec<String>,
    /// Incoming servers (IMAP, POP3), the preferred first.
    pub incoming: Vec<ConfigServer>,
    /// Outgoing servers (SMTP), the preferred first.
    pub outgoing: Vec<ConfigServer>,
    /// What was left out, and why, one line each.
    pub skipped: Vec<String>,
}

/// Why a file could not be read; Display says what is wrong (and where, if known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The bytes are not UTF-8.
    #[error("the autoconfig file is not UTF-8 (invalid byte at offset {position})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        position: usize,
    },
    /// The document is not well-formed XML.
    #[error("the autoconfig file is not well-formed XML (at byte {position}): {message}")]
    Malformed {
        /// Byte offset where the problem was found.
        position: u64,
        /// What is wrong.
        message: String,
    },
    /// The document has a `<!DOCTYPE …>`: refused, so it cannot define entities.
    #[error("the autoconfig file has a DOCTYPE (at byte {position}), which is refused")]
    Doctype {
        /// Byte offset of the DOCTYPE.
        position: u64,
    },
    /// The document has no element at all.
    #[error("the autoconfig file has no root element")]
    NoRoot,
    /// The root element is not `<clientConfig>`.
    #[error("the autoconfig file's root element is <{found}>, not <clientConfig>")]
    NotClientConfig {
        /// The root element's name.
        found: String,
    },
}

/// Reads a clientConfig document for the address `email` (placeholders substituted).
///
/// A document without `<emailProvider>` or without any usable server is not an error: the
/// result then has empty lists (and [`ProviderConfig::skipped`] says what was left out).
pub fn parse(xml: &[u8], email: &str) -> Result<ProviderConfig, XmlError> {
    let (bom, xml) = match xml.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (3, rest),
        None => (0, xml),
    };
    let text = std::str::from_utf8(xml).map_err(|e| XmlError::NotUtf8 {
        position: bom + e.valid_up_to(),
    })?;
    let mut reader = Reader::from_str(text);
    {
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
    }
    let mut state = State {
        placeholders: Placeholders::new(email),
        ..State::default()
    };
    loop {
        // Where the event starts, for the errors found here.
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| XmlError::Malformed {
            position: reader.error_position(),
            message: e.to_string(),
        })?;
        match event {
            Event::Start(start) => state.start(&start, position)?,
            Event::End(_) => state.end(),
            Event::Text(text) => state.text(&text.xml10_content(), position)?,
            Event::CData(cdata) => state.text(&cdata.xml10_content(), position)?,
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference, position)?;
                state.text(&resolved, position)?;
            }
            Event::DocType(_) => return Err(XmlError::Doctype { position }),
            // `expand_empty_elements` turns `<a/>` into Start and End.
            Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = state.stack.last() {
        return Err(XmlError::Malformed {
            position: reader.buffer_position(),
            message: format!("the document ends inside <{open}>"),
        });
    }
    if !state.seen_root {
        return Err(XmlError::NoRoot);
    }
    Ok(state.config)
}

/// `&name;` or `&#N;` as text: the five predefined entities and character references only.
fn resolve_reference(reference: &BytesRef<'_>, position: u64) -> Result<String, XmlError> {
    let malformed = |message: String| XmlError::Malformed { position, message };
    match reference.resolve_char_ref() {
        Ok(Some(c)) => Ok(c.to_string()),
        Ok(None) => match quick_xml::escape::resolve_predefined_entity(reference) {
            Some(text) => Ok(text.to_owned()),
            None => Err(malformed(format!(
                "unknown entity &{};",
                reference.as_ref() as &str
            ))),
        },
        Err(e) => Err(malformed(e.to_string())),
    }
}

/// Where the reader is and what it has gathered.
#[derive(Default)]
struct State {
    placeholders: Placeholders,
    /// Names of the open elements, the root first.
    stack: Vec<String>,
    seen_root: bool,
    /// Inside the first `<emailProvider>` (later ones are ignored).
    in_provider: bool,
    providers_seen: usize,
    /// The element whose text is being gathered, and the text so far.
    capture: Option<Capture>,
    server: Option<ServerDraft>,
    config: ProviderConfig,
}

struct Capture {
    depth: usize,
    field: Field,
    text: String,
}

#[derive(Clone, Copy)]
enum Field {
    Domain,
    DisplayName,
    Hostname,
    Port,
    SocketType,
    Username,
    Authentication,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Incoming,
    Outgoing,
}

struct ServerDraft {
    direction: Direction,
    kind: Option<String>,
    hostname: Option<String>,
    port: Option<String>,
    socket_type: Option<String>,
    username: Option<String>,
    authentication: Vec<String>,
}

impl State {
    fn start(&mut self, start: &BytesStart<'_>, position: u64) -> Result<(), XmlError> {
        let name = start.local_name().as_ref().to_owned();
        let depth = self.stack.len();
        if depth == 0 {
            if self.seen_root {
                return Err(XmlError::Malformed {
                    position,
                    message: format!("a second root element <{name}>"),
                });
            }
            self.seen_root = true;
            if name != "clientConfig" {
                return Err(XmlError::NotClientConfig { found: name });
            }
        }
        // Paths that matter: clientConfig/emailProvider/{domain, displayName, incomingServer,
        // outgoingServer}, and the servers' children. Everything else is ignored, with all
        // it contains.
        match (depth, name.as_str()) {
            (1, "emailProvider") => {
                self.providers_seen += 1;
                if self.providers_seen == 1 {
                    self.in_provider = true;
                    self.config.id = attribute(start, "id", position)?;
                } else {
                    self.config
                        .skipped
                        .push("a second <emailProvider> in the file: ignored".to_owned());
                }
            }
            (2, _) if self.in_provider => match name.as_str() {
                "domain" => self.capture(depth, Field::Domain),
                "displayName" => self.capture(depth, Field::DisplayName),
                "incomingServer" | "outgoingServer" => {
                    self.server = Some(ServerDraft {
                        direction: if name == "incomingServer" {
                            Direction::Incoming
                        } else {
                            Direction::Outgoing
                        },
                        kind: attribute(start, "type", position)?,
                        hostname: None,
                        port: None,
                        socket_type: None,
                        username: None,
                        authentication: Vec::new(),
                    });
                }
                _ => {}
            },
            (3, _) if self.in_provider && self.server.is_some() => {
                let field = match name.as_str() {
                    "hostname" => Some(Field::Hostname),
                    "port" => Some(Field::Port),
                    "socketType" => Some(Field::SocketType),
                    "username" => Some(Field::Username),
                    "authentication" => Some(Field::Authentication),
                    _ => None,
                };
                if let Some(field) = field {
                    self.capture(depth, field);
                }
            }
            _ => {}
        }
        self.stack.push(name);
        Ok(())
    }

    fn capture(&mut self, depth: usize, field: Field) {
        self.capture = Some(Capture {
            depth: depth + 1,
            field,
            text: String::new(),
        });
    }

    fn text(&mut self, text: &str, position: u64) -> Result<(), XmlError> {
        if self.stack.is_empty() {
            if text.trim().is_empty() {
                return Ok(());
            }
            return Err(XmlError::Malformed {
                position,
                message: "text outside the root element".to_owned(),
            });
        }
        if let Some(capture) = &mut self.capture {
            // Text of elements nested in the captured one is not part of its value.
            if capture.depth == self.stack.len() {
                capture.text.push_str(text);
            }
        }
        Ok(())
    }

    fn end(&mut self) {
        let depth = self.stack.len();
        self.stack.pop();
        if let Some(capture) = self.capture.take_if(|c| c.depth == depth) {
            self.store(capture.field, capture.text.trim().to_owned());
        }
        match depth {
            2 => self.in_provider = false,
            3 => {
                if let Some(draft) = self.server.take() {
                    self.finish_server(draft);
                }
            }
            _ => {}
        }
    }

    fn store(&mut self, field: Field, value: String) {
        let keep = |slot: &mut Option<String>, value: String| {
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value);
            }
        };
        match field {
            Field::Domain => {
                if !value.is_empty() {
                    self.config.domains.push(value);
                }
            }
            Field::DisplayName => keep(&mut self.config.display_name, value),
            Field::Hostname | Field::Port | Field::SocketType | Field::Username => {
                let Some(server) = &mut self.server else {
                    return;
                };
                let slot = match field {
                    Field::Hostname => &mut server.hostname,
                    Field::Port => &mut server.port,
                    Field::SocketType => &mut server.socket_type,
                    _ => &mut server.username,
                };
                keep(slot, value);
            }
            Field::Authentication => {
                if let Some(server) = &mut self.server {
                    if !value.is_empty() {
                        server.authentication.push(value);
                    }
                }
            }
        }
    }

    /// Checks a server and adds it to the configuration, or says in `skipped` why not.
    fn finish_server(&mut self, draft: ServerDraft) {
        match self.check_server(draft) {
            Ok(server) if server.protocol == Protocol::Smtp => self.config.outgoing.push(server),
            Ok(server) => self.config.incoming.push(server),
            Err(why) => self.config.skipped.push(why),
        }
    }

    fn check_server(&self, draft: ServerDraft) -> Result<ConfigServer, String> {
        let element = match draft.direction {
            Direction::Incoming => "incomingServer",
            Direction::Outgoing => "outgoingServer",
        };
        let kind = draft.kind.unwrap_or_default();
        let host = draft
            .hostname
            .as_deref()
            .map(|h| self.placeholders.substitute(h));
        let shown_host = host.as_deref().unwrap_or("(no hostname)");
        let protocol = match (draft.direction, kind.to_ascii_lowercase().as_str()) {
            (Direction::Incoming, "imap") => Protocol::Imap,
            (Direction::Incoming, "pop3") => Protocol::Pop3,
            (Direction::Outgoing, "smtp") => Protocol::Smtp,
            _ => {
                return Err(format!(
                    "{element} of type \"{kind}\" ({shown_host}): not IMAP, POP3 or SMTP: left out"
                ));
            }
        };
        let proto = protocol.name().to_ascii_lowercase();
        let Some(host) = host else {
            return Err(format!("{proto} server without a <hostname>: left out"));
        };
        if let Err(why) = check_hostname(&host) {
            return Err(format!("{proto} server {host:?}: {why}: left out"));
        }
        let port = match draft.port.as_deref().map(str::parse::<u16>) {
            Some(Ok(port)) if port != 0 => port,
            Some(_) => {
                let written = draft.port.unwrap_or_default();
                return Err(format!(
                    "{proto} {host}: port {written:?} is not a number from 1 to 65535: left out"
                ));
            }
            None => return Err(format!("{proto} {host}: no <port>: left out")),
        };
        let socket_type = draft.socket_type.unwrap_or_default();
        let security = if socket_type.eq_ignore_ascii_case("SSL") {
            Security::ImplicitTls
        } else if socket_type.eq_ignore_ascii_case("STARTTLS") {
            Security::StartTls
        } else if socket_type.eq_ignore_ascii_case("plain") {
            return Err(format!(
                "{proto} {host}:{port} without TLS (socketType {socket_type}): left out"
            ));
        } else if socket_type.is_empty() {
            return Err(format!("{proto} {host}:{port}: no <socketType>: left out"));
        } else {
            return Err(format!(
                "{proto} {host}:{port}: unknown socketType {socket_type:?}: left out"
            ));
        };
        Ok(ConfigServer {
            protocol,
            host,
            port,
            security,
            username: draft
                .username
                .map(|u| self.placeholders.substitute(&u))
                .filter(|u| !u.is_empty()),
            authentication: draft.authentication,
        })
    }
}

/// The value of attribute `name` of `start`, entities resolved.
fn attribute(
    start: &BytesStart<'_>,
    name: &str,
    position: u64,
) -> Result<Option<String>, XmlError> {
    let malformed = |message: String| XmlError::Malformed { position, message };
    for attr in start.attributes() {
        let attr: Attribute<'_> = attr.map_err(|e| malformed(e.to_string()))?;
        if attr.key.local_name().as_ref() == name {
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| malformed(e.to_string()))?;
            return Ok(Some(value.trim().to_owned()));
        }
    }
    Ok(None)
}

/// A host name mailcat will connect to: ASCII letters, digits, hyphens and dots, in labels of
/// 1 to 63 characters, at most 253 in all (one final dot allowed).
fn check_hostname(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("empty host name");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err("not a host name (only ASCII letters, digits, '-' and '.' are allowed)");
    }
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if trimmed.len() > 253 {
        return Err("host name longer than 253 characters");
    }
    if trimmed
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err("host name with an empty or over-long label");
    }
    Ok(())
}

/// The values of `%EMAILADDRESS%`, `%EMAILLOCALPART%` and `%EMAILDOMAIN%`.
#[derive(Default)]
struct Placeholders {
    address: String,
    local_part: String,
    domain: String,
}

impl Placeholders {
    fn new(email: &str) -> Self {
        let (local_part, domain) = email.rsplit_once('@').unwrap_or((email, ""));
        Self {
            address: email.to_owned(),
            local_part: local_part.to_owned(),
            domain: domain.to_owned(),
        }
    }

    /// `text` with every placeholder replaced, in one pass (a value that itself contains a
    /// placeholder is not substituted again).
    fn substitute(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            let found = [
                ("%EMAILADDRESS%", &self.address),
                ("%EMAILLOCALPART%", &self.local_part),
                ("%EMAILDOMAIN%", &self.domain),
            ]
            .into_iter()
            .find(|(placeholder, _)| tail.starts_with(placeholder));
            match found {
                Some((placeholder, value)) => {
                    out.push_str(value);
                    rest = &tail[placeholder.len()..];
                }
                None => {
                    out.push('%');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In the style of a Thunderbird ISPDB entry, for a fictional provider.
    const EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- Fictional provider, written like the ISPDB's files -->
<clientConfig version="1.1">
  <emailProvider id="postwerk.example">
    <domain>postwerk.example</domain>
    <domain>pw-mail.example</domain>
    <displayName>Postwerk Mail &amp; Co</displayName>
    <displayShortName>Postwerk</displayShortName>
    <incomingServer type="imap">
      <hostname>imap.postwerk.example</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>OAuth2</authentication>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.postwerk.example</hostname>
      <port>995</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
      <pop3>
        <leaveMessagesOnServer>true</leaveMessagesOnServer>
        <downloadOnBiff>true</downloadOnBiff>
      </pop3>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.postwerk.example</hostname>
      <port>143</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.postwerk.example</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <authentication>OAuth2</authentication>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname><![CDATA[smtp.postwerk.example]]></hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
    <documentation url="https://postwerk.example/help/imap">
      <descr lang="en">Generic settings page</descr>
      <descr lang="de">Allgemeine Beschreibung der Einstellungen</descr>
    </documentation>
  </emailProvider>
  <oAuth2>
    <issuer>login.postwerk.example</issuer>
    <scope>https://mail.postwerk.example/</scope>
    <authURL>https://login.postwerk.example/oauth2/auth</authURL>
    <tokenURL>https://login.postwerk.example/oauth2/token</tokenURL>
  </oAuth2>
  <webMail>
    <loginPage url="https://webmail.postwerk.example/" />
  </webMail>
</clientConfig>
"#;

    const ALICE: &str = "alice@postwerk.example";

    fn server(
        protocol: Protocol,
        host: &str,
        port: u16,
        security: Security,
        username: &str,
        authentication: &[&str],
    ) -> ConfigServer {
        ConfigServer {
            protocol,
            host: host.to_owned(),
            port,
            security,
            username: Some(username.to_owned()),
            authentication: authentication.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// A document with one emailProvider holding `servers`.
    fn wrap(servers: &str) -> String {
        format!(
            "<clientConfig version=\"1.1\"><emailProvider id=\"example.com\">\
             <domain>example.com</domain>{servers}</emailProvider></clientConfig>"
        )
    }

    fn imap(host: &str, port: &str, socket_type: &str) -> String {
        format!(
            "<incomingServer type=\"imap\"><hostname>{host}</hostname><port>{port}</port>\
             <socketType>{socket_type}</socketType></incomingServer>"
        )
    }

    #[test]
    fn realistic_file_is_read_fully_in_order() {
        let config = parse(EXAMPLE.as_bytes(), ALICE).expect("parses");
        let both = ["OAuth2", "password-cleartext"];
        let password = ["password-cleartext"];
        assert_eq!(
            config,
            ProviderConfig {
                id: Some("postwerk.example".into()),
                display_name: Some("Postwerk Mail & Co".into()),
                domains: vec!["postwerk.example".into(), "pw-mail.example".into()],
                incoming: vec![
                    server(
                        Protocol::Imap,
                        "imap.postwerk.example",
                        993,
                        Security::ImplicitTls,
                        ALICE,
                        &both
                    ),
                    server(
                        Protocol::Pop3,
                        "pop.postwerk.example",
                        995,
                        Security::ImplicitTls,
                        ALICE,
                        &password
                    ),
                    server(
                        Protocol::Imap,
                        "imap.postwerk.example",
                        143,
                        Security::StartTls,
                        "alice",
                        &password
                    ),
                ],
                outgoing: vec![
                    server(
                        Protocol::Smtp,
                        "smtp.postwerk.example",
                        465,
                        Security::ImplicitTls,
                        ALICE,
                        &both
                    ),
                    server(
                        Protocol::Smtp,
                        "smtp.postwerk.example",
                        587,
                        Security::StartTls,
                        ALICE,
                        &password
                    ),
                ],
                skipped: vec![],
            }
        );
    }

    #[test]
    fn placeholders_are_substituted_in_hostname_and_username() {
        let xml = wrap(
            "<incomingServer type=\"imap\"><hostname>imap.%EMAILDOMAIN%</hostname>\
             <port>993</port><socketType>SSL</socketType>\
             <username>%EMAILLOCALPART%+mailcat@%EMAILDOMAIN%</username></incomingServer>\
             <outgoingServer type=\"smtp\"><hostname>smtp.%EMAILDOMAIN%</hostname>\
             <port>465</port><socketType>SSL</socketType>\
             <username>%EMAILADDRESS%</username></outgoingServer>",
        );
        let config = parse(xml.as_bytes(), "bob@mail.example.org").expect("parses");
        assert_eq!(config.incoming[0].host, "imap.mail.example.org");
        assert_eq!(
            config.incoming[0].username.as_deref(),
            Some("bob+mailcat@mail.example.org")
        );
        assert_eq!(config.outgoing[0].host, "smtp.mail.example.org");
        assert_eq!(
            config.outgoing[0].username.as_deref(),
            Some("bob@mail.example.org")
        );
    }

    #[test]
    fn substitution_is_one_pass_and_keeps_unknown_percent_signs() {
        let p = Placeholders::new("%EMAILDOMAIN%@x.example");
        assert_eq!(p.substitute("%EMAILLOCALPART%"), "%EMAILDOMAIN%");
        assert_eq!(p.substitute("100% %REALNAME% %"), "100% %REALNAME% %");
    }

    #[test]
    fn plain_socket_type_is_left_out_with_the_reason() {
        let xml = wrap(
            &(imap("mail.example.com", "143", "plain") + &imap("mail.example.com", "993", "SSL")),
        );
        let config = parse(xml.as_bytes(), "a@example.com").expect("parses");
        assert_eq!(config.incoming.len(), 1);
        assert_eq!(config.incoming[0].port, 993);
        assert_eq!(
            config.skipped,
            ["imap mail.example.com:143 without TLS (socketType plain): left out"]
        );
    }

    #[test]
    fn only_plain_servers_gives_ok_with_empty_lists() {
        let xml = wrap(&imap("mail.example.com", "143", "plain"));
        let config = parse(xml.as_bytes(), "a@example.com").expect("parses");
        assert!(config.incoming.is_empty() && config.outgoing.is_empty());
        assert_eq!(config.skipped.len(), 1);
    }

    #[test]
    fn exchange_and_other_types_are_left_out() {
        let xml = wrap(
            "<incomingServer type=\"exchange\"><hostname>outlook.example.com</hostname>\
             <port>443</port><socketType>SSL</socketType>\
             <owaURL>https://outlook.example.com/owa/</owaURL></incomingServer>\
             <incomingServer type=\"jmap\"><hostname>jmap.example.com</hostname></incomingServer>\
             <outgoingServer type=\"imap\"><hostname>x.example.com</hostname></outgoingServer>",
        );
        let config = parse(xml.as_bytes(), "a@example.com").expect("parses");
        assert!(config.incoming.is_empty() && config.outgoing.is_empty());
        assert_eq!(config.skipped.len(), 3, "{:?}", config.skipped);
        assert!(
            config.skipped[0].contains("\"exchange\""),
            "{}",
            config.skipped[0]
        );
        assert!(
            config.skipped[1].contains("\"jmap\""),
            "{}",
            config.skipped[1]
        );
        assert!(config.skipped[2].starts_with("outgoingServer of type \"imap\""));
    }

    #[test]
    fn bad_ports_are_left_out() {
        for port in ["0", "65536", "-1", "abc", "", "99999999999"] {
            let xml = wrap(&imap("mail.example.com", port, "SSL"));
            let config = parse(xml.as_bytes(), "a@example.com").expect("parses");
            assert!(config.incoming.is_empty(), "port {port:?} accepted");
            assert_eq!(config.skipped.len(), 1, "port {port:?}");
            assert!(config.skipped[0].contains("port"), "{}", config.skipped[0]);
        }
        let xml = wrap(&imap("mail.example.com", " 65535 ", "SSL"));
        let config = parse(xml.as_bytes(), "a@example.com").expect("parses");
        assert_eq!(config.incoming[0].port, 65535);
    }

    #[test]
    fn bad_hostnames_are_left_out() {
        for host in [
            "mail example.com",
            "mail.example.com/x",
            "ex\u{e4}mple.com",
            "a..b",
            ".x",
        ] {
            let xml = wrap(&imap(host, "993", "SSL"));
            let config = parse(xml.as_bytes(), "a@example.com").expect("parses");
            assert!(config.incoming.is_empty(), "host {host:?} accepted");
            assert!(config.skipped[0].contains("left out"));
        }
        // A placeholder that brings bad characters is caught after substitution.
        let xml = wrap(&imap("%EMAILDOMAIN%", "993", "SSL"));
        let config = parse(xml.as_bytes(), "a@evil.example/../x").expect("parses");
        assert!(config.incoming.is_empty());
    }

    #[test]
    fn unknown_elements_are_ignored_even_nested() {
        let xml = wrap(
            "<enable visiturl=\"https://example.com/enable\"><instruction>Turn IMAP on\
             <hostname>wrong.example.com</hostname></instruction></enable>\
             <incomingServer type=\"imap\"><extra><hostname>wrong.example.com</hostname>\
             </extra><hostname>right.example.com<b>no</b></hostname><port>993</port>\
             <socketType>SSL</socketType></incomingServer>",
        );
        let config = parse(xml.as_bytes(), "a@example.com").expect("parses");
        assert_eq!(config.incoming.len(), 1);
        assert_eq!(config.incoming[0].host, "right.example.com");
        assert_eq!(config.incoming[0].username, None);
    }

    #[test]
    fn no_email_provider_is_ok_and_empty() {
        let config = parse(b"<clientConfig version=\"1.1\"/>", "a@example.com").expect("ok");
        assert_eq!(config, ProviderConfig::default());
    }

    #[test]
    fn garbage_is_an_error() {
        for garbage in [
            &b"this is not xml"[..],
            b"",
            b"   ",
            b"<clientConfig><emailProvider></clientConfig>",
            b"<clientConfig>&bogus;</clientConfig>",
            b"<clientConfig></clientConfig><clientConfig/>",
            b"\xff\xfe<\x00c\x00",
            b"{\"json\": true}",
        ] {
            let result = parse(garbage, "a@example.com");
            assert!(
                result.is_err(),
                "{:?} gave {result:?}",
                String::from_utf8_lossy(garbage)
            );
        }
    }

    #[test]
    fn root_other_than_client_config_is_an_error() {
        let err = parse(b"<html><body>Not found</body></html>", "a@example.com").unwrap_err();
        assert_eq!(
            err,
            XmlError::NotClientConfig {
                found: "html".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "the autoconfig file's root element is <html>, not <clientConfig>"
        );
    }

    #[test]
    fn doctype_is_refused() {
        let xml = b"<?xml version=\"1.0\"?>\n<!DOCTYPE clientConfig [\n\
            <!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>\n\
            <clientConfig><emailProvider id=\"&lol2;\"/></clientConfig>";
        let err = parse(xml, "a@example.com").unwrap_err();
        assert!(matches!(err, XmlError::Doctype { .. }), "{err:?}");
        assert!(err.to_string().contains("DOCTYPE"));
    }

    #[test]
    fn malformed_errors_say_where() {
        let err = parse(b"<clientConfig>\n<a></b></clientConfig>", "a@example.com").unwrap_err();
        let XmlError::Malformed { position, .. } = err else {
            panic!("{err:?}");
        };
        assert!(position > 0);
        assert!(err.to_string().contains("at byte"), "{err}");
    }

    #[test]
    fn character_references_and_bom_are_handled() {
        let xml = "\u{feff}<clientConfig><emailProvider id=\"a&amp;b\">\
                   <displayName>Caf&#233; &#x4D;ail</displayName></emailProvider></clientConfig>";
        let config = parse(xml.as_bytes(), "a@example.com").expect("parses");
        assert_eq!(config.id.as_deref(), Some("a&b"));
        assert_eq!(config.display_name.as_deref(), Some("Café Mail"));
    }

    #[test]
    fn every_prefix_of_a_file_is_handled_without_panic() {
        let bytes = EXAMPLE.as_bytes();
        for len in 0..=bytes.len() {
            let _ = parse(&bytes[..len], ALICE);
        }
        // A prefix that stops inside an element is an error, not a half-read configuration.
        let cut = EXAMPLE.find("<port>995").expect("in the file");
        assert!(parse(&bytes[..cut], ALICE).is_err());
    }
}
