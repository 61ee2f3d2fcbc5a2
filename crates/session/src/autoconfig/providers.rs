//! mailcat's own table of the big providers: the first autoconfig stage, and the one that needs
//! no network. Host names are today's (Outlook.com moved to `outlook.office365.com` and
//! `smtp-mail.outlook.com`, and accepts only OAuth2 since September 2024). The MX suffixes let
//! a custom domain hosted by a provider (Microsoft 365, Google Workspace …) be recognised.

use mailcat_transport::Endpoint;

use crate::oauth2::provider::ProviderKind;

/// How a provider lets mail clients sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignIn {
    /// Only OAuth2 (XOAUTH2/OAUTHBEARER): passwords are refused.
    OAuth2Only,
    /// OAuth2, or an app password made in the provider's security settings (the account
    /// password itself is refused when two-step verification is on).
    OAuth2OrAppPassword,
    /// An app-specific password made in the provider's settings.
    AppPassword,
    /// The account's password.
    Password,
}

impl SignIn {
    /// What to tell the user, in the library's words (a program words it with its own
    /// commands when it knows better). For OAuth2 it points to
    /// [`README_SECTION`](crate::oauth2::provider::README_SECTION), where the user learns
    /// to register the client ID that mailcat's own sign-in needs.
    pub fn advice(self) -> &'static str {
        match self {
            Self::OAuth2Only => {
                "OAuth2 only (passwords are refused): register a client ID and sign in with OAuth2 (README.md#oauth2-sign-in), or give a command that prints a token"
            }
            Self::OAuth2OrAppPassword => {
                "OAuth2 (with a client ID you register: README.md#oauth2-sign-in), or an app password made in the account's security settings"
            }
            Self::AppPassword => "an app password made in the account's security settings",
            Self::Password => "the account's password",
        }
    }
}

/// The OAuth2 preset that signs in to a provider of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuth2Preset {
    /// The preset.
    pub kind: ProviderKind,
    /// The Microsoft tenant that suits the provider's accounts (`consumers` for Outlook.com,
    /// `organizations` for Microsoft 365).
    pub tenant: Option<&'static str>,
}

/// One provider.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    /// Its name, for people.
    pub name: &'static str,
    /// The address domains it serves.
    pub domains: &'static [&'static str],
    /// Suffixes of its MX host names, for custom domains it hosts.
    pub mx_suffixes: &'static [&'static str],
    /// Incoming servers, preferred first (URLs as the CLI takes them).
    pub incoming: &'static [&'static str],
    /// Outgoing servers, preferred first.
    pub outgoing: &'static [&'static str],
    /// Host names of its servers that are no longer the ones to use.
    pub legacy_hosts: &'static [&'static str],
    /// How to sign in.
    pub sign_in: SignIn,
    /// The OAuth2 preset for mailcat's own sign-in, when there is one.
    pub oauth2: Option<OAuth2Preset>,
    /// Anything else the user must know.
    pub note: Option<&'static str>,
}

impl Provider {
    /// The incoming servers as endpoints.
    pub fn incoming(&self) -> Vec<Endpoint> {
        endpoints(self.incoming)
    }

    /// The outgoing servers as endpoints.
    pub fn outgoing(&self) -> Vec<Endpoint> {
        endpoints(self.outgoing)
    }
}

fn endpoints(urls: &[&str]) -> Vec<Endpoint> {
    // The table is tested to parse in full; a bad entry is left out rather than panicking.
    urls.iter()
        .filter_map(|url| Endpoint::parse_url(url).ok())
        .collect()
}

/// The provider whose server `host` is, and whether the name is one of its legacy names.
pub fn by_host(host: &str) -> Option<(&'static Provider, bool)> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    PROVIDERS.iter().find_map(|p| {
        if p.legacy_hosts.contains(&host.as_str()) {
            return Some((p, true));
        }
        let current = p
            .incoming()
            .into_iter()
            .chain(p.outgoing())
            .any(|e| e.host == host);
        current.then_some((p, false))
    })
}

