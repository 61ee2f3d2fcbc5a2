//! Calendar time in UTC from Unix seconds, for the dates mail writes: the RFC 5322 `Date:`
//! header and the mbox `From ` line. No time-zone database: mail written in UTC is correct.

/// A moment in UTC, broken into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtcTime {
    /// The year, e.g. 2026.
    pub year: u64,
    /// 1 to 12.
    pub month: u64,
    /// 1 to 31.
    pub day: u64,
    /// 0 to 23.
    pub hour: u64,
    /// 0 to 59.
    pub minute: u64,
    /// 0 to 59.
    pub second: u64,
    /// Days since 1970-01-01 (a Thursday).
    days: u64,
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl UtcTime {
    /// The moment `secs` seconds after 1970-01-01 00:00:00 UTC.
    pub(crate) fn from_unix(secs: u64) -> Self {
        let days = secs / 86_400;
        let rest = secs % 86_400;
        // Howard Hinnant's civil_from_days, for days since the epoch (never negative here).
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + u64::from(month <= 2),
            month,
            day,
            hour: rest / 3600,
            minute: rest % 3600 / 60,
            second: rest % 60,
            days,
        }
    }

    /// Now (the epoch if the clock is set before it).
    pub(crate) fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::from_unix(secs)
    }

    fn weekday(&self) -> &'static str {
        WEEKDAYS[(self.days % 7) as usize]
    }

    fn month_name(&self) -> &'static str {
        MONTHS[(self.month - 1) as usize]
    }

    /// RFC 5322 §3.3: `Thu, 26 Nov 2026 05:55:59 +0000`.
    pub(crate) fn rfc5322(&self) -> String {
        format!(
            "{}, {} {} {} {:02}:{:02}:{:02} +0000",
            self.weekday(),
            self.day,
            self.month_name(),
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// C's asctime, as mbox `From ` lines write it: `Thu Nov 26 05:02:21 2026`.
    pub(crate) fn asctime(&self) -> String {
        format!(
            "{} {} {:2} {:02}:{:02}:{:02} {}",
            self.weekday(),
            self.month_name(),
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.year
        )
    }
}

#[cfg(test)]
mod tests {
    use super::UtcTime;

    #[test]
    fn epoch_leap_day_and_today() {
        assert_eq!(
            UtcTime::from_unix(0).rfc5322(),
            "Thu, 1 Jan 1970 00:00:00 +0000"
        );
        assert_eq!(
            UtcTime::from_unix(951_782_400).rfc5322(),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            UtcTime::from_unix(1_795_672_559).rfc5322(),
            "Thu, 26 Nov 2026 05:55:59 +0000"
        );
        assert_eq!(
            UtcTime::from_unix(1_795_672_559).asctime(),
            "Thu Nov 26 05:55:59 2026"
        );
        assert_eq!(
            UtcTime::from_unix(86_399 + 86_400 * 31).asctime(),
            "Sun Feb  1 23:59:59 1970"
        );
    }
}
