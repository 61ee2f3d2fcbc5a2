//! The tokens of a sign-in, and the token endpoint's answers (RFC 6749 §5.1 and §5.2).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::error::clean;
use super::OAuth2Error;
use crate::http::Response;
use crate::Secret;

/// An access token is renewed this long before it expires, so a login that starts just
/// before the expiry does not carry a token that dies on the way.
pub const RENEW_BEFORE: Duration = Duration::from_secs(120);

/// The tokens of one sign-in: what the token store keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The provider preset's name (`microsoft`, `google`, `custom`).
    pub provider: String,
    /// The client ID the tokens were issued to: tokens of another client are not used.
    pub client_id: String,
    /// The scopes granted (or asked for, when the provider did not say).
    pub scopes: Vec<String>,
    /// The access token, for SASL XOAUTH2 / OAUTHBEARER.
    pub access_token: Secret,
    /// When the access token expires, in seconds since the Unix epoch; `None`: not said.
    pub expires_at: Option<u64>,
    /// When the access token was obtained (seconds since the epoch), if known: a short-lived
    /// token is renewed a quarter of its lifetime before it expires, not [`RENEW_BEFORE`].
    pub obtained_at: Option<u64>,
    /// The refresh token, if the provider gave one.
    pub refresh_token: Option<Secret>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

