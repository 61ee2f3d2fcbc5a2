//! `mailcat oauth2 login|status|logout`: the account's OAuth2 sign-in, done by mailcat itself
//! (the library's [`mailcat_session::oauth2`]). This file only chooses the flow, shows the
//! URL or the code, opens the browser and words the outcome.

use std::process::{Command, Stdio};
use std::time::Duration;

use mailcat_session::oauth2::provider::DeviceFlowSupport;
use mailcat_session::oauth2::{OAuth2, OAuth2Error, Provider, Revocation, TokenSet};
use serde_json::json;
use tokio::runtime::Runtime;

use crate::cli::{Cli, OAuth2Command, OAuth2LoginArgs};
use crate::cmd::common::{self, terminal_safe, Exit};
use crate::config::AccountSettings;
use crate::exit;

/// How long `login` waits for the browser's redirect.
const BROWSER_WAIT: Duration = Duration::from_secs(300);

/// Runs the command; returns the exit code.
pub(crate) fn run(cli: &Cli, command: &OAuth2Command) -> u8 {
    let name = match command {
        OAuth2Command::Login(_) => "oauth2 login",
        OAuth2Command::Status => "oauth2 status",
        OAuth2Command::Logout => "oauth2 logout",
    };
    let result = common::settings(cli, name).and_then(|settings| {
        let oauth = common::oauth2_sign_in(&settings, name)?;
        let runtime = common::runtime()?;
        match command {
            OAuth2Command::Login(args) => login(cli, &runtime, &settings, &oauth, args),
            OAuth2Command::Status => status(cli, &settings, &oauth),
            OAuth2Command::Logout => logout(cli, &runtime, &settings, &oauth),
        }
        .map_err(|e| fail(name, &e))
    });
    match result {
        Ok(code) | Err(Exit(code)) => code,
    }
}

/// How a sign-in failure is told, with its exit code.
fn fail(command: &str, error: &OAuth2Error) -> Exit {
    let code = if error.is_config() {
        exit::CONFIG
    } else if error.is_temporary() {
        exit::TEMPFAIL
    } else {
        match error {
            OAuth2Error::Declined { .. } | OAuth2Error::SignInRequired { .. } => exit::NOPERM,
            OAuth2Error::TimedOut(_) | OAuth2Error::DeviceCodeExpired => exit::TEMPFAIL,
            _ => exit::UNAVAILABLE,
        }
    };
    let hint = match error {
        OAuth2Error::Refused { code, .. } if code == "invalid_client" => Some(
            "check client_id (and client_secret) in the account's [oauth2] table against the app you registered (README: \"OAuth2 sign-in\")",
        ),
        OAuth2Error::Refused { code, .. } if code == "unauthorized_client" => Some(
            "the app registration does not allow this flow: for --device, allow public client flows (Microsoft), or sign in with the browser",
        ),
        OAuth2Error::Declined { .. } => Some("run the command again and accept the requested access"),
        _ => None,
    };
    crate::failure::tell(command, &terminal_safe(&error.to_string()), hint, code);
    Exit(code)
}

fn login(
    cli: &Cli,
    runtime: &Runtime,
    settings: &AccountSettings,
    oauth: &OAuth2,
    args: &OAuth2LoginArgs,
) -> Result<u8, OAuth2Error> {
    let device = use_device_flow(args, oauth.provider(), can_open_browser());
    let tokens = if device {
        runtime.block_on(async {
            let sign_in = oauth.device_start().await?;
            let minutes = sign_in.expires_in().as_secs().div_ceil(60);
            eprintln!(
                "To sign in {} ({}), open {} on any device and enter the code {} (valid {minutes} min).",
                terminal_safe(&settings.email),
                oauth.provider().kind,
                terminal_safe(sign_in.verification_uri()),
                terminal_safe(sign_in.user_code()),
            );
            if let Some(complete) = sign_in.verification_uri_complete() {
                eprintln!("Or open {} (the code filled in).", terminal_safe(complete));
            }
            eprintln!("Waiting for the sign-in…");
            oauth.device_finish(sign_in).await
        })?
    } else {
        runtime.block_on(async {
            let sign_in = oauth.browser_start().await?;
            eprintln!(
                "To sign in {} ({}), open this page in a browser on this machine:\n\n  {}\n",
                terminal_safe(&settings.email),
                oauth.provider().kind,
                sign_in.url()
            );
            if let Some(how) = open_browser(sign_in.url()) {
                eprintln!("(opened with {how})");
            }
            eprintln!(
                "Waiting up to {} min for the sign-in to complete (the page sends the browser back to {})…",
                BROWSER_WAIT.as_secs() / 60,
                sign_in.redirect_uri()
            );
            oauth.browser_finish(sign_in, BROWSER_WAIT).await
        })?
    };
    if cli.json {
        outln!("{}", status_json(settings, oauth, Some(&tokens)));
    } else if !cli.quiet {
        outln!(
            "Signed in {} with {}; the tokens are in {}.",
            terminal_safe(&settings.email),
            oauth.provider().kind,
            oauth.store().location()
        );
        outln!("Next: mailcat --account {} check", settings.name);
    }
    Ok(exit::OK)
}

