//! The HTML report (`--format html`) on real captures: every failure group of the JSON document
//! has its ladder diagram, whose arrows carry exactly the representative session's evidence
//! frames; the page fetches nothing (no script, no external reference of any kind); nothing
//! from the wire becomes markup (the hostile samples: certificate names with HTML, Markdown,
//! terminal escapes). Then in a real browser (headless Chromium from the distribution, installed
//! by .ci/run): the page loads with the network cut off and no console error, shows every group,
//! and is shot at 360 and 1000 px wide into target/test-artifacts/.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIXED: &str = "tls-mixed";
const HOSTILE: [&str; 2] = ["tls12-hostile-names", "tls13-hostile-names"];
/// Steps a ladder draws at most (src/report/html/ladder.rs).
const STEPS: usize = 40;

fn sample(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/cases")
        .join(case)
        .join(format!("{case}.pcap"))
}

fn analyze(format: &str, case: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
        .args(["analyze", "-f", format])
        .arg(sample(case))
        .output()
        .expect("run tlsdiag");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the report is UTF-8")
}

/// Each failure group of the JSON document — (server, SNI, cause, reason) — by its
/// representative (earliest) session's first frame, with that session's evidence frames.
fn groups_from_json(case: &str) -> BTreeMap<u64, Vec<u64>> {
    let doc: Value = serde_json::from_str(&analyze("json", case)).expect("JSON");
    let mut reps: BTreeMap<(String, String, String, String), &Value> = BTreeMap::new();
    for s in doc["sessions"].as_array().expect("sessions") {
        if s["outcome"] != "failed" {
            continue;
        }
        let key = (
            format!("{}:{}", s["server"]["ip"], s["server"]["port"]),
            s["tls"]["client"]["server_name"].as_str().unwrap_or("").to_string(),
            s["cause"].as_str().expect("cause").to_string(),
            s["reason"].as_str().expect("reason").to_string(),
        );
        let first = |v: &Value| v["first_frame"].as_u64().expect("first_frame");
        let e = reps.entry(key).or_insert(s);
        if first(s) < first(e) {
            *e = s;
        }
    }
    reps.values()
        .map(|s| {
            let frames = s["evidence"]
                .as_array()
                .expect("evidence")
                .iter()
                .map(|e| e["frame"].as_u64().expect("frame"))
                .collect();
            (s["first_frame"].as_u64().expect("first_frame"), frames)
        })
        .collect()
}

/// The values of `attr="…"` in `text`, in order.
fn attr_values<'a>(text: &'a str, attr: &str) -> Vec<&'a str> {
    let pat = format!("{attr}=\"");
    text.match_indices(&pat)
        .filter_map(|(i, _)| {
            let rest = &text[i + pat.len()..];
            rest.find('"').map(|j| &rest[..j])
        })
        .collect()
}

/// The ladders of a page: group section's representative first frame → its arrows' frames.
fn ladders(html: &str) -> BTreeMap<u64, Vec<u64>> {
    let mut out = BTreeMap::new();
    for part in html.split("<section class=\"group\"").skip(1) {
        let part = part.split("</section>").next().expect("section");
        let first: u64 = attr_values(part, "data-first-frame")[0].parse().expect("first frame");
        let svg = part.split("<svg").nth(1).expect("an SVG ladder in every group");
        let svg = svg.split("</svg>").next().expect("svg end");
        assert!(
            svg.contains("<title") && svg.contains("<desc"),
            "ladder without text alternative"
        );
        let frames = attr_values(svg, "data-frame")
            .iter()
            .map(|f| f.parse().expect("frame number"))
            .collect();
        // One failing step per diagram, highlighted.
        assert_eq!(svg.matches("failing\"").count(), 1, "one failing step:\n{svg}");
        assert!(out.insert(first, frames).is_none(), "one section per group");
    }
    out
}