impl TokenSet {
    /// When the access token expires, as `YYYY-MM-DD HH:MM:SS UTC`; `None` when the provider
    /// did not say.
    pub fn expiry_utc(&self) -> Option<String> {
        let t = crate::utc::UtcTime::from_unix(self.expires_at?);
        Some(format!(
            "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        ))
    }

    /// Whether the access token can still be used at `now` (seconds since the epoch), with
    /// [`RENEW_BEFORE`] to spare (a quarter of the lifetime, for a token that lives less than
    /// eight minutes). A token without an expiry is used until a server refuses it.
    pub fn is_fresh(&self, now: u64) -> bool {
        let Some(at) = self.expires_at else {
            return true;
        };
        let quarter = self.obtained_at.map(|from| at.saturating_sub(from) / 4);
        let margin = quarter.map_or(RENEW_BEFORE.as_secs(), |q| q.min(RENEW_BEFORE.as_secs()));
        now + margin < at
    }

    /// The stored form: JSON with the secrets as strings. Only the token store writes it.
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert("version".into(), Value::from(1));
        map.insert("provider".into(), Value::from(self.provider.clone()));
        map.insert("client_id".into(), Value::from(self.client_id.clone()));
        map.insert("scopes".into(), Value::from(self.scopes.clone()));
        map.insert(
            "access_token".into(),
            Value::from(String::from_utf8_lossy(self.access_token.expose()).into_owned()),
        );
        if let Some(at) = self.expires_at {
            map.insert("expires_at".into(), Value::from(at));
        }
        if let Some(at) = self.obtained_at {
            map.insert("obtained_at".into(), Value::from(at));
        }
        if let Some(refresh) = &self.refresh_token {
            map.insert(
                "refresh_token".into(),
                Value::from(String::from_utf8_lossy(refresh.expose()).into_owned()),
            );
        }
        let mut text = Value::Object(map).to_string();
        text.push('\n');
        text
    }

    /// Reads the stored form; the error says what is wrong without quoting the file.
    pub fn from_json(text: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(text)
            .map_err(|e| format!("not valid JSON (line {}, column {})", e.line(), e.column()))?;
        let map = value.as_object().ok_or("not a JSON object")?;
        let string = |key: &str| -> Result<Option<String>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{key:?} is not a string")),
            }
        };
        let required = |key: &str| string(key)?.ok_or_else(|| format!("{key:?} is missing"));
        let scopes = match map.get("scopes") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or("a scope is not a string")
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("\"scopes\" is not a list".into()),
        };
        let seconds = |key: &str| -> Result<Option<u64>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("{key:?} is not a number of seconds")),
            }
        };
        let expires_at = seconds("expires_at")?;
        let obtained_at = seconds("obtained_at")?;
        Ok(Self {
            provider: required("provider")?,
            client_id: required("client_id")?,
            scopes,
            access_token: Secret::new(required("access_token")?),
            expires_at,
            obtained_at,
            refresh_token: string("refresh_token")?.map(Secret::new),
        })
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A successful token answer.
#[derive(Clone)]
pub(crate) struct Granted {
    pub access_token: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

/// What an endpoint answered, once read as JSON: an object, or an OAuth2 error.
pub(crate) enum Answer {
    /// A 2xx JSON object.
    Ok(Map<String, Value>),
    /// An OAuth2 error (`{"error": …}`), whatever the status.
    Error {
        code: String,
        description: Option<String>,
    },
}

/// Reads `response` from the endpoint named `what` as JSON (RFC 6749 §5.1: the answer is
/// `application/json`; §5.2: errors are JSON too, usually with status 400).
pub(crate) fn read_json(what: &'static str, response: &Response) -> Result<Answer, OAuth2Error> {
    let url = without_query(&response.url);
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    let Some(Value::Object(map)) = parsed else {
        let html = response
            .content_type
            .as_deref()
            .is_some_and(|t| t.to_ascii_lowercase().contains("html"))
            || response.body.trim_ascii_start().starts_with(b"<");
        let found = if response.body.is_empty() {
            "an empty body".to_owned()
        } else if html {
            "an HTML page".to_owned()
        } else if parsed.is_some() {
            "JSON that is not an object".to_owned()
        } else {
            format!("{} bytes that are not JSON", response.body.len())
        };
        return Err(OAuth2Error::NotJson {
            what,
            url,
            status: response.status,
            found,
        });
    };
    if let Some(code) = map.get("error") {
        let code = code
            .as_str()
            .map(clean)
            .unwrap_or_else(|| "(an error that is not a string)".into());
        let description = map
            .get("error_description")
            .and_then(Value::as_str)
            .map(clean)
            .filter(|d| !d.is_empty());
        return Ok(Answer::Error { code, description });
    }
    if !(200..300).contains(&response.status) {
        return Err(OAuth2Error::Malformed {
            what,
            url,
            reason: format!(
                "status {} without an OAuth2 \"error\" field",
                response.status
            ),
        });
    }
    Ok(Answer::Ok(map))
}

/// A token answer's fields (RFC 6749 §5.1).
pub(crate) fn granted(
    what: &'static str,
    url: &str,
    map: &Map<String, Value>,
) -> Result<Granted, OAuth2Error> {
    let malformed = |reason: String| OAuth2Error::Malformed {
        what,
        url: without_query(url),
        reason,
    };
    let access_token = match map.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => {
            return Err(malformed(
                "\"access_token\" is not a non-empty string".into(),
            ))
        }
        None => return Err(malformed("no \"access_token\"".into())),
    };
    // A token goes into a SASL message between ^A separators: refuse what would break it.
    if access_token.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(malformed(
            "the access token holds spaces or control characters".into(),
        ));
    }
    match map.get("token_type").and_then(Value::as_str) {
        Some(kind) if kind.eq_ignore_ascii_case("bearer") => {}
        // Required by §5.1, but an absent one is read as Bearer, the only kind mail servers take.
        None => {}
        Some(other) => {
            return Err(malformed(format!(
                "token type {:?}: only Bearer tokens work with mail servers",
                clean(other)
            )))
        }
    }
    let expires_in = match map.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        // Some providers send the number as a string.
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    if map.contains_key("expires_in") && expires_in.is_none() {
        return Err(malformed(
            "\"expires_in\" is not a number of seconds".into(),
        ));
    }
    let refresh_token = match map.get("refresh_token") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let scope = map.get("scope").and_then(Value::as_str).map(str::to_owned);
    Ok(Granted {
        access_token,
        // Ten years at most: a silly value must not overflow the arithmetic.
        expires_in: expires_in.map(|s| s.min(10 * 365 * 86_400)),
        refresh_token,
        scope,
    })
}

