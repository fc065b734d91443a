//! What `kith` prints: lines on standard output, times, short keys, and posts made safe
//! for a terminal.

use std::fmt::Display;
use std::io::Write as _;

use kith_protocol::kind::PostBody;
use kith_protocol::{Event, PublicKey, Timestamp};

/// Prints one line on standard output. Fails (rather than panicking) if the output was
/// closed, e.g. by `kith read | head`.
pub(crate) fn print_line(line: &dyn Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// A time as `2025-11-23 14:05 UTC`.
pub(crate) fn format_time(at: Timestamp) -> String {
    let seconds = at.as_millis() / 1000;
    let days = seconds / 86_400;
    let (year, month, day) = civil_date(days);
    let minute_of_day = (seconds % 86_400) / 60;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// The Gregorian (year, month, day) of a count of days since 1970-01-01, by counting
/// whole 400-year cycles (146 097 days each), then years within the cycle, then months
/// in a year that starts on 1 March, so that the leap day falls last.
fn civil_date(days_since_1970: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    let days = days_since_1970 + 719_468;
    let cycle = days / 146_097;
    let day_of_cycle = days % 146_097;
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = cycle * 400 + year_of_cycle + u64::from(month <= 2);
    (year, month, day)
}

/// A public key shortened for reading: `kith1qz3xv…8f2k`.
pub(crate) fn short_key(key: &PublicKey) -> String {
    let text = key.to_string();
    let tail = &text[text.len() - 4..];
    format!("{}…{tail}", &text[..10])
}

/// `text` with anything that could steer a terminal (control characters, escape
/// sequences, right-to-left overrides) replaced by `�`. Line breaks and tabs stay.
pub(crate) fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            let steering = (c.is_control() && c != '\n' && c != '\t')
                || ('\u{202A}'..='\u{202E}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c);
            if steering {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// A post for people: who and when on one line, the text indented below.
pub(crate) fn human_post(event: &Event, me: Option<&PublicKey>, show_group: bool) -> String {
    let who = if me == Some(&event.author()) {
        "you".to_owned()
    } else {
        short_key(&event.author())
    };
    let group = match event.group() {
        Some(g) if show_group => format!(" · group {}", &g.to_hex()[..8]),
        _ => String::new(),
    };
    let text = match event.body() {
        None => "(withdrawn by its author)".to_owned(),
        Some(body) => match serde_json::from_slice::<PostBody>(body) {
            Ok(post) => terminal_safe(&post.text),
            Err(_) => "(not a text message)".to_owned(),
        },
    };
    let indented: Vec<String> = text.lines().map(|line| format!("  {line}")).collect();
    format!(
        "{} · {who}{group}\n{}",
        format_time(event.created_at()),
        indented.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use kith_protocol::{EventBuilder, GroupId, Kind, SecretKey};

    use super::*;

    #[test]
    fn times_are_read_in_utc() {
        assert_eq!(format_time(Timestamp(0)), "1970-01-01 00:00 UTC");
        // 2000-02-29 (a leap day in a century year divisible by 400) 12:34:56.
        assert_eq!(
            format_time(Timestamp(951_827_696_000)),
            "2000-02-29 12:34 UTC"
        );
        assert_eq!(
            format_time(Timestamp(951_868_800_000)),
            "2000-03-01 00:00 UTC"
        );
        // 2023-12-31 23:59:59.999 and the next millisecond.
        assert_eq!(
            format_time(Timestamp(1_704_067_199_999)),
            "2023-12-31 23:59 UTC"
        );
        assert_eq!(
            format_time(Timestamp(1_704_067_200_000)),
            "2024-01-01 00:00 UTC"
        );
        // 2100 is not a leap year: 28 February is followed by 1 March.
        assert_eq!(
            format_time(Timestamp(4_107_456_000_000)),
            "2100-02-28 00:00 UTC"
        );
        assert_eq!(
            format_time(Timestamp(4_107_542_400_000)),
            "2100-03-01 00:00 UTC"
        );
    }

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        let text = "hi\u{1b}[2J\u{7}there\r\nnext\tline \u{202E}evil";
        let safe = terminal_safe(text);
        assert!(!safe.contains('\u{1b}') && !safe.contains('\r') && !safe.contains('\u{202E}'));
        assert!(safe.contains("next\tline"));
    }

    #[test]
    fn posts_show_when_who_and_what() {
        let key = SecretKey::from_seed(&[1; 32]);
        let body = PostBody {
            text: "two\nlines".into(),
        }
        .to_bytes();
        let event = EventBuilder::new(Kind::POST, Timestamp(0), body)
            .group(GroupId::from_bytes([0xab; 32]))
            .sign(&key)
            .unwrap();
        let short = short_key(&key.public_key());
        assert_eq!(short.chars().count(), 15);
        assert_eq!(
            human_post(&event, None, true),
            format!("1970-01-01 00:00 UTC · {short} · group abababab\n  two\n  lines")
        );
        assert_eq!(
            human_post(&event.without_body(), Some(&key.public_key()), false),
            "1970-01-01 00:00 UTC · you\n  (withdrawn by its author)"
        );
    }
}