/// The element names a page uses.
fn tag_names(html: &str) -> BTreeSet<String> {
    html.split('<')
        .skip(1)
        .filter_map(|t| {
            let t = t.strip_prefix('/').unwrap_or(t);
            let name: String = t.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            (!name.is_empty()).then(|| name.to_ascii_lowercase())
        })
        .collect()
}

/// What our printer writes, and nothing else: no script, image, frame, link, object, form.
const OUR_TAGS: &[&str] = &[
    "a", "body", "br", "circle", "code", "dd", "defs", "desc", "details", "div", "dl", "dt", "footer", "g", "h1", "h2",
    "h3", "head", "header", "html", "li", "line", "main", "marker", "meta", "ol", "p", "path", "pattern", "rect",
    "section", "span", "style", "summary", "svg", "table", "tbody", "td", "text", "th", "thead", "title", "tr", "ul",
];

fn assert_inert(html: &str, case: &str) {
    let tags = tag_names(html);
    let foreign: Vec<&String> = tags.iter().filter(|t| !OUR_TAGS.contains(&t.as_str())).collect();
    assert!(foreign.is_empty(), "{case}: elements not ours: {foreign:?}");
    assert!(
        !html.contains("<script") && !html.to_ascii_lowercase().contains("<script"),
        "{case}"
    );
    for href in attr_values(html, "href") {
        assert!(href.starts_with('#'), "{case}: external href {href:?}");
    }
    assert!(attr_values(html, "src").is_empty(), "{case}: a src attribute");
    for (i, _) in html.match_indices("url(") {
        assert!(html[i + 4..].starts_with('#'), "{case}: external url( at {i}");
    }
    assert!(!html.contains("@import") && !html.contains("<link"), "{case}");
    assert!(
        html.contains("Content-Security-Policy\" content=\"default-src 'none'"),
        "{case}"
    );
    // Controls from the wire are shown as escapes, never raw.
    assert!(
        !html.chars().any(|c| c.is_control() && c != '\n'),
        "{case}: a raw control character"
    );
}

#[test]
fn every_group_has_a_ladder_of_its_representative_sessions_evidence() {
    for case in [MIXED, HOSTILE[0], HOSTILE[1]] {
        let html = analyze("html", case);
        let want = groups_from_json(case);
        let got = ladders(&html);
        assert!(!want.is_empty(), "{case}: failures expected");
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{case}: one diagram per failure group, of its earliest session"
        );
        for (first, frames) in &want {
            let drawn: Vec<u64> = frames.iter().copied().take(STEPS).collect();
            assert_eq!(got[first], drawn, "{case}: group of frame {first}: arrows vs evidence");
        }
        assert_inert(&html, case);
        // The timeline: one stacked bar group per busy bin, and the table alternative.
        assert!(
            html.contains("id=\"timeline\"") && html.contains("The same as a table"),
            "{case}"
        );
    }
    // tls-mixed: six groups, the failing steps where the summaries say.
    let html = analyze("html", MIXED);
    assert_eq!(html.matches("<section class=\"group\"").count(), 6);
    assert!(
        html.contains("class=\"step kind-alert failing\" data-frame=\"26\""),
        "expired: the alert"
    );
    // The silent server: the ClientHello it never answered, so marked, then the 3 s pause.
    assert!(
        html.contains("class=\"step kind-tls failing\" data-frame=\"64\""),
        "server_silent: the ClientHello"
    );
    assert!(html.contains("[✖ NO ANSWER] ClientHello") && html.contains("⋯ 3.0 s later ⋯"));
}

#[test]
fn hostile_names_render_as_text() {
    for case in HOSTILE {
        let html = analyze("html", case);
        assert_inert(&html, case);
        // The client's hostile SNI (terminal escapes) is shown, escaped.
        assert!(
            html.contains("good.test\\x1b[2J\\x1b]0;sni"),
            "{case}: SNI not shown as text"
        );
    }
    // TLS 1.2: the certificate's names are visible, their markup as text (with the RFC 4514
    // backslashes of the distinguished name).
    let html = analyze("html", HOSTILE[0]);
    for shown in [
        "\\&lt;script\\&gt;alert(1)\\&lt;/script\\&gt;",
        "O=\\&lt;img src=x onerror=alert(1)\\&gt;",
        "[click](http://evil.example)",
    ] {
        assert!(html.contains(shown), "{shown:?} not shown as text");
    }
}

