//! Human units shared by the text, Markdown and HTML printers: durations ("5 min 0 s"), sizes
//! ("200 MB") and counts with thousands separators ("45,369").

/// A count with thousands separators: `45369` → `45,369`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A size in decimal units: `209466300` → `209 MB`, `999` → `999 bytes`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut v = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// A duration for a reader: `0.0042` → `4.2 ms`, `12.5` → `12.5 s`, `300` → `5 min 0 s`,
/// `299955` → `3 d 11 h`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "—".to_string();
    }
    if secs < 0.001 {
        return format!("{:.0} µs", secs * 1e6);
    }
    if secs < 0.01 {
        return format!("{:.1} ms", secs * 1e3);
    }
    if secs < 1.0 {
        return format!("{:.0} ms", secs * 1e3);
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let whole = secs.round() as u64;
    let (d, h, m, s) = (whole / 86_400, whole / 3600 % 24, whole / 60 % 60, whole % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {s} s")
    }
}

/// A time offset within a session: `+0.002 s`, `+1.250 s`, `+75.0 s`.
pub fn offset(secs: f64) -> String {
    if secs.abs() < 60.0 {
        format!("{secs:+.3} s")
    } else {
        format!("+{}", duration(secs))
    }
}

/// A time for a reader, to the second (UTC): `2026-11-24 06:48:02`.
pub fn when(t: crate::capture::Timestamp) -> String {
    let s = t.rfc3339();
    format!("{} {}", s.get(0..10).unwrap_or(""), s.get(11..19).unwrap_or(""))
}

/// A time range for a reader (UTC): `2026-11-24 06:48:02 → 06:48:12`, the date once when both
/// ends share it.
pub fn span(a: crate::capture::Timestamp, b: crate::capture::Timestamp) -> String {
    span_of(when(a), when(b))
}

/// [`span`] of two RFC 3339 times (as the capture summary holds them).
pub fn span_rfc3339(a: &str, b: &str) -> String {
    let short = |t: &str| match (t.get(0..10), t.get(11..19)) {
        (Some(d), Some(h)) => format!("{d} {h}"),
        _ => t.to_string(),
    };
    span_of(short(a), short(b))
}

fn span_of(x: String, y: String) -> String {
    match (x.get(0..10), y.get(0..10), y.get(11..)) {
        (Some(d1), Some(d2), Some(time)) if d1 == d2 => format!("{x} → {time}"),
        _ => format!("{x} → {y}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(45_369), "45,369");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(bytes(999), "999 bytes");
        assert_eq!(bytes(209_466_300), "209 MB");
        assert_eq!(bytes(1_700_000_000), "1.7 GB");
        assert_eq!(duration(300.0), "5 min 0 s");
        assert_eq!(duration(299_955.0), "3 d 11 h");
        assert_eq!(duration(10.8), "10.8 s");
        assert_eq!(duration(0.0042), "4.2 ms");
        assert_eq!(duration(0.2), "200 ms");
        assert_eq!(duration(3725.0), "1 h 2 min");
        assert_eq!(offset(0.0021), "+0.002 s");
        let t = crate::capture::Timestamp::from_parts(1_764_000_000, 5);
        assert_eq!(when(t), "2025-11-24 16:00:00");
        assert_eq!(span(t, t.add_nanos(70_000_000_000)), "2025-11-24 16:00:00 → 16:01:10");
        assert_eq!(
            span_rfc3339("2026-11-24T06:48:01.789297Z", "2026-11-24T06:48:12.575568Z"),
            "2026-11-24 06:48:01 → 06:48:12"
        );
        assert_eq!(
            span(t, t.add_nanos(86_400_000_000_000)),
            "2025-11-24 16:00:00 → 2025-11-25 16:00:00"
        );
    }
}
