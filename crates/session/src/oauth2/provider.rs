//! OAuth2 providers: where Microsoft and Google sign a user in for IMAP, POP3 and SMTP, which
//! scopes mail needs, and a custom provider whose endpoints are all given.
//!
//! What the user configured is a [`ProviderSettings`]; [`ProviderSettings::resolve`] turns it
//! into a [`Provider`]: the preset filled in, the overrides applied, every endpoint checked
//! (https only, a host, no whitespace). The flows only ever see a resolved provider.
//!
//! mailcat ships no client ID of its own. A client ID names an application to the provider:
//! one shared by every mailcat user would put all their sign-ins under one registration, one
//! quota and one set of terms, which the provider can suspend for everyone at once, and Google
//! requires an app using the restricted `https://mail.google.com/` scope for the public to pass
//! a security assessment. Each user registers their own in a few minutes ([`README_SECTION`]).
//!
//! The presets follow the providers' documentation:
//! - Microsoft identity platform, authorization code flow (endpoints, tenants, PKCE S256,
//!   `login_hint` optional):
//!   <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>;
//!   device authorization grant (`/devicecode`, personal accounts under `/consumers`):
//!   <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code>;
//!   the scopes for IMAP, POP and SMTP and SASL XOAUTH2:
//!   <https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth>;
//!   redirect URIs (`http://localhost`, any port):
//!   <https://learn.microsoft.com/en-us/entra/identity-platform/reply-url>;
//!   no revocation endpoint, only server-side revocation:
//!   <https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens>.
//! - Google, desktop apps (loopback redirect, PKCE, a client secret that is "assumed not to be
//!   confidential"): <https://developers.google.com/identity/protocols/oauth2/native-app>;
//!   endpoints as in <https://accounts.google.com/.well-known/openid-configuration>;
//!   the mail scope: <https://developers.google.com/workspace/gmail/imap/xoauth2-protocol>;
//!   the device flow's limited scopes, which exclude it:
//!   <https://developers.google.com/identity/protocols/oauth2/limited-input-device#allowedscopes>.

use std::fmt;
use std::str::FromStr;

use crate::autoconfig::providers;

/// The README section that tells a user how to register a client ID; messages point there.
pub const README_SECTION: &str = "README.md#oauth2-sign-in";

/// The Microsoft identity platform's host; the tenant follows it in every endpoint's path
/// (`/{tenant}/oauth2/v2.0/authorize`, `/token`, `/devicecode`): see
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow> and
/// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code>.
const MICROSOFT_LOGIN: &str = "https://login.microsoftonline.com";

/// Microsoft's scopes for mail clients: IMAP, POP and SMTP AUTH on Exchange Online and
/// Outlook.com, with the Outlook resource in each ("make sure to specify the full scopes"), and
/// `offline_access` for a refresh token. One access token serves all three protocols. See
/// <https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth>.
pub const MICROSOFT_SCOPES: &[&str] = &[
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/POP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
];

/// The tenant a Microsoft provider uses when none is configured: work, school and personal
/// accounts alike (`consumers` is better for an Outlook.com address: see
/// [`ProviderSettings::default_tenant_for`]).
pub const MICROSOFT_DEFAULT_TENANT: &str = "common";

/// Google's authorization endpoint, for desktop apps:
/// <https://developers.google.com/identity/protocols/oauth2/native-app>.
const GOOGLE_AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/v2/auth";
/// Google's token endpoint (same page; also `token_endpoint` in
/// <https://accounts.google.com/.well-known/openid-configuration>).
const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";
/// Google's device authorization endpoint, of no use for mail (see [`GOOGLE_NO_DEVICE_FLOW`]):
/// <https://developers.google.com/identity/protocols/oauth2/limited-input-device>.
const GOOGLE_DEVICE: &str = "https://oauth2.googleapis.com/device/code";
/// Google's revocation endpoint (RFC 7009): `revocation_endpoint` in
/// <https://accounts.google.com/.well-known/openid-configuration>.
const GOOGLE_REVOKE: &str = "https://oauth2.googleapis.com/revoke";

/// The one scope Gmail's IMAP, POP and SMTP accept ("The scope for IMAP, POP, and SMTP access
/// is `https://mail.google.com/`":
/// <https://developers.google.com/workspace/gmail/imap/xoauth2-protocol>). Google lists it as
/// restricted: <https://support.google.com/cloud/answer/13464325>.
pub const GOOGLE_MAIL_SCOPE: &str = "https://mail.google.com/";

/// Why Google's device flow cannot sign in to Gmail: it "supports a limited set of scopes"
/// (<https://developers.google.com/identity/protocols/oauth2/limited-input-device#allowedscopes>),
/// and its endpoint answers `invalid_scope` ("Invalid device flow scope") for the mail scope.
const GOOGLE_NO_DEVICE_FLOW: &str = "Google's device flow allows only a short list of scopes, \
     and https://mail.google.com/ (IMAP, POP and SMTP) is not on it: sign in with the browser \
     instead (it can run on another machine's browser only through an SSH tunnel to the \
     redirect port)";