// --- In a real browser -------------------------------------------------------------------------

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        let path = std::env::var_os("PATH")?;
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let why = "no chromium or chromium-browser on PATH (Debian: apt-get install chromium)";
    common::skip_unless_ci(why);
    None
}

/// Runs headless Chromium on `page` with the network cut off (every name unresolvable, every
/// request through a proxy on a closed local port) and a fresh profile; returns (stdout,
/// stderr). Killed after 90 s.
fn headless(browser: &Path, page: &Path, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().expect("profile dir");
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            &format!("--proxy-server=http://127.0.0.1:{closed}"),
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let (mut so, mut se) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut so, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut se, &mut s).ok();
        s
    });
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (out.join().expect("stdout"), err.join().expect("stderr"))
}

fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("Uncaught") || l.contains("Refused") || l.contains("CONSOLE") || l.contains("violates"))
        .collect()
}

#[test]
fn renders_in_headless_chromium_offline_with_every_group() {
    let Some(browser) = chromium() else { return };
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    for case in [MIXED, HOSTILE[0], HOSTILE[1]] {
        let page = artifacts.join(format!("{case}.html"));
        std::fs::write(&page, analyze("html", case)).expect("write page");
        let (dom, stderr) = headless(&browser, &page, &["--dump-dom".to_string()]);
        let groups = groups_from_json(case);
        assert!(
            dom.contains("<h1>TLS handshake failures"),
            "{case}: page did not load:\n{stderr}"
        );
        // Every group is in the rendered document with its diagram's arrows.
        let drawn = ladders(&dom);
        assert_eq!(drawn.len(), groups.len(), "{case}: groups in the DOM");
        for (first, frames) in &groups {
            assert_eq!(
                drawn[first],
                frames.iter().copied().take(STEPS).collect::<Vec<_>>(),
                "{case}"
            );
        }
        // Nothing from the capture became an element in the browser's own DOM either.
        let foreign: Vec<String> = tag_names(&dom)
            .into_iter()
            .filter(|t| !OUR_TAGS.contains(&t.as_str()))
            .collect();
        assert!(
            foreign.is_empty(),
            "{case}: the browser built elements not ours: {foreign:?}"
        );
        assert_eq!(console_errors(&stderr), Vec::<&str>::new(), "{case}: console errors");
        if case == MIXED {
            for width in [360, 1000] {
                let shot = artifacts.join(format!("{case}-{width}.png"));
                let _ = std::fs::remove_file(&shot);
                // Headless Chromium lays a window out at 500 px at least: the narrow view is the
                // page in a 360 px frame of a wrapper page.
                let target = if width < 500 {
                    let wrapper = artifacts.join(format!("{case}-frame-{width}.html"));
                    std::fs::write(
                        &wrapper,
                        format!(
                            "<!DOCTYPE html><html><body style=\"margin:0\"><iframe src=\"{case}.html\" style=\"width:{width}px;height:2000px;border:0\"></iframe></body></html>"
                        ),
                    )
                    .expect("write wrapper");
                    wrapper
                } else {
                    page.clone()
                };
                let (_, stderr) = headless(
                    &browser,
                    &target,
                    &[
                        format!("--screenshot={}", shot.display()),
                        format!("--window-size={},2000", width.max(500)),
                    ],
                );
                let png =
                    std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot {}: {e}\n{stderr}", shot.display()));
                assert!(
                    png.starts_with(b"\x89PNG") && png.len() > 10_000,
                    "{width} px screenshot"
                );
                assert_eq!(
                    console_errors(&stderr),
                    Vec::<&str>::new(),
                    "{width} px: console errors"
                );
            }
        }
    }
}
