//! The escaping layer (src/report/escape.rs), fed every character and hostile strings, and the
//! Markdown it produces rendered by a real CommonMark/GFM renderer (comrak, with GitHub's
//! extensions: tables, extended autolinks, strikethrough, footnotes, tag filter).

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use comrak::nodes::NodeValue;
use comrak::{Arena, Options, parse_document};
use proptest::prelude::*;
use tlsdiag::report::escape::{markdown, terminal};

/// What a GFM renderer made of a Markdown document: the kinds of active elements found (link,
/// image, raw HTML, footnote...) and the visible text of each paragraph, table cell and heading.
pub struct Rendered {
    pub active: Vec<String>,
    pub text: String,
}

fn gfm() -> Options<'static> {
    let mut o = Options::default();
    o.extension.strikethrough = true;
    o.extension.table = true;
    o.extension.autolink = true;
    o.extension.tasklist = true;
    o.extension.footnotes = true;
    o.extension.superscript = true;
    o.extension.wikilinks_title_after_pipe = true;
    o.parse.relaxed_autolinks = true;
    o
}

pub fn render(md: &str) -> Rendered {
    let arena = Arena::new();
    let root = parse_document(&arena, md, &gfm());
    let mut active = Vec::new();
    let mut text = String::new();
    for n in root.descendants() {
        let value = &n.data().value;
        match value {
            NodeValue::Text(t) => text.push_str(t),
            NodeValue::Code(c) => text.push_str(&c.literal),
            NodeValue::CodeBlock(c) => text.push_str(&c.literal),
            NodeValue::SoftBreak | NodeValue::LineBreak => text.push('\n'),
            NodeValue::Link(_)
            | NodeValue::Image(_)
            | NodeValue::HtmlInline(_)
            | NodeValue::HtmlBlock(_)
            | NodeValue::FootnoteReference(_)
            | NodeValue::FootnoteDefinition(_)
            | NodeValue::WikiLink(_)
            | NodeValue::Strikethrough
            | NodeValue::Superscript
            | NodeValue::Emph
            | NodeValue::Strong
            | NodeValue::TaskItem(_) => active.push(value.xml_node_name().to_string()),
            _ => {}
        }
    }
    Rendered { active, text }
}

/// Strings an attacker would put in a certificate or an SNI.
const HOSTILE: &[&str] = &[
    "\x1b[2J\x1b[H",
    "\x1b]0;pwned\x07",
    "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "ok\r\n2026-12-07T00:00:00Z  1.2.3.4:1 → 5.6.7.8:443  x  ESTABLISHED  established 999",
    "[click](http://evil.example)",
    "![x](http://evil.example/t.png)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "http://evil.example",
    "https://evil.example/path?q=1",
    "www.evil.example",
    "mail victim@evil.example now",
    "<http://evil.example>",
    "a | b | c",
    "[x]: http://evil.example\n[x]",
    "[^1]\n\n[^1]: http://evil.example",
    "*bold* _em_ ~~strike~~ `code` ^sup^",
    "&lt;img src=x&gt; &#x3C;b&#x3E;",
    "\u{202e}gnp.exe\u{200b}",
    "\u{9b}31m red",
    "[[wiki|http://evil.example]]",
    "- [ ] task",
    "# heading\n---\n> quote",
    "\\[escaped\\](x)",
];

/// The harness sees what raw strings would make, so its silence on escaped ones means something.
#[test]
fn the_renderer_finds_links_images_and_html_in_raw_strings() {
    for (raw, kind) in [
        ("[click](http://evil.example)", "link"),
        ("![x](http://evil.example/t.png)", "image"),
        ("a <img src=x onerror=alert(1)>", "html_inline"),
        ("<script>alert(1)</script>", "html_block"),
        ("a http://evil.example", "link"),
        ("a www.evil.example", "link"),
        ("mail victim@evil.example now", "link"),
        ("<http://evil.example>", "link"),
    ] {
        let r = render(raw);
        assert!(r.active.iter().any(|k| k == kind), "{raw:?}: {:?}", r.active);
        assert!(render(&markdown(raw)).active.is_empty(), "{raw:?}");
    }
}

#[test]
fn terminal_output_holds_no_control_for_hostile_strings() {
    for s in HOSTILE {
        let t = terminal(s);
        assert!(!t.chars().any(|c| c.is_control()), "{t:?}");
    }
}

#[test]
fn markdown_renders_hostile_strings_as_their_text() {
    for s in HOSTILE {
        let md = markdown(s);
        for wrap in [
            md.clone(),
            format!("| a | b |\n|---|---|\n| {md} | x |\n"),
            format!("### 1. {md}"),
            format!("- **What:** {md}"),
        ] {
            let r = render(&wrap);
            assert!(
                r.active.iter().all(|k| k == "strong"),
                "{s:?} → {wrap:?}: {:?}",
                r.active
            );
            assert!(r.text.contains(&*terminal(s)), "{s:?} → {wrap:?}: text {:?}", r.text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn terminal_escapes_every_control(s in any::<String>()) {
        let t = terminal(&s);
        let invisible = |c: char| {
            c.is_control()
                || ('\u{200b}'..='\u{200f}').contains(&c)
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        };
        prop_assert!(!t.chars().any(invisible), "{:?}", t);
        // The escapes are plain text: escaping again changes nothing.
        prop_assert_eq!(terminal(&t), t.clone());
        // A string without controls or backslashes is shown as it is, or longer.
        if !s.chars().any(|c| c.is_control() || c == '\\') {
            prop_assert!(t.len() >= s.len());
        }
    }

    #[test]
    fn terminal_is_injective_on_strings_without_backslash(a in "[^\\\\]*", b in "[^\\\\]*") {
        if a != b {
            prop_assert_ne!(terminal(&a), terminal(&b));
        }
    }

    #[test]
    fn markdown_renders_any_string_as_its_terminal_text(s in any::<String>()) {
        let r = render(&markdown(&s));
        prop_assert!(r.active.is_empty(), "{:?}: {:?}", s, r.active);
        // A paragraph trims leading and trailing spaces; everything else is shown as is.
        let want = terminal(&s);
        prop_assert_eq!(r.text.trim_matches(' '), want.trim_matches(' '));
    }

    #[test]
    fn markdown_renders_url_like_strings_inert(
        s in "(https?://|www\\.|[a-z]{1,5}@)?[a-z.:/@<>\\[\\]()!|_*~`&#;-]{0,40}"
    ) {
        let md = markdown(&s);
        let r = render(&format!("| h |\n|---|\n| {md} |\n"));
        prop_assert!(r.active.is_empty(), "{:?}: {:?}", s, r.active);
        prop_assert_eq!(r.text.strip_prefix('h').unwrap_or(""), s.trim_matches(' '));
    }

    #[test]
    fn markdown_bytes_every_single_char(c in any::<char>()) {
        let s = format!("a{c}b");
        let r = render(&markdown(&s));
        prop_assert!(r.active.is_empty());
        prop_assert_eq!(r.text, terminal(&s).into_owned());
    }
}