/// Why a custom provider without `device_url` cannot use the device flow.
const CUSTOM_NO_DEVICE_URL: &str =
    "no device_url is configured for this provider: give the device authorization endpoint, \
     or sign in with the browser";

/// Which preset, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderKind {
    /// Outlook.com, Hotmail, Live and MSN personal accounts, and Microsoft 365 (Exchange
    /// Online) work or school accounts: the Microsoft identity platform.
    Microsoft,
    /// Gmail and Google Workspace.
    Google,
    /// Any other provider: every endpoint and the scopes are given.
    Custom,
}

impl ProviderKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [Self; 3] = [Self::Microsoft, Self::Google, Self::Custom];

    /// The name in a configuration file (`microsoft`, `google`, `custom`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Microsoft => "microsoft",
            Self::Google => "google",
            Self::Custom => "custom",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = ProviderError;

    /// `microsoft`, `google` or `custom`, in any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| ProviderError::UnknownKind(name.to_owned()))
    }
}

/// Whether a provider lets mail be signed in to with the device flow (RFC 8628).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceFlowSupport {
    /// It does (Microsoft needs "Allow public client flows" switched on in the app
    /// registration).
    Supported,
    /// It does not; the browser sign-in is the way.
    Unsupported {
        /// Why, for the user.
        why: &'static str,
    },
}

/// What the user configured (the CLI's `[accounts.NAME.oauth2]`): a preset, the client ID,
/// and any overrides. Nothing here is checked until [`ProviderSettings::resolve`].
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// The preset.
    pub kind: ProviderKind,
    /// The client (application) ID the user registered with the provider.
    pub client_id: String,
    /// The client secret, for providers that issue one to desktop apps (Google).
    pub client_secret: Option<String>,
    /// Microsoft only: `consumers`, `organizations`, `common`, or a tenant ID or domain.
    pub tenant: Option<String>,
    /// The authorization endpoint (required for `custom`, an override otherwise).
    pub authorize_url: Option<String>,
    /// The token endpoint (required for `custom`, an override otherwise).
    pub token_url: Option<String>,
    /// The device authorization endpoint (RFC 8628).
    pub device_url: Option<String>,
    /// The revocation endpoint (RFC 7009).
    pub revoke_url: Option<String>,
    /// The scopes to ask for (required for `custom`; replaces the preset's otherwise).
    pub scopes: Option<Vec<String>>,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| Redacted),
            )
            .field("tenant", &self.tenant)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("device_url", &self.device_url)
            .field("revoke_url", &self.revoke_url)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Shows in place of a client secret.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl ProviderSettings {
    /// A preset with a client ID and no overrides.
    pub fn new(kind: ProviderKind, client_id: impl Into<String>) -> Self {
        Self {
            kind,
            client_id: client_id.into(),
            client_secret: None,
            tenant: None,
            authorize_url: None,
            token_url: None,
            device_url: None,
            revoke_url: None,
            scopes: None,
        }
    }

    /// The Microsoft tenant to use for `email` when none is configured: `consumers` for an
    /// Outlook.com, Hotmail, Live or MSN address (those are personal Microsoft accounts, and
    /// `consumers` works both for an app registered for personal accounts only and for one
    /// registered for all accounts, where `common` fails with the former), `common` otherwise
    /// (a custom domain can be a work or school account). The domains are those of the
    /// autoconfig provider table.
    pub fn default_tenant_for(email: &str) -> &'static str {
        let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain);
        providers::by_domain(domain)
            .and_then(|provider| provider.oauth2)
            .filter(|preset| preset.kind == ProviderKind::Microsoft)
            .and_then(|preset| preset.tenant)
            .unwrap_or(MICROSOFT_DEFAULT_TENANT)
    }

    /// Fills in the preset, applies the overrides and checks everything: the client ID (and
    /// Google's client secret) are there and are not placeholders, every endpoint is an
    /// `https://` URL with a host, the tenant and the scopes are well formed.
    pub fn resolve(&self) -> Result<Provider, ProviderError> {
        let client_id = check_client_id(self.kind, &self.client_id)?;
        let client_secret = match &self.client_secret {
            Some(secret) => Some(check_client_secret(secret)?),
            None if self.kind == ProviderKind::Google => {
                return Err(ProviderError::MissingClientSecret);
            }
            None => None,
        };
        if self.tenant.is_some() && self.kind != ProviderKind::Microsoft {
            return Err(ProviderError::TenantNotApplicable { kind: self.kind });
        }
        let preset = match self.kind {
            ProviderKind::Microsoft => {
                let tenant = match &self.tenant {
                    Some(tenant) => check_tenant(tenant)?,
                    None => MICROSOFT_DEFAULT_TENANT.to_owned(),
                };
                let endpoint =
                    |leaf: &str| format!("{MICROSOFT_LOGIN}/{tenant}/oauth2/v2.0/{leaf}");
                Preset {
                    authorize_url: Some(endpoint("authorize")),
                    token_url: Some(endpoint("token")),
                    device_url: Some(endpoint("devicecode")),
                    revoke_url: None,
                    scopes: Some(MICROSOFT_SCOPES.iter().map(|s| (*s).to_owned()).collect()),
                    tenant: Some(tenant),
                }
            }
            ProviderKind::Google => Preset {
                authorize_url: Some(GOOGLE_AUTHORIZE.to_owned()),
                token_url: Some(GOOGLE_TOKEN.to_owned()),
                device_url: Some(GOOGLE_DEVICE.to_owned()),
                revoke_url: Some(GOOGLE_REVOKE.to_owned()),
                scopes: Some(vec![GOOGLE_MAIL_SCOPE.to_owned()]),
                tenant: None,
            },
            ProviderKind::Custom => Preset::default(),
        };

        let authorize_url = required(
            "authorize_url",
            "authorization endpoint",
            &self.authorize_url,
            preset.authorize_url,
        )?;
        let token_url = required(
            "token_url",
            "token endpoint",
            &self.token_url,
            preset.token_url,
        )?;
        let device_url = optional("device_url", &self.device_url, preset.device_url)?;
        let revoke_url = optional("revoke_url", &self.revoke_url, preset.revoke_url)?;
        let scopes = match &self.scopes {
            Some(scopes) => check_scopes(scopes)?,
            None => preset.scopes.ok_or(ProviderError::MissingScopes)?,
        };

        let device_flow = match (self.kind, &device_url) {
            (ProviderKind::Google, _) if scopes.iter().any(|s| s == GOOGLE_MAIL_SCOPE) => {
                DeviceFlowSupport::Unsupported {
                    why: GOOGLE_NO_DEVICE_FLOW,
                }
            }
            (_, None) => DeviceFlowSupport::Unsupported {
                why: CUSTOM_NO_DEVICE_URL,
            },
            (_, Some(_)) => DeviceFlowSupport::Supported,
        };
        let extra_authorize_params = match self.kind {
            // Installed apps get a refresh token anyway; `access_type=offline` says so
            // explicitly, and `prompt=consent` makes Google issue a new refresh token when the
            // user signs in again (it sends one only on the first consent otherwise).
            ProviderKind::Google => vec![
                ("access_type".to_owned(), "offline".to_owned()),
                ("prompt".to_owned(), "consent".to_owned()),
            ],
            ProviderKind::Microsoft | ProviderKind::Custom => Vec::new(),
        };
        Ok(Provider {
            kind: self.kind,
            client_id,
            client_secret,
            tenant: preset.tenant,
            authorize_url,
            token_url,
            device_url,
            revoke_url,
            scopes,
            extra_authorize_params,
            device_flow,
            redirect_host: match self.kind {
                ProviderKind::Microsoft => "localhost",
                ProviderKind::Google | ProviderKind::Custom => "127.0.0.1",
            },
        })
    }
}

