//! Escaping at the report boundary: one function per medium, called by its printer on every
//! string that may hold bytes from the wire (certificate names, SNI, ALPN, alert text, first
//! bytes, and the sentences built around them).
//!
//! What it is: [`terminal`] for the text report and `live` lines, [`markdown`] for the Markdown
//! report, [`mermaid`] for the text of a Markdown sequence diagram, [`html`] for the HTML report
//! (text and attribute values alike). What it is not: JSON and NDJSON, which serde escapes exactly. Strings travel
//! unescaped through the core; only a printer calls these.
//!
//! Guarantees: [`terminal`] output holds no control character (C0, DEL, C1) and none of the
//! invisible characters that reorder or hide text (bidi controls, zero-width characters, line
//! and paragraph separators): each is shown as a visible escape (`\x1b`, `\n`, `\u{202e}`), so a
//! string cannot clear a screen, set a title, write the clipboard (OSC 52) or start a forged
//! line. [`markdown`] output is that, plus a backslash before every ASCII punctuation character,
//! so a CommonMark/GFM renderer shows the escaped text literally: no link, image, autolink, HTML,
//! emphasis or table cell break comes from the string. [`html`] output is [`terminal`]'s with
//! `& < > " '` as character references: no element, attribute or entity comes from the string,
//! inside an element or a quoted attribute value. [`mermaid`] output holds only ASCII letters,
//! digits, space and `. , _ ( ) / = + * -`: nothing Mermaid reads as syntax (no `;`, `#`, `%`,
//! quotes, `:`, `<`, `>`, no line break; a `:` is shown as `,`).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal raw: a control character, or an invisible character
/// that reorders, hides or breaks text.
fn hidden(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    c.is_control()
        || matches!(
            c,
            '\u{ad}'                          // soft hyphen
            | '\u{34f}'                       // combining grapheme joiner
            | '\u{61c}'                       // Arabic letter mark (bidi)
            | '\u{115f}' | '\u{1160}'         // Hangul fillers (blank)
            | '\u{17b4}' | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'         // Mongolian variation selectors, vowel separator
            | '\u{200b}'..='\u{200f}'         // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}'         // line/paragraph separators, bidi embeddings/overrides
            | '\u{2060}'..='\u{206f}'         // word joiner, invisible operators, bidi isolates
            | '\u{3164}' | '\u{ffa0}'         // Hangul fillers
            | '\u{fe00}'..='\u{fe0f}'         // variation selectors
            | '\u{feff}'                      // zero-width no-break space (BOM)
            | '\u{fff9}'..='\u{fffb}'         // interlinear annotation
            | '\u{1d173}'..='\u{1d17a}'       // musical formatting
            | '\u{e0000}'..='\u{e0fff}' // tags, variation selectors supplement
        )
}

/// The visible escape of a [`hidden`] character.
fn push_escape(out: &mut String, c: char) {
    // Writing to a String cannot fail.
    let _ = match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    };
}

/// A string made safe for a terminal: every control or invisible character shown as an escape
/// (`\x1b`, `\n`, `\u{9b}`, `\u{202e}`); everything else, backslashes included, unchanged.
/// Borrows when there is nothing to escape.
pub fn terminal(s: &str) -> Cow<'_, str> {
    // Printable ASCII, the common case, checked a byte at a time (the loop vectorises).
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) || !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if hidden(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A string made safe as Markdown inline text (a paragraph, a list item, a heading or a GFM
/// table cell): [`terminal`], then a backslash before each character that could start Markdown
/// (CommonMark renders an escaped punctuation character as itself, so the rendered text equals
/// [`terminal`]'s output). Escaped: `` \ ` * _ [ ] < > ! & ~ | ^ @ ``; `:` before `/` (URL
/// autolinks); `.` after `www` (GFM `www.` autolinks); and at the start `#`, `+`, `-`, `=` and
/// the `.` or `)` after leading digits (headings, lists, breaks). Host names and addresses stay
/// readable in the raw Markdown.
pub fn markdown(s: &str) -> String {
    let visible = terminal(s);
    let mut out = String::with_capacity(visible.len() + visible.len() / 4 + 8);
    let mut chars = visible.chars().peekable();
    let mut leading_digits = true;
    let mut w_run = 0usize;
    let mut first = true;
    while let Some(c) = chars.next() {
        let escape = match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '!' | '&' | '~' | '|' | '^' | '@' => true,
            ':' => chars.peek() == Some(&'/'),
            '.' => w_run >= 3 || (leading_digits && !first),
            ')' => leading_digits && !first,
            '#' | '+' | '-' | '=' => first,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
        w_run = if c.eq_ignore_ascii_case(&'w') { w_run + 1 } else { 0 };
        leading_digits = leading_digits && c.is_ascii_digit();
        first = false;
    }
    out
}

/// A string made safe as HTML text or a quoted attribute value: [`terminal`] (controls and
/// invisible characters shown as escapes), then `&`, `<`, `>`, `"` and `'` as character
/// references. Everything else, any Unicode text included, is unchanged.
pub fn html(s: &str) -> String {
    let visible = terminal(s);
    let mut out = String::with_capacity(visible.len() + 16);
    for c in visible.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A string made safe as the message text of a Mermaid sequence diagram (one line, after the
/// arrow's colon), at most `max` characters: ASCII letters, digits, space and `. , _ ( ) / = + *
/// -` kept, `:` shown as `,`, every other character (non-ASCII included) shown as `?`.
pub fn mermaid(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | ' ' | '.' | ',' | '_' | '(' | ')' | '/' | '=' | '+' | '*' | '-' => c,
            ':' => ',',
            _ => '?',
        })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_shows_controls_and_invisibles() {
        assert_eq!(terminal("good.test"), Cow::Borrowed("good.test"));
        assert_eq!(
            terminal("a\x1b]0;pwned\x07\r\nestablished 999"),
            "a\\x1b]0;pwned\\x07\\r\\nestablished 999"
        );
        assert_eq!(
            terminal("\u{9b}2J\u{7f}\u{202e}x\u{200b}"),
            "\\u{9b}2J\\x7f\\u{202e}x\\u{200b}"
        );
        assert_eq!(terminal("é → ✓ \\x"), "é → ✓ \\x");
    }

    #[test]
    fn markdown_escapes_punctuation_and_controls() {
        assert_eq!(markdown("[a](b)"), "\\[a\\](b)");
        assert_eq!(markdown("a|b\nc"), "a\\|b\\\\nc");
        assert_eq!(markdown("good.test"), "good.test");
        assert_eq!(markdown("http://www.x"), "http\\://www\\.x");
        assert_eq!(markdown("12. x-y"), "12\\. x-y");
        assert_eq!(markdown("-x"), "\\-x");
        assert_eq!(markdown("\x1b"), "\\\\x1b");
    }

    #[test]
    fn html_escapes_markup_and_controls() {
        assert_eq!(html("good.test"), "good.test");
        assert_eq!(
            html("<img src=x onerror='a(1)'>&amp;\"\x1b"),
            "&lt;img src=x onerror=&#39;a(1)&#39;&gt;&amp;amp;&quot;\\x1b"
        );
        assert_eq!(html("é → \u{202e}"), "é → \\u{202e}");
    }

    #[test]
    fn mermaid_keeps_a_safe_ascii_set() {
        assert_eq!(mermaid("ClientHello SNI=good.test", 80), "ClientHello SNI=good.test");
        assert_eq!(mermaid("a;b#c%%d\"e<f>g:h\ni→", 80), "a?b?c??d?e?f?g,h?i?");
        assert_eq!(mermaid("abcdef", 3), "abc...");
    }
}
