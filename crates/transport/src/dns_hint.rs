//! A hint for host names that cannot exist: a top-level domain that is not in the list of
//! delegated TLDs, with the most likely correction (`pop3.live.vom` → `pop3.live.com`).
//!
//! `tlds.txt` lists the ICANN top-level domains from the Public Suffix List (publicsuffix.org,
//! Debian package `publicsuffix`, 2023-02-09), one per line, IDNs in their `xn--` form.

const TLDS: &str = include_str!("tlds.txt");

/// Common TLDs, most used first: a typo is corrected towards the first one it is close to.
const POPULAR: &[&str] = &[
    "com", "net", "org", "de", "uk", "ru", "nl", "fr", "it", "br", "au", "jp", "cn", "in", "es",
    "ca", "ch", "pl", "se", "be", "at", "dk", "no", "fi", "cz", "eu", "io", "co", "us", "info",
    "biz", "edu", "gov", "me", "mx", "kr", "tw", "hk", "nz", "ie", "pt", "gr", "hu", "ro", "sk",
    "tr", "ua", "za", "ar", "cl", "il", "sg",
];

/// True if `tld` (lower case, ASCII or `xn--`) is a delegated top-level domain.
pub(crate) fn is_known_tld(tld: &str) -> bool {
    TLDS.lines().any(|known| known == tld)
}

/// If `host`'s top-level domain does not exist, a corrected host name when one is obvious.
pub fn suggest(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.');
    let (rest, tld) = host.rsplit_once('.')?;
    let tld_lower = tld.to_ascii_lowercase();
    if tld_lower.is_empty()
        || tld_lower.bytes().all(|b| b.is_ascii_digit())
        || is_known_tld(&tld_lower)
    {
        return None;
    }
    let best = POPULAR
        .iter()
        .find(|candidate| edit_distance(&tld_lower, candidate) == 1)?;
    Some(format!("{rest}.{best}"))
}

/// Damerau-Levenshtein distance (adjacent swaps count as one edit), for short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrects_impossible_tlds() {
        assert_eq!(suggest("pop3.live.vom").as_deref(), Some("pop3.live.com"));
        assert_eq!(suggest("imap.gmail.cmo").as_deref(), Some("imap.gmail.com"));
        assert_eq!(suggest("mail.web.dee").as_deref(), Some("mail.web.de"));
        assert_eq!(
            suggest("smtp.example.ogr").as_deref(),
            Some("smtp.example.org")
        );
    }

    #[test]
    fn leaves_real_names_alone() {
        for host in [
            "outlook.office365.com",
            "imap.mail.me.com",
            "mail.example.co.uk",
            "xn--80a.xn--p1ai",
            "192.0.2.1",
            "localhost",
            "pop.gmx.net.",
        ] {
            assert_eq!(suggest(host), None, "{host}");
        }
    }

    #[test]
    fn no_guess_when_nothing_is_close() {
        assert_eq!(suggest("mail.example.qqqqq"), None);
    }
}