/// A preset's endpoints and scopes before the overrides.
#[derive(Default)]
struct Preset {
    authorize_url: Option<String>,
    token_url: Option<String>,
    device_url: Option<String>,
    revoke_url: Option<String>,
    scopes: Option<Vec<String>>,
    tenant: Option<String>,
}

/// A provider ready for the flows: every URL checked, the scopes and extra parameters known.
#[derive(Clone, PartialEq, Eq)]
pub struct Provider {
    /// The preset it came from.
    pub kind: ProviderKind,
    /// The client ID.
    pub client_id: String,
    /// The client secret, sent with the client ID when present.
    pub client_secret: Option<String>,
    /// The Microsoft tenant in the endpoints (for `oauth2 status`); `None` for the others.
    pub tenant: Option<String>,
    /// The authorization endpoint, `https://`.
    pub authorize_url: String,
    /// The token endpoint, `https://`.
    pub token_url: String,
    /// The device authorization endpoint, `https://`, if the provider has one.
    pub device_url: Option<String>,
    /// The revocation endpoint (RFC 7009), `https://`, if the provider offers one (Microsoft
    /// does not: its refresh tokens end by expiry or by the user's or an admin's action).
    pub revoke_url: Option<String>,
    /// The scopes to ask for.
    pub scopes: Vec<String>,
    /// Extra query parameters for the authorization request (Google: `access_type=offline`,
    /// `prompt=consent`).
    pub extra_authorize_params: Vec<(String, String)>,
    /// Whether the device flow can sign in to mail at this provider.
    pub device_flow: DeviceFlowSupport,
    /// The host of the loopback redirect URI: `localhost` for Microsoft, which matches a
    /// registered `http://localhost` whatever the port but does not let `http://127.0.0.1` be
    /// registered in its portal; `127.0.0.1` for the others, as RFC 8252 §8.3 recommends. The
    /// listener binds 127.0.0.1 either way.
    pub redirect_host: &'static str,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| Redacted),
            )
            .field("tenant", &self.tenant)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("device_url", &self.device_url)
            .field("revoke_url", &self.revoke_url)
            .field("scopes", &self.scopes)
            .field("extra_authorize_params", &self.extra_authorize_params)
            .field("device_flow", &self.device_flow)
            .field("redirect_host", &self.redirect_host)
            .finish()
    }
}

