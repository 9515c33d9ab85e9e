//! `now(utc=false, fmt=none)`: the current time, as Ansible's global of
//! that name (the machine's clock in UTC; containers and servers hive
//! manages keep UTC). Without `fmt` the text is Python's `str(datetime)`.

use minijinja::Error;
use minijinja::value::{Kwargs, Value};
use time::OffsetDateTime;

pub(crate) fn now(kw: Kwargs) -> Result<Value, Error> {
    let _utc: Option<bool> = kw.get("utc")?;
    let fmt: Option<String> = kw.get("fmt")?;
    kw.assert_all_used()?;
    let t = OffsetDateTime::now_utc();
    Ok(Value::from(strftime(
        &t,
        fmt.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S.%f"),
    )))
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Python's `strftime` for the directives roles use (`%Y %m %d %H %M %S
/// %f %s %y %j %a %A %b %B %p %I %z %Z %%`); others are kept as written.
fn strftime(t: &OffsetDateTime, fmt: &str) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(d) = chars.next() else {
            out.push('%');
            break;
        };
        let month: &str = &t.month().to_string();
        let day = DAYS[t.weekday().number_days_from_monday() as usize];
        let s = match d {
            'Y' => format!("{:04}", t.year()),
            'y' => format!("{:02}", t.year() % 100),
            'm' => format!("{:02}", u8::from(t.month())),
            'd' => format!("{:02}", t.day()),
            'H' => format!("{:02}", t.hour()),
            'I' => format!("{:02}", (t.hour() + 11) % 12 + 1),
            'p' => (if t.hour() < 12 { "AM" } else { "PM" }).to_string(),
            'M' => format!("{:02}", t.minute()),
            'S' => format!("{:02}", t.second()),
            'f' => format!("{:06}", t.microsecond()),
            's' => t.unix_timestamp().to_string(),
            'j' => format!("{:03}", t.ordinal()),
            'a' => day[..3].to_string(),
            'A' => day.to_string(),
            'b' => month[..3].to_string(),
            'B' => month.to_string(),
            'z' => "+0000".to_string(),
            'Z' => "UTC".to_string(),
            '%' => "%".to_string(),
            other => format!("%{other}"),
        };
        out.push_str(&s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_python() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            strftime(&t, "%Y-%m-%d %H:%M:%S %a %b %j %s %%"),
            "2023-11-14 22:13:20 Tue Nov 318 1700000000 %"
        );
        assert_eq!(strftime(&t, "%s.%f"), "1700000000.000000");
    }
}
