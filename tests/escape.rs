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

// ---------------------------------------------------------------------------------------------
// End to end: the real binary on samples/cases/tls1[23]-hostile-names (a real OpenSSL server
// whose certificates carry terminal escapes and Markdown, and a real client's hostile SNI).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tlsdiag::capture::Capture;
use tlsdiag::pipeline::{Analyzer, Options as PipelineOptions};
use tlsdiag::report::model::SessionReport;

fn sample(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/cases")
        .join(case)
        .join(format!("{case}.pcap"))
}

fn tlsdiag(args: &[&str], case: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .arg("analyze")
        .args(args)
        .arg(sample(case))
        .output()
        .expect("run tlsdiag");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{case} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Why `out` is unsafe for a terminal, if it is: a control character other than the line feed,
/// or an invisible character that reorders or hides text.
fn terminal_hazard(out: &str) -> Option<(usize, char)> {
    out.char_indices().find(|&(_, c)| {
        (c.is_control() && c != '\n')
            || ('\u{200b}'..='\u{200f}').contains(&c)
            || ('\u{2028}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
            || c == '\u{feff}'
    })
}

/// The lines a forged CR/LF would start: none may exist.
fn assert_no_forged_line(out: &str, what: &str) {
    for l in out.lines() {
        let t = l.trim_start();
        assert!(
            !t.starts_with("established 999") && !t.starts_with("2026-12-07T05:00:00Z"),
            "{what}: forged line {l:?}"
        );
    }
}

const CASES: [&str; 2] = ["tls12-hostile-names", "tls13-hostile-names"];

#[test]
fn hostile_sample_text_and_markdown_hold_no_control_byte() {
    for case in CASES {
        for args in [&[][..], &["--all"], &["-f", "markdown"]] {
            let out = tlsdiag(args, case);
            assert!(
                out.contains("hostname_mismatch") || out.contains("rejected_by_client"),
                "{out}"
            );
            assert_eq!(terminal_hazard(&out), None, "{case} {args:?}:\n{out}");
            assert_no_forged_line(&out, case);
            // The hostile SNI is shown, escaped.
            assert!(out.contains("x1b[2J"), "{case} {args:?}:\n{out}");
        }
    }
    // The certificate names are visible in TLS 1.2 (escaped as \x.. or RFC 4514 \XX).
    let text = tlsdiag(&[], "tls12-hostile-names");
    assert!(text.contains("evil.example\\x1b]0;pwned\\x07"), "{text}");
    assert!(
        text.contains("x\\r\\n  established 999 [click](http://evil.example)"),
        "{text}"
    );
    assert!(text.contains("\\u{202e}gnp.example"), "{text}");
    assert!(text.contains("O=\\1B]52\\;c\\;cHduZWQ=\\07 OSC52 clipboard"), "{text}");
    assert!(text.contains("the certificate covers attacker.example but the client asked for good.test"));
}

#[test]
fn hostile_sample_markdown_renders_no_link_image_or_html() {
    for case in CASES {
        let md = tlsdiag(&["-f", "markdown"], case);
        let r = render(&md);
        // Our own Markdown uses bold labels and nothing else that is active.
        assert!(r.active.iter().all(|k| k == "strong"), "{case}: {:?}\n{md}", r.active);
        assert!(r.text.contains("[click](http://evil.example)"), "{case}: {}", r.text);
        assert!(r.text.contains("www.evil.example"));
    }
    let md = tlsdiag(&["-f", "markdown"], "tls12-hostile-names");
    let r = render(&md);
    // In the timeline, as RFC 4514 renders them (`<`, `>`, `;` escaped by the DN itself).
    for shown in [
        "O=\\<img src=x onerror=alert(1)\\> | a | b |",
        "L=![x](http://evil.example/t.png) image",
        "\\<script\\>alert(1)\\</script\\>",
        "OU=see http://evil.example or www.evil.example or x@evil.example",
    ] {
        assert!(r.text.contains(shown), "{shown:?} not shown as text in\n{}", r.text);
    }
}

#[test]
fn hostile_sample_json_keeps_the_exact_strings() {
    let doc: Value = serde_json::from_str(&tlsdiag(&["-f", "json"], "tls12-hostile-names")).expect("JSON");
    let s = &doc["sessions"];
    let chain = &s[0]["handshake"]["certificate_chain"];
    let leaf = &chain[0]["x509"];
    assert_eq!(
        leaf["alternative_names"],
        serde_json::json!([
            "evil.example\x1b]0;pwned\x07",
            "x\r\n  established 999 [click](http://evil.example)",
            "\u{202e}gnp.example"
        ])
    );
    assert_eq!(
        leaf["subject"]["common_name"],
        serde_json::json!(["evil.example\r\n2026-12-07T05:00:00Z  established 999"])
    );
    assert_eq!(
        leaf["issuer"]["common_name"],
        serde_json::json!(["Evil CA [click](http://evil.example) | pipe"])
    );
    assert_eq!(
        chain[1]["x509"]["subject"]["distinguished_name"],
        "O=\\1B]52\\;c\\;cHduZWQ=\\07 OSC52 clipboard, OU=\\1B]0\\;pwned\\07 window title \\<script\\>alert(1)\\</script\\>, CN=Evil CA [click](http://evil.example) | pipe"
    );
    // Distinguished names come from the parsed RDNs: the comma inside O is not a separator.
    let second = &s[1]["handshake"]["certificate_chain"][0]["x509"]["subject"];
    assert_eq!(
        second["distinguished_name"],
        "O=evil\\, CN=good.test, CN=attacker.example"
    );
    assert_eq!(second["common_name"], serde_json::json!(["attacker.example"]));
    assert_eq!(s[1]["reason"], "hostname_mismatch");
}

#[test]
fn hostile_sample_live_lines_are_one_line_each_without_controls() {
    for case in CASES {
        let mut cap = Capture::open(&[sample(case)]).expect("open");
        let mut analyzer = Analyzer::new(PipelineOptions::default(), false);
        let mut lines = Vec::new();
        let mut sink = |s: SessionReport| lines.push(tlsdiag::report::text::session_line(&s));
        while let Some(p) = cap.next_packet() {
            analyzer.packet(&p, &mut sink);
        }
        analyzer.finish(&mut sink);
        assert_eq!(lines.len(), 2, "{case}: {lines:?}");
        for l in &lines {
            assert!(!l.contains('\n'), "{l:?}");
            assert_eq!(terminal_hazard(l), None, "{l:?}");
            assert!(l.contains("FAILED certificate/"), "{l:?}");
        }
        assert!(
            lines[0].contains("good.test\\x1b[2J\\x1b]0;sni\\x07[click]"),
            "{:?}",
            lines[0]
        );
    }
}