impl Provider {
    /// The loopback redirect URI for a listener on `port` (`http://localhost:PORT` for
    /// Microsoft, `http://127.0.0.1:PORT` otherwise; no path, as registered).
    pub fn redirect_uri(&self, port: u16) -> String {
        format!("http://{}:{port}", self.redirect_host)
    }

    /// The scopes as the `scope` parameter wants them: space-separated (RFC 6749 §3.3).
    pub fn scope_param(&self) -> String {
        self.scopes.join(" ")
    }
}

/// The provider preset for a mail server's host name, so that a configured account can be
/// offered the right preset: Outlook.com's and Microsoft 365's servers (today's and the retired
/// names), Gmail's (any `gmail.com` or `googlemail.com` host).
pub fn provider_for_host(host: &str) -> Option<ProviderKind> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if let Some(kind) = providers::by_host(&host).and_then(|(provider, _)| provider.oauth2) {
        return Some(kind.kind);
    }
    let under = |domain: &str| {
        host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.'))
    };
    if ["office365.com", "outlook.com"].into_iter().any(under) {
        Some(ProviderKind::Microsoft)
    } else if ["gmail.com", "googlemail.com"].into_iter().any(under) {
        Some(ProviderKind::Google)
    } else {
        None
    }
}

/// Why the provider settings cannot be used; each message says how to fix them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider name is not one of the presets.
    #[error(
        "unknown OAuth2 provider {0:?}: choose \"microsoft\" (Outlook.com, Hotmail, Live, \
         Microsoft 365), \"google\" (Gmail, Google Workspace) or \"custom\" (you give every \
         endpoint and the scopes)"
    )]
    UnknownKind(String),
    /// No client ID.
    #[error(
        "no client_id for the {kind} provider: mailcat ships none, so register your own \
         (a few steps, see {README_SECTION}) and give its client ID"
    )]
    MissingClientId {
        /// The preset.
        kind: ProviderKind,
    },
    /// A value is still the placeholder that `mailcat autoconfig` prints.
    #[error(
        "{field} is still the placeholder {value:?}: replace it with the value the provider \
         showed when you registered mailcat (see {README_SECTION})"
    )]
    Placeholder {
        /// `client_id` or `client_secret`.
        field: &'static str,
        /// The placeholder.
        value: String,
    },
    /// The client ID has characters no client ID has.
    #[error(
        "client_id {0:?} has spaces or control characters: copy the client ID exactly as the \
         provider shows it"
    )]
    BadClientId(String),
    /// Google, and no client secret.
    #[error(
        "the google provider needs client_secret as well: Google gives a \"Desktop app\" client \
         a secret that must be sent with its client ID (for a desktop app it is not treated as \
         confidential); copy it from the Google Cloud console's Clients page (see {README_SECTION})"
    )]
    MissingClientSecret,
    /// The client secret has characters no secret has (the secret is not repeated).
    #[error(
        "client_secret is empty or has spaces or control characters: copy it exactly as the \
         provider shows it"
    )]
    BadClientSecret,
    /// A custom provider without a required endpoint.
    #[error("the custom provider needs {field}: give the https:// URL of the provider's {what}")]
    MissingEndpoint {
        /// The setting (`authorize_url`, `token_url`).
        field: &'static str,
        /// What it is, for people.
        what: &'static str,
    },
    /// A custom provider without scopes.
    #[error(
        "the custom provider needs scopes: give the scopes your provider documents for IMAP, \
         POP and SMTP access, e.g. scopes = [\"mail\", \"offline_access\"]"
    )]
    MissingScopes,
    /// `scopes = []`.
    #[error("scopes is empty: give at least one scope, or leave scopes out to use the preset's")]
    EmptyScopes,
    /// A scope that cannot go on the wire as one scope token.
    #[error(
        "scope {0:?} is not a scope: each is one word of printable ASCII without quotes or \
         backslashes (RFC 6749 §3.3); list several as separate strings"
    )]
    BadScope(String),
    /// An `http://` endpoint.
    #[error(
        "{field} = {url:?} is refused: OAuth2 endpoints must be https:// (authorization codes, \
         client secrets and tokens travel there); only the redirect back to this machine is \
         http://"
    )]
    InsecureEndpoint {
        /// The setting.
        field: &'static str,
        /// The URL as given.
        url: String,
    },
    /// An endpoint that is not a usable URL.
    #[error("{field} = {url:?} is not a usable endpoint: {why}")]
    BadUrl {
        /// The setting.
        field: &'static str,
        /// The URL as given.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A tenant that is none of the aliases, a GUID or a domain.
    #[error(
        "tenant {0:?} is not a Microsoft tenant: use \"consumers\" (Outlook.com, Hotmail, Live), \
         \"organizations\" (Microsoft 365 work or school accounts), \"common\" (both), or your \
         directory's tenant ID or domain (contoso.onmicrosoft.com)"
    )]
    BadTenant(String),
    /// A tenant for a provider other than Microsoft.
    #[error("tenant is a Microsoft setting and the {kind} provider has none: remove it")]
    TenantNotApplicable {
        /// The preset.
        kind: ProviderKind,
    },
}