fn status(cli: &Cli, settings: &AccountSettings, oauth: &OAuth2) -> Result<u8, OAuth2Error> {
    let tokens = oauth.status()?;
    if cli.json {
        outln!("{}", status_json(settings, oauth, tokens.as_ref()));
    } else {
        outln!(
            "account:   {} ({})",
            settings.name,
            terminal_safe(&settings.email)
        );
        outln!("provider:  {}", oauth.provider().kind);
        outln!("client ID: {}", terminal_safe(&oauth.provider().client_id));
        outln!("tokens:    {}", oauth.store().location());
        match &tokens {
            None => outln!("signed in: no; run: {}", common::sign_in_command()),
            Some(tokens) => {
                if tokens.client_id != oauth.provider().client_id {
                    outln!(
                        "signed in: with another client ID ({}); run: {}",
                        terminal_safe(&tokens.client_id),
                        common::sign_in_command()
                    );
                } else {
                    outln!("signed in: yes");
                }
                outln!("scopes:    {}", terminal_safe(&tokens.scopes.join(" ")));
                outln!("access token expires: {}", expiry(tokens));
                outln!(
                    "refresh token: {}",
                    if tokens.refresh_token.is_some() {
                        "stored (the access token is renewed when needed)"
                    } else {
                        "none (sign in again when the access token expires)"
                    }
                );
            }
        }
    }
    Ok(match tokens {
        Some(_) => exit::OK,
        None => exit::NOPERM,
    })
}

fn logout(
    cli: &Cli,
    runtime: &Runtime,
    settings: &AccountSettings,
    oauth: &OAuth2,
) -> Result<u8, OAuth2Error> {
    let done = runtime.block_on(oauth.logout())?;
    let revocation = match &done.revocation {
        Revocation::Revoked => "revoked at the provider".to_owned(),
        Revocation::NotOffered => format!(
            "{} offers no revocation: the tokens stay valid until they expire, or revoke them in the account's security settings",
            oauth.provider().kind
        ),
        Revocation::NothingStored => "nothing to revoke".to_owned(),
        Revocation::Failed(why) => format!("revocation failed: {}", terminal_safe(why)),
    };
    if cli.json {
        outln!(
            "{}",
            json!({
                "account": settings.name,
                "deleted": done.deleted,
                "revoked": done.revocation == Revocation::Revoked,
                "revocation": revocation,
            })
        );
    } else if !cli.quiet {
        if done.deleted {
            outln!(
                "Signed out {}: tokens deleted from {}; {revocation}.",
                terminal_safe(&settings.email),
                oauth.store().location()
            );
        } else {
            outln!(
                "{} was not signed in (no tokens in {}).",
                terminal_safe(&settings.email),
                oauth.store().location()
            );
        }
    }
    Ok(exit::OK)
}

fn status_json(
    settings: &AccountSettings,
    oauth: &OAuth2,
    tokens: Option<&TokenSet>,
) -> serde_json::Value {
    json!({
        "account": settings.name,
        "email": settings.email,
        "provider": oauth.provider().kind.to_string(),
        "client_id": oauth.provider().client_id,
        "token_file": oauth.store().location(),
        "signed_in": tokens.is_some(),
        "scopes": tokens.map(|t| t.scopes.clone()),
        "access_token_expires_at": tokens.and_then(|t| t.expires_at),
        "refresh_token": tokens.map(|t| t.refresh_token.is_some()),
    })
}

