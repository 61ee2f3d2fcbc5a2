//! Dates and the search criteria a client session uses (RFC 3501 §6.4.4 / RFC 9051 §6.4.4:
//! `search-key`, `date`, `date-time`).
//!
//! Only typed keys: there is no way to pass raw search syntax, so a user value can only ever be
//! the argument of a key (and is encoded as an `astring`).

use std::fmt;

use super::string::{LineBreaks, Writer};
use super::SequenceSet;
use crate::EncodeError;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar date (`date-text = date-day "-" date-month "-" date-year`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// Checks a date: year 1–9999, month 1–12, a day that exists in that month.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, EncodeError> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        if !(1..=9999).contains(&year) || day == 0 || day > days {
            return Err(EncodeError::Invalid {
                field: "date",
                reason: "no such calendar date",
            });
        }
        Ok(Self { year, month, day })
    }

    fn month_name(&self) -> &'static str {
        MONTHS
            .get(usize::from(self.month).saturating_sub(1))
            .copied()
            .unwrap_or("Jan")
    }
}

impl fmt::Display for Date {
    /// `1-Feb-1994`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:04}", self.day, self.month_name(), self.year)
    }
}

/// A date and time with its zone, as APPEND takes it (`date-time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    date: Date,
    hour: u8,
    minute: u8,
    second: u8,
    zone_minutes: i16,
}

impl DateTime {
    /// Checks the time (00:00:00–23:59:60) and the zone (east of UTC in minutes, under ±24 h).
    pub fn new(
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        zone_minutes: i16,
    ) -> Result<Self, EncodeError> {
        if hour > 23 || minute > 59 || second > 60 || zone_minutes.unsigned_abs() >= 24 * 60 {
            return Err(EncodeError::Invalid {
                field: "date-time",
                reason: "time or zone out of range",
            });
        }
        Ok(Self {
            date,
            hour,
            minute,
            second,
            zone_minutes,
        })
    }
}

impl fmt::Display for DateTime {
    /// `"17-Jul-1996 02:44:25 -0700"` (`date-day-fixed` is space-padded).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.zone_minutes < 0 { '-' } else { '+' };
        let zone = self.zone_minutes.unsigned_abs();
        write!(
            f,
            "\"{:>2}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}\"",
            self.date.day,
            self.date.month_name(),
            self.date.year,
            self.hour,
            self.minute,
            self.second,
            sign,
            zone / 60,
            zone % 60
        )
    }
}

/// A search criterion. Several keys side by side mean "all of them" ([`SearchKey::And`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// `ALL`
    All,
    /// `SEEN`
    Seen,
    /// `UNSEEN`
    Unseen,
    /// `UID sequence-set`
    Uid(SequenceSet),
    /// `SINCE date`: internal date on or after.
    Since(Date),
    /// `BEFORE date`: internal date before.
    Before(Date),
    /// `HEADER field value`: the field contains the value (an empty value: the field exists).
    Header {
        /// Header field name, such as `Message-ID`.
        field: String,
        /// The substring to look for.
        value: String,
    },
    /// `LARGER n`: RFC 822 size above n octets.
    Larger(u32),
    /// `SMALLER n`: RFC 822 size below n octets.
    Smaller(u32),
    /// `NOT key`
    Not(Box<Self>),
    /// `OR key key`
    Or(Box<Self>, Box<Self>),
    /// Every key must match: written side by side, in parentheses when nested.
    And(Vec<Self>),
}

/// How deep NOT/OR/AND may nest; deeper is refused rather than recursed into.
pub const MAX_SEARCH_DEPTH: usize = 32;

impl SearchKey {
    /// True when a search string has 8-bit characters (the command then needs `CHARSET UTF-8`
    /// unless `UTF8=ACCEPT` is on).
    pub(crate) fn has_non_ascii(&self, depth: usize) -> bool {
        if depth > MAX_SEARCH_DEPTH {
            return false;
        }
        match self {
            Self::Header { field, value } => !field.is_ascii() || !value.is_ascii(),
            Self::Not(k) => k.has_non_ascii(depth + 1),
            Self::Or(a, b) => a.has_non_ascii(depth + 1) || b.has_non_ascii(depth + 1),
            Self::And(keys) => keys.iter().any(|k| k.has_non_ascii(depth + 1)),
            _ => false,
        }
    }