/// A placeholder as `mailcat autoconfig` prints it: `<…>`.
fn is_placeholder(value: &str) -> bool {
    value.starts_with('<') && value.ends_with('>')
}

fn check_client_id(kind: ProviderKind, client_id: &str) -> Result<String, ProviderError> {
    let client_id = client_id.trim();
    if client_id.is_empty() {
        return Err(ProviderError::MissingClientId { kind });
    }
    if is_placeholder(client_id) {
        return Err(ProviderError::Placeholder {
            field: "client_id",
            value: client_id.to_owned(),
        });
    }
    if client_id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ProviderError::BadClientId(client_id.to_owned()));
    }
    Ok(client_id.to_owned())
}

fn check_client_secret(secret: &str) -> Result<String, ProviderError> {
    let secret = secret.trim();
    if is_placeholder(secret) {
        return Err(ProviderError::Placeholder {
            field: "client_secret",
            value: secret.to_owned(),
        });
    }
    if secret.is_empty() || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ProviderError::BadClientSecret);
    }
    Ok(secret.to_owned())
}

/// A tenant alias (lower-cased), or a tenant ID (a GUID) or domain as given: ASCII letters,
/// digits, `-` and `.` only, so that it cannot change the endpoint's path or query.
fn check_tenant(tenant: &str) -> Result<String, ProviderError> {
    let trimmed = tenant.trim();
    let bad = || ProviderError::BadTenant(tenant.to_owned());
    for alias in ["consumers", "organizations", "common"] {
        if trimmed.eq_ignore_ascii_case(alias) {
            return Ok(alias.to_owned());
        }
    }
    let well_formed = !trimmed.is_empty()
        && trimmed.len() <= 253
        && trimmed.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if well_formed {
        Ok(trimmed.to_owned())
    } else {
        Err(bad())
    }
}

/// Scope tokens as RFC 6749 §3.3 defines them: `1*( %x21 / %x23-5B / %x5D-7E )`.
fn check_scopes(scopes: &[String]) -> Result<Vec<String>, ProviderError> {
    if scopes.is_empty() {
        return Err(ProviderError::EmptyScopes);
    }
    scopes
        .iter()
        .map(|scope| {
            let token = scope.trim();
            let nqchar =
                |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
            if !token.is_empty() && token.bytes().all(nqchar) {
                Ok(token.to_owned())
            } else {
                Err(ProviderError::BadScope(scope.clone()))
            }
        })
        .collect()
}

/// The override if given, else the preset's value; checked; an error naming the setting if
/// neither exists (a custom provider).
fn required(
    field: &'static str,
    what: &'static str,
    given: &Option<String>,
    preset: Option<String>,
) -> Result<String, ProviderError> {
    optional(field, given, preset)?.ok_or(ProviderError::MissingEndpoint { field, what })
}

/// The override if given, else the preset's value, checked.
fn optional(
    field: &'static str,
    given: &Option<String>,
    preset: Option<String>,
) -> Result<Option<String>, ProviderError> {
    match given {
        Some(url) => check_endpoint(field, url).map(Some),
        None => Ok(preset),
    }
}