/// When the access token expires, in UTC and from now.
fn expiry(tokens: &TokenSet) -> String {
    let (Some(at), Some(when)) = (tokens.expires_at, tokens.expiry_utc()) else {
        return "not said by the provider".into();
    };
    let now = mailcat_session::oauth2::unix_now();
    if at > now {
        format!("{when} (in {})", minutes(at - now))
    } else {
        format!(
            "{when} ({} ago; renewed at the next login)",
            minutes(now - at)
        )
    }
}

fn minutes(seconds: u64) -> String {
    if seconds < 120 {
        format!("{seconds} s")
    } else {
        format!("{} min", seconds / 60)
    }
}

/// The device flow when asked for, or by default where no browser can be opened and the
/// provider allows it for mail (Google does not: there the URL is printed for a browser
/// elsewhere, whose redirect reaches this machine through `ssh -L`).
fn use_device_flow(args: &OAuth2LoginArgs, provider: &Provider, can_open_browser: bool) -> bool {
    let device_allowed = provider.device_url.is_some()
        && matches!(provider.device_flow, DeviceFlowSupport::Supported);
    args.device || (!args.browser && !can_open_browser && device_allowed)
}

/// Whether a browser can be opened here: `$BROWSER`, or a desktop session.
fn can_open_browser() -> bool {
    std::env::var_os("BROWSER").is_some_and(|b| !b.is_empty())
        || cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
}

/// Opens `url` in a browser: each command of `$BROWSER` (`:`-separated, as xdg-utils reads
/// it) in turn, split into words and given the URL as its last argument (or in place of
/// `%s`), never through a shell; else the desktop's opener. Returns what opened it.
fn open_browser(url: &str) -> Option<String> {
    let mut candidates: Vec<Vec<String>> = Vec::new();
    if let Some(browser) = std::env::var("BROWSER").ok().filter(|b| !b.is_empty()) {
        for command in browser.split(':').filter(|c| !c.trim().is_empty()) {
            let mut words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
            if words.iter().any(|w| w.contains("%s")) {
                for word in &mut words {
                    *word = word.replace("%s", url);
                }
            } else {
                words.push(url.to_owned());
            }
            candidates.push(words);
        }
    } else if cfg!(target_os = "macos") {
        candidates.push(vec!["open".into(), url.into()]);
    } else {
        candidates.push(vec!["xdg-open".into(), url.into()]);
    }
    for words in candidates {
        let Some((program, rest)) = words.split_first() else {
            continue;
        };
        let spawned = Command::new(program)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if spawned.is_ok() {
            return Some(terminal_safe(program));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailcat_session::oauth2::{ProviderKind, ProviderSettings};

    fn provider(kind: ProviderKind) -> Provider {
        let mut settings = ProviderSettings::new(kind, "00001111-aaaa-2222-bbbb-3333cccc4444");
        if kind == ProviderKind::Google {
            settings.client_secret = Some("GOCSPX-secret".into());
        }
        settings.resolve().expect("a preset")
    }

    fn args(device: bool, browser: bool) -> OAuth2LoginArgs {
        OAuth2LoginArgs { device, browser }
    }

    #[test]
    fn without_a_browser_the_device_flow_is_the_default_where_the_provider_allows_it() {
        let microsoft = provider(ProviderKind::Microsoft);
        let google = provider(ProviderKind::Google);
        assert!(use_device_flow(&args(false, false), &microsoft, false));
        assert!(!use_device_flow(&args(false, false), &microsoft, true));
        assert!(!use_device_flow(&args(false, true), &microsoft, false));
        // Google refuses the mail scope in the device flow: the browser flow, URL printed.
        assert!(!use_device_flow(&args(false, false), &google, false));
        // What the user asks for wins (and Google's refusal is then explained).
        assert!(use_device_flow(&args(true, false), &google, true));
    }
}