    /// Writes `search-key`.
    pub(crate) fn write(&self, w: &mut Writer<'_>, depth: usize) -> Result<(), EncodeError> {
        if depth > MAX_SEARCH_DEPTH {
            return Err(EncodeError::Invalid {
                field: "search criteria",
                reason: "nested more than 32 levels deep",
            });
        }
        match self {
            Self::All => w.raw(b"ALL"),
            Self::Seen => w.raw(b"SEEN"),
            Self::Unseen => w.raw(b"UNSEEN"),
            Self::Uid(set) => w.display(format_args!("UID {set}")),
            Self::Since(date) => w.display(format_args!("SINCE {date}")),
            Self::Before(date) => w.display(format_args!("BEFORE {date}")),
            Self::Header { field, value } => {
                check_header_field_name(field)?;
                w.raw(b"HEADER ");
                w.astring("header field name", field.as_bytes(), LineBreaks::Refuse)?;
                w.sp();
                w.astring("header search value", value.as_bytes(), LineBreaks::Refuse)?;
            }
            Self::Larger(n) => w.display(format_args!("LARGER {n}")),
            Self::Smaller(n) => w.display(format_args!("SMALLER {n}")),
            Self::Not(key) => {
                w.raw(b"NOT ");
                key.write(w, depth + 1)?;
            }
            Self::Or(a, b) => {
                w.raw(b"OR ");
                a.write(w, depth + 1)?;
                w.sp();
                b.write(w, depth + 1)?;
            }
            Self::And(keys) => {
                if keys.is_empty() {
                    return Err(EncodeError::Empty {
                        field: "search criteria",
                    });
                }
                // At the top the keys go side by side; nested, they need parentheses.
                let nested = depth > 0;
                if nested {
                    w.raw(b"(");
                }
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        w.sp();
                    }
                    key.write(w, depth + 1)?;
                }
                if nested {
                    w.raw(b")");
                }
            }
        }
        Ok(())
    }
}

/// A header field name (RFC 5322 §3.6.8 `ftext`: printable US-ASCII except `:`), not empty.
pub(crate) fn check_header_field_name(name: &str) -> Result<(), EncodeError> {
    const FIELD: &str = "header field name";
    crate::core::text::check_line_safe(FIELD, name.as_bytes())?;
    if name.is_empty() {
        return Err(EncodeError::Empty { field: FIELD });
    }
    if !name.bytes().all(|b| matches!(b, 0x21..=0x7e) && b != b':') {
        return Err(EncodeError::Invalid {
            field: FIELD,
            reason: "printable US-ASCII without spaces or ':' (RFC 5322 §3.6.8)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(Date::new(1994, 2, 1).unwrap().to_string(), "1-Feb-1994");
        assert_eq!(Date::new(2024, 2, 29).unwrap().to_string(), "29-Feb-2024");
        assert!(Date::new(2023, 2, 29).is_err());
        assert!(Date::new(1900, 2, 29).is_err());
        assert!(Date::new(2000, 2, 29).is_ok());
        assert!(Date::new(2024, 13, 1).is_err());
        assert!(Date::new(2024, 4, 31).is_err());
        assert!(Date::new(0, 1, 1).is_err());
    }

    #[test]
    fn date_times() {
        let d = Date::new(1996, 7, 7).unwrap();
        assert_eq!(
            DateTime::new(d, 2, 44, 25, -420).unwrap().to_string(),
            "\" 7-Jul-1996 02:44:25 -0700\""
        );
        assert_eq!(
            DateTime::new(d, 23, 0, 0, 330).unwrap().to_string(),
            "\" 7-Jul-1996 23:00:00 +0530\""
        );
        assert!(DateTime::new(d, 24, 0, 0, 0).is_err());
        assert!(DateTime::new(d, 0, 0, 0, 1440).is_err());
    }

    #[test]
    fn header_field_names() {
        assert!(check_header_field_name("Message-ID").is_ok());
        assert!(check_header_field_name("").is_err());
        assert!(check_header_field_name("Subject:").is_err());
        assert!(check_header_field_name("X Y").is_err());
        assert!(check_header_field_name("X\r\nY").is_err());
    }
}