/// An endpoint URL: `https://`, a host (a name, an IPv4 address or a bracketed IPv6 address),
/// an optional port in range, no user information, no fragment (RFC 6749 §3.1, §3.2), no
/// whitespace or control characters. The loopback exception of RFC 8252 covers the redirect
/// URI only, never these.
fn check_endpoint(field: &'static str, url: &str) -> Result<String, ProviderError> {
    let url = url.trim();
    let bad = |why: &'static str| ProviderError::BadUrl {
        field,
        url: url.to_owned(),
        why,
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it has spaces or control characters"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("it has no scheme: write it as https://host/path"));
    };
    if scheme.eq_ignore_ascii_case("http") {
        return Err(ProviderError::InsecureEndpoint {
            field,
            url: url.to_owned(),
        });
    }
    if !scheme.eq_ignore_ascii_case("https") {
        return Err(bad("only https:// endpoints are used"));
    }
    if url.contains('#') {
        return Err(bad("an endpoint has no #fragment (RFC 6749 §3.1)"));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad(
            "a user name or password in the URL is refused; client_id and client_secret are \
             settings of their own",
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(bad("its IPv6 address lacks the closing ]"));
        };
        if inside.is_empty()
            || !inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(bad("its IPv6 address is malformed"));
        }
        match after {
            "" => (inside, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (inside, Some(port)),
                None => return Err(bad("something follows its IPv6 address")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("it has no host"));
    }
    if !authority.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(bad(
            "its host has characters a host name cannot have (give an internationalised name in \
             its ASCII form, xn--…)",
        ));
    }
    if let Some(port) = port {
        let in_range = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !in_range {
            return Err(bad("its port is not a number from 1 to 65535"));
        }
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn microsoft(tenant: Option<&str>) -> ProviderSettings {
        ProviderSettings {
            tenant: tenant.map(str::to_owned),
            ..ProviderSettings::new(
                ProviderKind::Microsoft,
                "00001111-aaaa-2222-bbbb-3333cccc4444",
            )
        }
    }

    fn google() -> ProviderSettings {
        ProviderSettings {
            client_secret: Some("GOCSPX-abc".into()),
            ..ProviderSettings::new(ProviderKind::Google, "123-abc.apps.googleusercontent.com")
        }
    }

    fn custom() -> ProviderSettings {
        ProviderSettings {
            authorize_url: Some("https://id.example.com/authorize".into()),
            token_url: Some("https://id.example.com/token".into()),
            scopes: Some(vec!["mail".into(), "offline_access".into()]),
            ..ProviderSettings::new(ProviderKind::Custom, "mailcat")
        }
    }

    #[test]
    fn provider_names_parse_and_an_unknown_one_lists_the_choices() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
        }
        assert_eq!(" Google ".parse::<ProviderKind>(), Ok(ProviderKind::Google));
        let error = "gmail".parse::<ProviderKind>().expect_err("not a preset");
        assert_eq!(error, ProviderError::UnknownKind("gmail".into()));
        let said = error.to_string();
        for kind in ProviderKind::ALL {
            assert!(said.contains(&format!("\"{kind}\"")), "{said}");
        }
    }

    #[test]
    fn the_microsoft_preset_has_the_documented_endpoints_and_scopes() {
        let provider = microsoft(Some("consumers")).resolve().expect("resolves");
        assert_eq!(
            provider.authorize_url,
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize"
        );
        assert_eq!(
            provider.token_url,
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/token"
        );
        assert_eq!(
            provider.device_url.as_deref(),
            Some("https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode")
        );
        assert_eq!(
            provider.revoke_url, None,
            "Microsoft has no revocation endpoint"
        );
        assert_eq!(
            provider.scope_param(),
            "https://outlook.office.com/IMAP.AccessAsUser.All \
             https://outlook.office.com/POP.AccessAsUser.All \
             https://outlook.office.com/SMTP.Send offline_access"
        );
        assert_eq!(provider.device_flow, DeviceFlowSupport::Supported);
        assert!(provider.extra_authorize_params.is_empty());
        assert_eq!(provider.client_secret, None);
        assert_eq!(provider.tenant.as_deref(), Some("consumers"));
        assert_eq!(provider.redirect_uri(53_682), "http://localhost:53682");
    }

    #[test]
    fn microsoft_tenants_are_substituted_and_checked() {
        let endpoint = |tenant: Option<&str>| microsoft(tenant).resolve().map(|p| p.token_url);
        assert_eq!(
            endpoint(None).expect("default"),
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        assert_eq!(
            endpoint(Some(" Organizations ")).expect("alias, any case"),
            "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
        );
        for tenant in [
            "8eaef023-2b34-4da1-9baa-8bc8c9d6a490",
            "contoso.onmicrosoft.com",
        ] {
            assert_eq!(
                endpoint(Some(tenant)).expect("a tenant ID or domain"),
                format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
            );
        }
        for bad in [
            "",
            "common/../evil",
            "contoso.com?x=1",
            "a b",
            "x#y",
            "-contoso.com",
            "contoso..com",
            "münchen.de",
            "%2e%2e",
        ] {
            let error = endpoint(Some(bad)).expect_err(bad);
            assert_eq!(error, ProviderError::BadTenant(bad.into()), "{bad}");
            assert!(error.to_string().contains("consumers"), "{error}");
        }
    }

    #[test]
    fn the_default_tenant_follows_the_address() {
        for personal in [
            "me@outlook.com",
            "me@Hotmail.com",
            "me@live.com",
            "me@msn.com",
            "me@hotmail.co.uk",
        ] {
            assert_eq!(
                ProviderSettings::default_tenant_for(personal),
                "consumers",
                "{personal}"
            );
        }
        for other in ["me@contoso.com", "me@gmail.com", "nobody", ""] {
            assert_eq!(
                ProviderSettings::default_tenant_for(other),
                "common",
                "{other}"
            );
        }
    }

    #[test]
    fn the_google_preset_has_the_documented_endpoints_and_no_device_flow_for_mail() {
        let provider = google().resolve().expect("resolves");
        assert_eq!(
            provider.authorize_url,
            "https://accounts.google.com/o/oauth2/v2/auth"
        );
        assert_eq!(provider.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(
            provider.revoke_url.as_deref(),
            Some("https://oauth2.googleapis.com/revoke")
        );
        assert_eq!(
            provider.device_url.as_deref(),
            Some("https://oauth2.googleapis.com/device/code")
        );
        assert_eq!(provider.scopes, vec!["https://mail.google.com/".to_owned()]);
        assert_eq!(provider.client_secret.as_deref(), Some("GOCSPX-abc"));
        assert_eq!(
            provider.extra_authorize_params,
            vec![
                ("access_type".to_owned(), "offline".to_owned()),
                ("prompt".to_owned(), "consent".to_owned()),
            ]
        );
        assert_eq!(provider.tenant, None);
        assert_eq!(provider.redirect_uri(1), "http://127.0.0.1:1");
        // Not an error at resolve time: the flow says why when the device flow is asked for.
        let DeviceFlowSupport::Unsupported { why } = provider.device_flow else {
            panic!("Google's device flow excludes the mail scope: {provider:?}");
        };
        assert!(
            why.contains("https://mail.google.com/") && why.contains("browser"),
            "{why}"
        );
    }

    #[test]
    fn google_needs_its_client_secret() {
        let settings = ProviderSettings {
            client_secret: None,
            ..google()
        };
        let error = settings.resolve().expect_err("no secret");
        assert_eq!(error, ProviderError::MissingClientSecret);
        assert!(error.to_string().contains(README_SECTION), "{error}");
        // Microsoft's desktop clients are public: no secret is needed.
        assert!(microsoft(None).resolve().is_ok());
    }

    #[test]
    fn a_missing_or_placeholder_client_id_says_where_to_get_one() {
        for empty in ["", "   "] {
            let settings = ProviderSettings::new(ProviderKind::Microsoft, empty);
            let error = settings.resolve().expect_err("no client ID");
            assert_eq!(
                error,
                ProviderError::MissingClientId {
                    kind: ProviderKind::Microsoft
                }
            );
            let said = error.to_string();
            assert!(
                said.contains("ships none") && said.contains(README_SECTION),
                "{said}"
            );
        }
        let placeholder = ProviderSettings::new(ProviderKind::Microsoft, "<your client id>");
        let error = placeholder.resolve().expect_err("placeholder");
        assert!(
            matches!(
                error,
                ProviderError::Placeholder {
                    field: "client_id",
                    ..
                }
            ),
            "{error:?}"
        );
        let settings = ProviderSettings {
            client_secret: Some("<your client secret>".into()),
            ..google()
        };
        mailcat_tests::assert_matches!(
            settings.resolve(),
            Err(ProviderError::Placeholder {
                field: "client_secret",
                ..
            })
        );
        for bad in ["abc def", "abc\u{1b}[31m", "a\tb"] {
            let settings = ProviderSettings::new(ProviderKind::Google, bad);
            assert_eq!(
                settings.resolve(),
                Err(ProviderError::BadClientId(bad.into())),
                "{bad:?}"
            );
        }
        // Surrounding spaces from a copy and paste are dropped.
        let settings = ProviderSettings::new(ProviderKind::Microsoft, " abc ");
        assert_eq!(settings.resolve().expect("trimmed").client_id, "abc");
    }

    #[test]
    fn a_bad_client_secret_is_refused_without_being_repeated() {
        for bad in ["", "two words", "x\ny"] {
            let settings = ProviderSettings {
                client_secret: Some(bad.into()),
                ..google()
            };
            let error = settings.resolve().expect_err("bad secret");
            assert_eq!(error, ProviderError::BadClientSecret);
            if !bad.is_empty() {
                assert!(!error.to_string().contains(bad), "{error}");
            }
        }
    }

    #[test]
    fn a_custom_provider_needs_its_endpoints_and_scopes() {
        let provider = custom().resolve().expect("complete");
        assert_eq!(provider.authorize_url, "https://id.example.com/authorize");
        assert_eq!(provider.scope_param(), "mail offline_access");
        assert_eq!(
            provider.device_flow,
            DeviceFlowSupport::Unsupported {
                why: CUSTOM_NO_DEVICE_URL
            }
        );
        let with_device = ProviderSettings {
            device_url: Some("https://id.example.com/device".into()),
            revoke_url: Some("https://id.example.com/revoke".into()),
            ..custom()
        };
        let provider = with_device.resolve().expect("complete");
        assert_eq!(provider.device_flow, DeviceFlowSupport::Supported);
        assert_eq!(
            provider.revoke_url.as_deref(),
            Some("https://id.example.com/revoke")
        );

        let without = |change: fn(&mut ProviderSettings)| {
            let mut settings = custom();
            change(&mut settings);
            settings.resolve().expect_err("incomplete")
        };
        let error = without(|s| s.token_url = None);
        assert_eq!(
            error,
            ProviderError::MissingEndpoint {
                field: "token_url",
                what: "token endpoint"
            }
        );
        assert!(error.to_string().contains("https://"), "{error}");
        mailcat_tests::assert_matches!(
            without(|s| s.authorize_url = None),
            ProviderError::MissingEndpoint {
                field: "authorize_url",
                ..
            }
        );
        assert_eq!(without(|s| s.scopes = None), ProviderError::MissingScopes);
        assert_eq!(
            without(|s| s.scopes = Some(Vec::new())),
            ProviderError::EmptyScopes
        );
        assert_eq!(
            without(|s| s.tenant = Some("common".into())),
            ProviderError::TenantNotApplicable {
                kind: ProviderKind::Custom
            }
        );
    }

    #[test]
    fn overrides_replace_the_preset() {
        let settings = ProviderSettings {
            token_url: Some("https://proxy.example.com/token".into()),
            scopes: Some(vec![
                " https://outlook.office.com/IMAP.AccessAsUser.All ".into()
            ]),
            ..microsoft(Some("consumers"))
        };
        let provider = settings.resolve().expect("resolves");
        assert_eq!(provider.token_url, "https://proxy.example.com/token");
        // What was not overridden keeps the tenant.
        assert_eq!(
            provider.authorize_url,
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize"
        );
        assert_eq!(
            provider.scopes,
            vec!["https://outlook.office.com/IMAP.AccessAsUser.All".to_owned()]
        );
        // Google without the mail scope: nothing stops the device flow then.
        let settings = ProviderSettings {
            scopes: Some(vec!["email".into()]),
            ..google()
        };
        assert_eq!(
            settings.resolve().expect("resolves").device_flow,
            DeviceFlowSupport::Supported
        );
        assert_eq!(
            ProviderSettings {
                tenant: Some("consumers".into()),
                ..google()
            }
            .resolve(),
            Err(ProviderError::TenantNotApplicable {
                kind: ProviderKind::Google
            })
        );
    }

    #[test]
    fn scopes_must_be_scope_tokens() {
        for bad in [
            "two words",
            "",
            "quote\"d",
            "back\\slash",
            "caf\u{e9}",
            "a\u{7f}",
        ] {
            let settings = ProviderSettings {
                scopes: Some(vec!["mail".into(), bad.into()]),
                ..custom()
            };
            assert_eq!(
                settings.resolve(),
                Err(ProviderError::BadScope(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn endpoints_must_be_https_urls_with_a_host() {
        let with_token_url = |url: &str| {
            ProviderSettings {
                token_url: Some(url.into()),
                ..custom()
            }
            .resolve()
        };
        for good in [
            "https://id.example.com/token",
            "HTTPS://ID.example.com:8443/oauth/token?tenant=x",
            "https://127.0.0.1:9999/token",
            "https://[::1]:9999/token",
            "https://localhost",
            " https://id.example.com/token ",
        ] {
            assert!(with_token_url(good).is_ok(), "{good}");
        }
        for insecure in ["http://id.example.com/token", "HTTP://127.0.0.1:8080/token"] {
            let error = with_token_url(insecure).expect_err(insecure);
            assert_eq!(
                error,
                ProviderError::InsecureEndpoint {
                    field: "token_url",
                    url: insecure.into()
                }
            );
            assert!(error.to_string().contains("must be https://"), "{error}");
        }
        for bad in [
            "id.example.com/token",
            "ftp://id.example.com/token",
            "https://",
            "https:///token",
            "https://:443/token",
            "https://id.example.com/to ken",
            "https://id.example.com/to\nken",
            "https://id.example.com/\u{1b}]8;;x",
            "https://user:pass@id.example.com/token",
            "https://id.example.com/token#frag",
            "https://id.example.com:0/token",
            "https://id.example.com:65536/token",
            "https://id.example.com:x/token",
            "https://id.example.com:/token",
            "https://[::1/token",
            "https://[nothex]/token",
            "https://[::1]x/token",
            "https://exämple.com/token",
            "https://id.example.com%2f@evil/token",
        ] {
            let error = with_token_url(bad).expect_err(bad);
            assert!(
                matches!(
                    error,
                    ProviderError::BadUrl {
                        field: "token_url",
                        ..
                    }
                ),
                "{bad}: {error:?}"
            );
        }
        // Every endpoint is checked, the presets' overrides too.
        for (field, settings) in [
            (
                "authorize_url",
                ProviderSettings {
                    authorize_url: Some("http://x.example/a".into()),
                    ..google()
                },
            ),
            (
                "device_url",
                ProviderSettings {
                    device_url: Some("http://x.example/d".into()),
                    ..microsoft(None)
                },
            ),
            (
                "revoke_url",
                ProviderSettings {
                    revoke_url: Some("http://x.example/r".into()),
                    ..custom()
                },
            ),
        ] {
            assert!(
                matches!(
                    settings.resolve(),
                    Err(ProviderError::InsecureEndpoint { field: f, .. }) if f == field
                ),
                "{field}"
            );
        }
    }

    #[test]
    fn mail_server_hosts_name_their_provider() {
        for host in [
            "outlook.office365.com",
            "smtp-mail.outlook.com",
            "smtp.office365.com",
            "imap-mail.outlook.com",
            "pop-mail.outlook.com",
            "OUTLOOK.Office365.com.",
        ] {
            assert_eq!(
                provider_for_host(host),
                Some(ProviderKind::Microsoft),
                "{host}"
            );
        }
        for host in [
            "imap.gmail.com",
            "smtp.gmail.com",
            "pop.gmail.com",
            "imap.googlemail.com",
            "gmail.com",
        ] {
            assert_eq!(
                provider_for_host(host),
                Some(ProviderKind::Google),
                "{host}"
            );
        }
        for host in [
            "mail.example.com",
            "notgmail.com",
            "gmail.com.evil.example",
            "imap.mail.yahoo.com",
            "",
        ] {
            assert_eq!(provider_for_host(host), None, "{host}");
        }
    }

    #[test]
    fn debug_never_shows_the_client_secret() {
        let settings = google();
        let provider = settings.resolve().expect("resolves");
        for shown in [format!("{settings:?}"), format!("{provider:?}")] {
            assert!(!shown.contains("GOCSPX-abc"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(
                shown.contains("123-abc.apps.googleusercontent.com"),
                "{shown}"
            );
        }
    }
}