/// The provider serving addresses at `domain` (case-insensitive).
pub fn by_domain(domain: &str) -> Option<&'static Provider> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    PROVIDERS
        .iter()
        .find(|p| p.domains.iter().any(|d| *d == domain))
}

/// The provider whose mail exchangers these are: an MX host `exchange` that is, or ends in
/// `.`+, one of a provider's suffixes.
pub fn by_mx(exchange: &str) -> Option<&'static Provider> {
    let exchange = exchange.trim_end_matches('.').to_ascii_lowercase();
    PROVIDERS.iter().find(|p| {
        p.mx_suffixes.iter().any(|suffix| {
            exchange == *suffix
                || exchange
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    })
}

const OUTLOOK_NOTE: &str =
    "to use POP3, switch it on first in Outlook.com's settings (Mail → Forwarding and IMAP)";

/// The table.
pub static PROVIDERS: &[Provider] = &[
    Provider {
        name: "Outlook.com",
        domains: &[
            "outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com",
            "windowslive.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it",
            "hotmail.es", "live.co.uk", "live.fr", "live.de", "live.nl", "live.it",
            "outlook.fr", "outlook.de", "outlook.es", "outlook.it", "outlook.jp",
        ],
        mx_suffixes: &["olc.protection.outlook.com"],
        incoming: &["imaps://outlook.office365.com", "pop3s://outlook.office365.com"],
        outgoing: &["smtp://smtp-mail.outlook.com:587"],
        legacy_hosts: &[
            "pop3.live.com",
            "smtp.live.com",
            "pop-mail.outlook.com",
            "imap-mail.outlook.com",
        ],
        sign_in: SignIn::OAuth2Only,
        oauth2: Some(OAuth2Preset {
            kind: ProviderKind::Microsoft,
            tenant: Some("consumers"),
        }),
        note: Some(OUTLOOK_NOTE),
    },
    Provider {
        name: "Microsoft 365",
        domains: &[],
        mx_suffixes: &["mail.protection.outlook.com"],
        incoming: &["imaps://outlook.office365.com", "pop3s://outlook.office365.com"],
        outgoing: &["smtp://smtp.office365.com:587"],
        legacy_hosts: &[],
        sign_in: SignIn::OAuth2Only,
        oauth2: Some(OAuth2Preset {
            kind: ProviderKind::Microsoft,
            tenant: Some("organizations"),
        }),
        note: Some("the organisation's administrator may have switched IMAP, POP3 or SMTP AUTH off for the mailbox"),
    },
    Provider {
        name: "Gmail",
        domains: &["gmail.com", "googlemail.com"],
        mx_suffixes: &["google.com", "googlemail.com"],
        incoming: &["imaps://imap.gmail.com", "pop3s://pop.gmail.com"],
        outgoing: &["smtps://smtp.gmail.com", "smtp://smtp.gmail.com:587"],
        legacy_hosts: &[],
        sign_in: SignIn::OAuth2OrAppPassword,
        oauth2: Some(OAuth2Preset {
            kind: ProviderKind::Google,
            tenant: None,
        }),
        note: None,
    },
    Provider {
        name: "Yahoo Mail",
        domains: &[
            "yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.fr",
            "yahoo.de", "yahoo.it", "yahoo.es", "yahoo.ca", "yahoo.com.au",
        ],
        mx_suffixes: &["yahoodns.net"],
        incoming: &["imaps://imap.mail.yahoo.com", "pop3s://pop.mail.yahoo.com"],
        outgoing: &["smtps://smtp.mail.yahoo.com", "smtp://smtp.mail.yahoo.com:587"],
        legacy_hosts: &[],
        sign_in: SignIn::OAuth2OrAppPassword,
        oauth2: None,
        note: None,
    },
    Provider {
        name: "AOL Mail",
        domains: &["aol.com", "aim.com", "aol.co.uk", "aol.fr", "aol.de"],
        mx_suffixes: &[],
        incoming: &["imaps://imap.aol.com", "pop3s://pop.aol.com"],
        outgoing: &["smtps://smtp.aol.com"],
        legacy_hosts: &[],
        sign_in: SignIn::AppPassword,
        oauth2: None,
        note: None,
    },
    Provider {
        name: "iCloud Mail",
        domains: &["icloud.com", "me.com", "mac.com"],
        mx_suffixes: &["mail.icloud.com"],
        incoming: &["imaps://imap.mail.me.com"],
        outgoing: &["smtp://smtp.mail.me.com:587"],
        legacy_hosts: &[],
        sign_in: SignIn::AppPassword,
        oauth2: None,
        note: Some("iCloud Mail has no POP3; the login is usually the part of the address before the @ (try the whole address if that is refused)"),
    },
    Provider {
        name: "Fastmail",
        domains: &["fastmail.com", "fastmail.fm", "fastmail.net", "fastmail.to", "messagingengine.com"],
        mx_suffixes: &["messagingengine.com"],
        incoming: &["imaps://imap.fastmail.com", "pop3s://pop.fastmail.com"],
        outgoing: &["smtps://smtp.fastmail.com", "smtp://smtp.fastmail.com:587"],
        legacy_hosts: &[],
        sign_in: SignIn::AppPassword,
        oauth2: None,
        note: None,
    },
    Provider {
        name: "GMX (Germany, Austria, Switzerland)",
        domains: &["gmx.net", "gmx.de", "gmx.at", "gmx.ch"],
        mx_suffixes: &["gmx.net"],
        incoming: &["imaps://imap.gmx.net", "pop3s://pop.gmx.net"],
        outgoing: &["smtp://mail.gmx.net:587", "smtps://mail.gmx.net"],
        legacy_hosts: &[],
        sign_in: SignIn::Password,
        oauth2: None,
        note: Some("POP3 and IMAP must be switched on in GMX's web settings first"),
    },
    Provider {
        name: "GMX",
        domains: &["gmx.com", "gmx.us", "gmx.co.uk", "gmx.fr", "gmx.es"],
        mx_suffixes: &["gmx.com"],
        incoming: &["imaps://imap.gmx.com", "pop3s://pop.gmx.com"],
        outgoing: &["smtp://mail.gmx.com:587", "smtps://mail.gmx.com"],
        legacy_hosts: &[],
        sign_in: SignIn::Password,
        oauth2: None,
        note: Some("POP3 and IMAP must be switched on in GMX's web settings first"),
    },
    Provider {
        name: "WEB.DE",
        domains: &["web.de"],
        mx_suffixes: &["web.de"],
        incoming: &["imaps://imap.web.de", "pop3s://pop3.web.de"],
        outgoing: &["smtp://smtp.web.de:587"],
        legacy_hosts: &[],
        sign_in: SignIn::Password,
        oauth2: None,
        note: Some("POP3 and IMAP must be switched on in WEB.DE's web settings first"),
    },
    Provider {
        name: "Zoho Mail",
        domains: &["zoho.com", "zohomail.com"],
        mx_suffixes: &["zoho.com", "zohomail.com"],
        incoming: &["imaps://imap.zoho.com", "pop3s://pop.zoho.com"],
        outgoing: &["smtps://smtp.zoho.com", "smtp://smtp.zoho.com:587"],
        legacy_hosts: &[],
        sign_in: SignIn::Password,
        oauth2: None,
        note: Some("IMAP and POP access must be switched on in Zoho Mail's settings; with two-factor authentication, use an app-specific password"),
    },
    Provider {
        name: "Zoho Mail (EU)",
        domains: &["zoho.eu", "zohomail.eu"],
        mx_suffixes: &["zoho.eu", "zohomail.eu"],
        incoming: &["imaps://imap.zoho.eu", "pop3s://pop.zoho.eu"],
        outgoing: &["smtps://smtp.zoho.eu", "smtp://smtp.zoho.eu:587"],
        legacy_hosts: &[],
        sign_in: SignIn::Password,
        oauth2: None,
        note: Some("IMAP and POP access must be switched on in Zoho Mail's settings; with two-factor authentication, use an app-specific password"),
    },
    Provider {
        name: "Yandex Mail",
        domains: &["yandex.ru", "yandex.com", "ya.ru", "yandex.by", "yandex.kz", "yandex.ua", "narod.ru"],
        mx_suffixes: &["yandex.net", "yandex.ru"],
        incoming: &["imaps://imap.yandex.com", "pop3s://pop.yandex.com"],
        outgoing: &["smtps://smtp.yandex.com"],
        legacy_hosts: &[],
        sign_in: SignIn::AppPassword,
        oauth2: None,
        note: Some("mail-client access must be switched on in Yandex Mail's settings"),
    },
    Provider {
        name: "Mail.ru",
        domains: &["mail.ru", "inbox.ru", "list.ru", "bk.ru"],
        mx_suffixes: &["mail.ru"],
        incoming: &["imaps://imap.mail.ru", "pop3s://pop.mail.ru"],
        outgoing: &["smtps://smtp.mail.ru"],
        legacy_hosts: &[],
        sign_in: SignIn::AppPassword,
        oauth2: None,
        note: None,
    },
    Provider {
        name: "mailbox.org",
        domains: &["mailbox.org"],
        mx_suffixes: &["mailbox.org"],
        incoming: &["imaps://imap.mailbox.org", "pop3s://pop3.mailbox.org"],
        outgoing: &["smtps://smtp.mailbox.org", "smtp://smtp.mailbox.org:587"],
        legacy_hosts: &[],
        sign_in: SignIn::Password,
        oauth2: None,
        note: None,
    },
    Provider {
        name: "Posteo",
        domains: &["posteo.de", "posteo.net", "posteo.at", "posteo.ch", "posteo.eu", "posteo.org"],
        mx_suffixes: &["posteo.de"],
        incoming: &["imaps://posteo.de", "pop3s://posteo.de"],
        outgoing: &["smtp://posteo.de:587"],
        legacy_hosts: &[],
        sign_in: SignIn::Password,
        oauth2: None,
        note: None,
    },
    Provider {
        name: "Telekom (t-online.de)",
        domains: &["t-online.de", "magenta.de"],
        mx_suffixes: &["t-online.de"],
        incoming: &["imaps://secureimap.t-online.de", "pop3s://securepop.t-online.de"],
        outgoing: &["smtps://securesmtp.t-online.de"],
        legacy_hosts: &[],
        sign_in: SignIn::Password,
        oauth2: None,
        note: Some("use the e-mail password set in the Telekom customer centre, not the login password"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use mailcat_transport::{Protocol, Security};

    #[test]
    fn every_entry_parses_and_serves_both_directions() {
        for provider in PROVIDERS {
            assert_eq!(
                provider.incoming().len(),
                provider.incoming.len(),
                "{}",
                provider.name
            );
            assert_eq!(
                provider.outgoing().len(),
                provider.outgoing.len(),
                "{}",
                provider.name
            );
            assert!(!provider.incoming.is_empty(), "{}", provider.name);
            assert!(!provider.outgoing.is_empty(), "{}", provider.name);
            assert!(
                provider
                    .incoming()
                    .iter()
                    .all(|e| e.protocol != Protocol::Smtp)
                    && provider
                        .outgoing()
                        .iter()
                        .all(|e| e.protocol == Protocol::Smtp),
                "{}",
                provider.name
            );
            // Never a server without TLS.
            assert!(provider
                .incoming()
                .iter()
                .chain(&provider.outgoing())
                .all(|e| e.security != Security::DangerousPlaintext));
        }
    }

    #[test]
    fn oauth2_advice_points_to_the_readme_and_the_presets_fit() {
        use crate::oauth2::provider::README_SECTION;
        for sign_in in [SignIn::OAuth2Only, SignIn::OAuth2OrAppPassword] {
            assert!(sign_in.advice().contains(README_SECTION), "{sign_in:?}");
            assert!(sign_in.advice().starts_with("OAuth2"), "{sign_in:?}");
        }
        for provider in PROVIDERS {
            // A provider that takes only OAuth2 has a preset, and only a Microsoft preset
            // names a tenant.
            if provider.sign_in == SignIn::OAuth2Only {
                assert!(provider.oauth2.is_some(), "{}", provider.name);
            }
            if let Some(preset) = provider.oauth2 {
                assert_ne!(preset.kind, ProviderKind::Custom, "{}", provider.name);
                assert_eq!(
                    preset.tenant.is_some(),
                    preset.kind == ProviderKind::Microsoft,
                    "{}",
                    provider.name
                );
            }
        }
        let preset = |domain: &str| by_domain(domain).and_then(|p| p.oauth2);
        assert_eq!(
            preset("hotmail.com"),
            Some(OAuth2Preset {
                kind: ProviderKind::Microsoft,
                tenant: Some("consumers")
            })
        );
        assert_eq!(
            preset("gmail.com").map(|p| p.kind),
            Some(ProviderKind::Google)
        );
        assert_eq!(
            by_mx("contoso-com.mail.protection.outlook.com")
                .and_then(|p| p.oauth2)
                .and_then(|p| p.tenant),
            Some("organizations")
        );
        assert_eq!(preset("yahoo.com"), None);
    }

    #[test]
    fn no_domain_or_mx_suffix_belongs_to_two_providers() {
        let mut seen = std::collections::HashSet::new();
        for provider in PROVIDERS {
            for domain in provider.domains {
                assert!(seen.insert(("domain", *domain)), "{domain} twice");
            }
            for suffix in provider.mx_suffixes {
                assert!(seen.insert(("mx", *suffix)), "{suffix} twice");
            }
        }
    }

    #[test]
    fn outlook_com_has_todays_hosts_and_needs_oauth2() {
        let outlook = by_domain("Hotmail.CO.UK").expect("in the table");
        assert_eq!(outlook.name, "Outlook.com");
        assert_eq!(
            outlook.incoming()[0].url(),
            "imaps://outlook.office365.com:993"
        );
        let smtp = &outlook.outgoing()[0];
        assert_eq!(
            (smtp.host.as_str(), smtp.port, smtp.security),
            ("smtp-mail.outlook.com", 587, Security::StartTls)
        );
        assert_eq!(outlook.sign_in, SignIn::OAuth2Only);
        assert!(by_domain("sub.outlook.com").is_none());
        assert!(by_domain("example.com").is_none());
    }

    #[test]
    fn a_server_name_tells_the_provider_and_whether_it_is_legacy() {
        let (provider, legacy) = by_host("POP3.live.com").expect("known");
        assert_eq!((provider.name, legacy), ("Outlook.com", true));
        let (provider, legacy) = by_host("smtp.gmail.com.").expect("known");
        assert_eq!((provider.name, legacy), ("Gmail", false));
        assert!(by_host("mail.example.com").is_none());
        // A legacy name is never also a current one.
        for provider in PROVIDERS {
            for legacy in provider.legacy_hosts {
                assert!(
                    !provider
                        .incoming()
                        .iter()
                        .chain(&provider.outgoing())
                        .any(|e| e.host == *legacy),
                    "{legacy}"
                );
            }
        }
    }

    #[test]
    fn custom_domains_are_recognised_by_their_mx_hosts() {
        let hosted = by_mx("contoso-com.mail.protection.outlook.com.").expect("Microsoft 365");
        assert_eq!(hosted.name, "Microsoft 365");
        assert_eq!(by_mx("ASPMX.L.GOOGLE.COM").map(|p| p.name), Some("Gmail"));
        assert_eq!(
            by_mx("hotmail-com.olc.protection.outlook.com").map(|p| p.name),
            Some("Outlook.com")
        );
        // A suffix matches whole labels only.
        assert!(by_mx("mx.notgoogle.com").is_none());
        assert!(by_mx("mx.example.com").is_none());
    }
}