/// `url` without its query and fragment, for messages.
pub(crate) fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, content_type: &str, body: &str) -> Response {
        Response {
            status,
            reason: String::new(),
            content_type: Some(content_type.to_owned()),
            body: body.as_bytes().to_vec(),
            url: "https://login.example/token?x=1".into(),
        }
    }

    fn ok_map(body: &str) -> Map<String, Value> {
        match read_json("token endpoint", &response(200, "application/json", body)) {
            Ok(Answer::Ok(map)) => map,
            _ => panic!("not an OK answer: {body}"),
        }
    }

    #[test]
    fn a_token_answer_is_read() {
        let map = ok_map(
            r#"{"access_token":"eyJ.a.b","token_type":"Bearer","expires_in":3599,"refresh_token":"r1","scope":"a b"}"#,
        );
        let g = granted("token endpoint", "https://x/t", &map).unwrap();
        assert_eq!(g.access_token, "eyJ.a.b");
        assert_eq!(g.expires_in, Some(3599));
        assert_eq!(g.refresh_token.as_deref(), Some("r1"));
        assert_eq!(g.scope.as_deref(), Some("a b"));
        let g = granted(
            "t",
            "u",
            &ok_map(r#"{"access_token":"x","token_type":"bearer","expires_in":"60"}"#),
        )
        .unwrap();
        assert_eq!(g.expires_in, Some(60));
    }

    #[test]
    fn what_is_not_a_usable_token_is_refused_by_name() {
        for (body, needle) in [
            (r#"{"token_type":"Bearer"}"#, "no \"access_token\""),
            (r#"{"access_token":""}"#, "not a non-empty string"),
            (r#"{"access_token":"a b"}"#, "spaces or control"),
            (r#"{"access_token":"a","token_type":"mac"}"#, "only Bearer"),
            (r#"{"access_token":"a","expires_in":"soon"}"#, "expires_in"),
        ] {
            let error = granted("token endpoint", "https://x/t?secret", &ok_map(body))
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains(needle), "{body}: {error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn errors_html_garbage_and_empty_bodies_are_told_apart() {
        match read_json(
            "token endpoint",
            &response(
                400,
                "application/json",
                r#"{"error":"invalid_grant","error_description":"AADSTS70008: expired\u001b[31m"}"#,
            ),
        ) {
            Ok(Answer::Error { code, description }) => {
                assert_eq!(code, "invalid_grant");
                assert_eq!(description.as_deref(), Some("AADSTS70008: expired [31m"));
            }
            _ => panic!("not an error answer"),
        }
        for (content_type, body, needle) in [
            ("text/html", "<html>login</html>", "an HTML page"),
            (
                "application/octet-stream",
                "\u{1}\u{2}garbage",
                "bytes that are not JSON",
            ),
            ("application/json", "", "an empty body"),
            ("application/json", "[1]", "JSON that is not an object"),
        ] {
            let error = read_json("token endpoint", &response(200, content_type, body))
                .err()
                .unwrap();
            let text = error.to_string();
            assert!(text.contains(needle), "{text}");
            assert!(text.contains("https://login.example/token "), "{text}");
        }
        mailcat_tests::assert_matches!(
            read_json("t", &response(500, "application/json", "{}")).err(),
            Some(OAuth2Error::Malformed { .. })
        );
    }

    #[test]
    fn the_stored_form_round_trips_and_is_checked() {
        let tokens = TokenSet {
            provider: "microsoft".into(),
            client_id: "cid".into(),
            scopes: vec!["a".into(), "offline_access".into()],
            access_token: Secret::new("at"),
            expires_at: Some(1_800_000_000),
            obtained_at: Some(1_799_996_400),
            refresh_token: Some(Secret::new("rt")),
        };
        assert_eq!(
            TokenSet::from_json(tokens.to_json().as_bytes()).unwrap(),
            tokens
        );
        assert!(!format!("{tokens:?}").contains("rt\""));
        assert!(TokenSet::from_json(b"{")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(TokenSet::from_json(br#"{"provider":"x","client_id":"c"}"#)
            .unwrap_err()
            .contains("access_token"));
    }

    #[test]
    fn freshness_keeps_a_margin() {
        let mut tokens = TokenSet::from_json(
            br#"{"provider":"x","client_id":"c","access_token":"a","expires_at":1000}"#,
        )
        .unwrap();
        assert!(tokens.is_fresh(1000 - RENEW_BEFORE.as_secs() - 1));
        assert!(!tokens.is_fresh(1000 - RENEW_BEFORE.as_secs()));
        // A 4 s token is used until 1 s before it expires, not renewed at once.
        tokens.obtained_at = Some(996);
        assert!(tokens.is_fresh(998));
        assert!(!tokens.is_fresh(999));
        tokens.expires_at = None;
        assert!(tokens.is_fresh(u64::MAX / 2));
    }
}
