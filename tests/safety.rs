//! Never destroy the evidence (issue 15): outputs that would touch an input are refused before
//! anything is read, outputs land whole or not at all, the JSON spill file leaves no trace, and
//! SIGINT/SIGTERM end a run with the report of what was read.
//!
//! Every run is the real binary on real sample captures (`samples/cases`), or on a capture made
//! here by tcpdump from a real OpenSSL exchange in a network namespace; every wait is bounded.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tlsdiag"))
}

fn sample(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/cases")
        .join(case)
        .join(format!("{case}.pcap"))
}

/// A private directory holding a copy of a sample capture as `x.pcap`.
fn workdir(case: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("x.pcap");
    std::fs::copy(sample(case), &input).expect("copy sample");
    (dir, input)
}

/// Bytes and modification time of a file: what "untouched" means.
fn fingerprint(p: &Path) -> (Vec<u8>, i64, i64) {
    let m = std::fs::metadata(p).expect("metadata");
    (std::fs::read(p).expect("read"), m.mtime(), m.mtime_nsec())
}

/// Reads a child's stdout and stderr on threads and waits at most `limit` for it to exit
/// (killed and failed past that): (exit code, stdout, stderr).
fn finish(mut child: Child, limit: Duration) -> (i32, String, String) {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = &mut out {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = &mut err {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tlsdiag did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = String::from_utf8_lossy(&t_out.join().expect("stdout")).into_owned();
    let err = String::from_utf8_lossy(&t_err.join().expect("stderr")).into_owned();
    (status.code().unwrap_or(-1), out, err)
}

/// Runs `tlsdiag ARGS` with stdin from /dev/null, bounded in time.
fn run(args: &[&str]) -> (i32, String, String) {
    let child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    finish(child, Duration::from_secs(60))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A refused run: exit 2, nothing on stdout, one line on stderr containing `says`.
fn assert_refused((code, out, err): (i32, String, String), says: &str) {
    assert_eq!(code, 2, "stderr: {err}");
    assert!(out.is_empty(), "stdout: {out}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(says), "{err:?} should say {says:?}");
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn an_output_naming_the_input_is_refused_and_the_input_untouched() {
    let (dir, input) = workdir("tls-mixed");
    let link = dir.path().join("link.pcap");
    std::os::unix::fs::symlink(&input, &link).expect("symlink");
    let hard = dir.path().join("hard.pcap");
    std::fs::hard_link(&input, &hard).expect("hard link");
    let before = fingerprint(&input);
    let i = s(&input);
    for (flag, out) in [
        ("-o", &input),
        ("-o", &link),
        ("-o", &hard),
        ("--write-failed", &input),
        ("--write-failed", &link),
        ("--write-sessions", &input),
        ("--write-sessions", &hard),
    ] {
        assert_refused(run(&["analyze", i, flag, s(out)]), "is the input");
        assert_eq!(fingerprint(&input), before, "{flag} {}", out.display());
    }
    // Through the symlink as input too, and with JSON (the format that spills).
    assert_refused(run(&["analyze", s(&link), "-f", "json", "-o", i]), "is the input");
    assert_eq!(fingerprint(&input), before);
    // No temporary file was left beside it.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["hard.pcap", "link.pcap", "x.pcap"]);
}

/// A key log given with `--keylog` (or `--keylog env`) is an input too: no output writes over
/// it, through a link or not.
#[test]
fn an_output_naming_the_key_log_is_refused_and_the_key_log_untouched() {
    let case = "keylog-tls13-expired";
    let (dir, input) = workdir(case);
    let keys = dir.path().join("keys.txt");
    std::fs::copy(sample(case).with_file_name("keys.txt"), &keys).expect("copy keys");
    let link = dir.path().join("link.txt");
    std::os::unix::fs::symlink(&keys, &link).expect("symlink");
    let before = fingerprint(&keys);
    let (i, k) = (s(&input), s(&keys));
    for (flag, out) in [
        ("-o", &keys),
        ("-o", &link),
        ("--write-failed", &keys),
        ("--write-sessions", &link),
    ] {
        assert_refused(run(&["analyze", "--keylog", k, i, flag, s(out)]), "is the key log");
        assert_eq!(fingerprint(&keys), before, "{flag} {}", out.display());
    }
    let out = bin()
        .args(["analyze", "--keylog", "env", i, "--write-failed", k])
        .env("SSLKEYLOGFILE", &keys)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the key log"));
    assert_eq!(fingerprint(&keys), before);
    // (`live` with a key log not there yet: tests/live.rs.)
    // Another file is fine, and the verdict is the keyed one.
    let carved = dir.path().join("failed.pcapng");
    let (code, _, err) = run(&["analyze", "--keylog", k, i, "--write-failed", s(&carved), "-q"]);
    assert!(code <= 1 && carved.is_file(), "{code}: {err}");
    assert_eq!(fingerprint(&keys), before);
}

#[test]
fn a_file_of_an_input_directory_is_an_input() {
    let (dir, input) = workdir("tls-mixed");
    let before = fingerprint(&input);
    let d = s(dir.path());
    assert_refused(
        run(&["analyze", d, "--write-failed", s(&input)]),
        "a file of the input directory",
    );
    // Also written relative to the directory, as `analyze . -o x.pcap` would.
    let rel = dir
        .path()
        .join(".")
        .join("sub-does-not-exist")
        .join("..")
        .join("x.pcap");
    let (code, _, err) = run(&["analyze", d, "-o", s(&rel)]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(fingerprint(&input), before);
    // A new file in the directory is fine: it is not an input yet.
    let report = dir.path().join("report.txt");
    let (code, out, err) = run(&["analyze", d, "-q", "-o", s(&report)]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(std::fs::read_to_string(&report).unwrap().contains("8 TLS session(s)"));
    assert_eq!(fingerprint(&input), before);
}

#[test]
fn two_outputs_naming_one_file_are_refused() {
    let (dir, input) = workdir("tls-mixed");
    let a = dir.path().join("a.out");
    let i = s(&input);
    assert_refused(run(&["analyze", i, "-o", s(&a), "--write-failed", s(&a)]), "both name");
    assert!(!a.exists(), "nothing written");
    std::fs::write(&a, b"older").unwrap();
    let alias = dir.path().join("alias.out");
    std::os::unix::fs::symlink(&a, &alias).unwrap();
    assert_refused(
        run(&["analyze", i, "--write-failed", s(&a), "--write-sessions", s(&alias)]),
        "both name",
    );
    assert_eq!(std::fs::read(&a).unwrap(), b"older");
}

#[test]
fn unwritable_outputs_are_refused_before_anything_is_read() {
    let (dir, input) = workdir("tls-mixed");
    let i = s(&input);
    let missing = dir.path().join("no-such-dir").join("r.txt");
    assert_refused(run(&["analyze", i, "-o", s(&missing)]), "does not exist");
    assert!(!missing.parent().unwrap().exists());
    assert_refused(run(&["analyze", i, "-o", s(dir.path())]), "is a directory");
    // Fails for root too: a path under a regular file, and a directory where no file can be
    // created.
    let under_file = input.join("r.txt");
    assert_refused(
        run(&["analyze", i, "--write-failed", s(&under_file)]),
        "not a directory",
    );
    assert_refused(run(&["analyze", i, "-o", "/proc/tlsdiag-report.txt"]), "cannot");

    // Up front: on standard input that never sends a byte, tlsdiag still answers at once.
    for args in [
        vec!["analyze", "-", "-o", s(&missing)],
        vec!["analyze", "-", "--write-failed", s(&dir.path().join("f.pcap"))],
    ] {
        let mut child = bin()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take();
        let (code, out, err) = finish(child, Duration::from_secs(10));
        drop(stdin);
        assert_refused(
            (code, out, err.clone()),
            if args[2] == "-o" {
                "does not exist"
            } else {
                "standard input"
            },
        );
        assert!(
            err.contains("save the capture to a file first") || args[2] == "-o",
            "{err}"
        );
    }
}

#[test]
fn carving_from_a_fifo_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("capture.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let out = dir.path().join("failed.pcap");
    // Nobody ever writes the FIFO: a run that opened it would wait forever (bounded here).
    let child = bin()
        .args(["analyze", s(&fifo), "--write-failed", s(&out)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let r = finish(child, Duration::from_secs(10));
    assert!(r.2.contains("save the capture to a file first"), "{}", r.2);
    assert_refused(r, "FIFO");
    assert!(!out.exists());
    // From standard input (a pipe), the same.
    let child = bin()
        .args(["analyze", "-", "--write-sessions", s(&out)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert_refused(finish(child, Duration::from_secs(10)), "standard input");
    assert!(!out.exists());
}

#[test]
fn outputs_land_whole_with_a_normal_mode_and_dash_is_stdout() {
    let (dir, input) = workdir("tls-mixed");
    let i = s(&input);
    let (report, failed, selected) = (
        dir.path().join("r.json"),
        dir.path().join("failed.pcap"),
        dir.path().join("sel.pcap"),
    );
    // An older report with its own mode, reached through a symlink: replaced, mode kept, the
    // symlink still a symlink to it.
    std::fs::write(&report, b"older report").unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("latest.json");
    std::os::unix::fs::symlink(&report, &link).unwrap();
    let (code, out, err) = run(&[
        "analyze",
        i,
        "-f",
        "json",
        "-o",
        s(&link),
        "--write-failed",
        s(&failed),
        "--write-sessions",
        s(&selected),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).expect("whole JSON");
    assert_eq!(v["counts"]["sessions"], 8);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::metadata(&report).unwrap().permissions().mode() & 0o7777, 0o640);
    // New files: 0666 less the umask, as any created file (not a temporary file's 0600).
    let umask = Command::new("sh").args(["-c", "umask"]).output().unwrap();
    let umask = u32::from_str_radix(String::from_utf8_lossy(&umask.stdout).trim(), 8).unwrap();
    for p in [&failed, &selected] {
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o7777,
            0o666 & !umask
        );
    }
    // The carves are real captures: tlsdiag reads them back.
    let (code, out, _) = run(&["analyze", "-q", s(&failed)]);
    assert_eq!(code, 1);
    assert!(
        out.contains("6 TLS session(s)") || out.contains("failed       6"),
        "{out}"
    );
    // `-o -` is standard output: no file named `-`.
    let (code, out, _) = run(&["analyze", "-q", i, "-o", "-"]);
    assert_eq!(code, 1);
    assert!(out.contains("8 TLS session(s)"));
    assert!(!Path::new("-").exists() && !dir.path().join("-").exists());
    // Nothing else was left in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
}

/// The first `records` packets of a classic little-endian pcap (header included).
fn pcap_prefix(bytes: &[u8], records: usize) -> Vec<u8> {
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "classic little-endian pcap");
    let mut at = 24;
    for _ in 0..records {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + len;
    }
    bytes[..at].to_vec()
}

/// Sessions and counts of a JSON report (what must not depend on how the capture ended).
fn sessions_and_counts(json: &str) -> (serde_json::Value, serde_json::Value) {
    let v: serde_json::Value = serde_json::from_str(json).expect("json report");
    (v["sessions"].clone(), v["counts"].clone())
}

#[test]
fn sigint_and_sigterm_on_a_pipe_print_the_report_of_what_was_read() {
    let bytes = std::fs::read(sample("tls-mixed")).unwrap();
    let prefix = pcap_prefix(&bytes, 44);
    // What the same packets say as a file that ends there.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prefix.pcap");
    std::fs::write(&file, &prefix).unwrap();
    let (want_code, want, _) = run(&["analyze", "-f", "json", "--all", s(&file)]);
    let (want_sessions, want_counts) = sessions_and_counts(&want);
    assert!(want_sessions.as_array().unwrap().len() >= 3);

    for sig in ["-INT", "-TERM"] {
        for threads in ["1", "2"] {
            let mut child = bin()
                .args(["analyze", "-f", "json", "--all", "-j", threads, "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            // The feeder writes the capture in pieces, then pauses with the pipe open.
            let mut stdin = child.stdin.take().unwrap();
            for piece in prefix.chunks(4000) {
                stdin.write_all(piece).unwrap();
                stdin.flush().unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(700));
            signal(child.id(), sig);
            let (code, out, err) = finish(child, Duration::from_secs(10));
            drop(stdin);
            assert_eq!(code, want_code, "{sig} -j{threads}: {err}");
            let (sessions, counts) = sessions_and_counts(&out);
            assert_eq!(sessions, want_sessions, "{sig} -j{threads}");
            assert_eq!(counts, want_counts);
            let name = if sig == "-INT" { "SIGINT" } else { "SIGTERM" };
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let problems = v["capture"]["input_problems"].to_string();
            assert!(
                problems.contains(&format!("interrupted by {name} after 44 packets")),
                "{problems}"
            );
            assert!(err.contains(name), "{err}");
        }
    }
}

#[test]
fn a_second_signal_exits_at_once_and_leaves_older_outputs_alone() {
    let (dir, input) = workdir("tls-mixed");
    // The report goes to a FIFO nobody reads: the run stays stuck writing it after the first
    // signal, so only the second one can end it.
    let fifo = dir.path().join("report.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let failed = dir.path().join("failed.pcap");
    std::fs::write(&failed, b"older carve").unwrap();
    let child = bin()
        .args(["analyze", s(&input), "-o", s(&fifo), "--write-failed", s(&failed)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, "-INT");
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, "-INT");
    let (code, out, err) = finish(child, Duration::from_secs(10));
    assert_eq!(code, 130, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("exiting at once"), "{err}");
    assert_eq!(std::fs::read(&failed).unwrap(), b"older carve");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("tlsdiag"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn a_killed_run_leaves_the_older_report_in_place() {
    let (dir, input) = workdir("tls-mixed");
    let report = dir.path().join("verdicts.ndjson");
    std::fs::write(&report, b"older verdicts\n").unwrap();
    let bytes = std::fs::read(&input).unwrap();
    let mut child = bin()
        .args(["analyze", "-f", "ndjson", "-o", s(&report), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&pcap_prefix(&bytes, 60)).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // Sessions were streamed by now, but into the temporary file.
    assert_eq!(std::fs::read(&report).unwrap(), b"older verdicts\n");
    signal(child.id(), "-KILL");
    let (code, _, _) = finish(child, Duration::from_secs(10));
    drop(stdin);
    assert_eq!(code, -1, "killed");
    assert_eq!(std::fs::read(&report).unwrap(), b"older verdicts\n");
}

/// A capture of `copies` replays of the tls-mixed sample (new client ports, later times).
fn replicate(copies: u32, out: &Path) {
    let bytes = std::fs::read(sample("tls-mixed")).unwrap();
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        records.push(&bytes[at..at + 16 + len]);
        at += 16 + len;
    }
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    w.write_all(&bytes[..24]).unwrap();
    for i in 0..copies {
        for r in &records {
            let mut r = r.to_vec();
            let secs = u32::from_le_bytes(r[0..4].try_into().unwrap()) + i * 20;
            r[0..4].copy_from_slice(&secs.to_le_bytes());
            // Ethernet + IPv4: the client's port (the one that is not 443) moves on.
            let t = 16 + 14 + ((r[16 + 14] & 0x0f) as usize) * 4;
            let (sp, dp) = (
                u16::from_be_bytes([r[t], r[t + 1]]),
                u16::from_be_bytes([r[t + 2], r[t + 3]]),
            );
            let shift = |p: u16| 1024 + ((u32::from(p) + i * 97) % 60000) as u16;
            if dp == 443 {
                r[t..t + 2].copy_from_slice(&shift(sp).to_be_bytes());
            } else if sp == 443 {
                r[t + 2..t + 4].copy_from_slice(&shift(dp).to_be_bytes());
            }
            w.write_all(&r).unwrap();
        }
    }
    w.flush().unwrap();
}

#[test]
fn the_json_spill_file_has_no_name_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.pcap");
    replicate(1500, &input);
    let tmpdir = dir.path().join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    let report = dir.path().join("r.json");
    let child = bin()
        .args(["analyze", "-f", "json", "-j", "2", "-o", s(&report), s(&input)])
        .env("TMPDIR", &tmpdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // While it runs, the temporary directory never shows a file another user could open.
    let watcher = std::thread::spawn({
        let tmpdir = tmpdir.clone();
        move || {
            let mut seen_fd = false;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0, "a named file in TMPDIR");
                let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                    break;
                };
                for fd in fds.flatten() {
                    if let Ok(target) = std::fs::read_link(fd.path()) {
                        seen_fd |= target.starts_with(&tmpdir);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen_fd
        }
    });
    let (code, _, err) = finish(child, Duration::from_secs(60));
    let seen_fd = watcher.join().expect("watcher");
    assert_eq!(code, 1, "{err}");
    let json = std::fs::read(&report).unwrap();
    // More than the 16 MB kept in memory: the spill file was used.
    assert!(json.len() > 16 << 20, "{} bytes", json.len());
    let v: serde_json::Value = serde_json::from_slice(&json).expect("whole JSON");
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(v["counts"]["sessions"], 1500 * 8);
    // Spilled and kept sessions read back intact: each id is its first frame.
    for s in sessions {
        assert_eq!(s["id"], s["first_frame"]);
    }
    assert!(
        sessions
            .windows(2)
            .all(|w| w[0]["first_frame"].as_u64() <= w[1]["first_frame"].as_u64()),
        "capture order"
    );
    assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0, "nothing left behind");
    if !seen_fd {
        println!("note: the spill file was not caught open in /proc (a fast run); its absence from TMPDIR was checked");
    }
}

/// Whether this test can make a capture: root, tcpdump, openssl and `ip netns`.
fn can_capture() -> Result<(), String> {
    let uid = Command::new("id").arg("-u").output().map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root".into());
    }
    for tool in ["tcpdump", "openssl", "ip", "timeout"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("{tool} is not installed"));
        }
    }
    Ok(())
}

/// A network namespace of this test's own, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new() -> Option<Netns> {
        let name = format!("outputs-sig-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let ns = Netns(name);
        ns.exec(&["ip", "link", "set", "lo", "up"]).status().ok()?;
        Some(ns)
    }

    fn exec(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(cmd);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Kills a child process this test started, by its PID, when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigint_on_a_real_tcpdump_pipe() {
    if let Err(why) = can_capture() {
        println!("skipped: a real tcpdump pipe needs root, tcpdump, openssl and ip netns ({why})");
        return;
    }
    let Some(ns) = Netns::new() else {
        println!("skipped: cannot create a network namespace here");
        return;
    };
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/certs");
    let server = ns
        .exec(&[
            "openssl",
            "s_server",
            "-quiet",
            "-accept",
            "127.0.0.1:4433",
            "-cert",
            s(&certs.join("good.pem")),
            "-key",
            s(&certs.join("good.key")),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_server");
    let _server = Started(server);
    // tcpdump -w - | tlsdiag analyze -, as the README shows it. `ip netns exec` execs the
    // command, so these PIDs are the server's and tcpdump's own (killed when dropped).
    let mut tcpdump = ns
        .exec(&["tcpdump", "-i", "lo", "-U", "-w", "-", "tcp port 4433"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    let pipe = tcpdump.stdout.take().unwrap();
    let mut tcpdump_err = tcpdump.stderr.take().unwrap();
    let _tcpdump = Started(tcpdump);
    let analyzer = bin()
        .args(["analyze", "-p", "4433", "-f", "json", "-"])
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tlsdiag");
    // tcpdump says "listening on lo" once it captures.
    let mut said = [0u8; 64];
    let _ = tcpdump_err.read(&mut said);
    std::thread::sleep(Duration::from_millis(300));
    let mut tries = 0;
    let client_ok = loop {
        let st = ns
            .exec(&[
                "timeout",
                "10",
                "openssl",
                "s_client",
                "-connect",
                "127.0.0.1:4433",
                "-servername",
                "good.test",
                "-CAfile",
                s(&certs.join("ca.pem")),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("s_client");
        tries += 1;
        if st.success() || tries >= 5 {
            break st.success();
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(client_ok, "openssl s_client could not complete a handshake");
    std::thread::sleep(Duration::from_millis(700));
    signal(analyzer.id(), "-INT");
    let (code, out, err) = finish(analyzer, Duration::from_secs(15));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("a whole JSON report");
    assert!(v["counts"]["established"].as_u64().unwrap() >= 1, "{out}");
    assert_eq!(v["counts"]["failed"], 0, "{out}");
    let problems = v["capture"]["input_problems"].to_string();
    assert!(problems.contains("interrupted by SIGINT after"), "{problems}");
}

#[test]
fn analyze_dash_on_a_terminal_says_it_is_waiting() {
    let has_script = Command::new("sh")
        .args(["-c", "command -v script"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_script {
        println!("skipped: `script` (util-linux) is not installed, no terminal to give tlsdiag");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // `script` gives the command a terminal as standard input.
    let inner = format!(
        "echo $$ > '{}'; exec '{}' analyze -",
        s(&pidfile),
        env!("CARGO_BIN_EXE_tlsdiag")
    );
    let child = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    let start = Instant::now();
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "script did not start tlsdiag"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, "-INT");
    let (_, out, _) = finish(child, Duration::from_secs(10));
    assert!(
        out.contains("tlsdiag: waiting for a capture on standard input (e.g. tcpdump -w - ... | tlsdiag analyze -)"),
        "{out}"
    );
    assert!(out.contains("interrupted by SIGINT before a capture was read"), "{out}");
}

#[test]
fn carves_into_an_input_directory_read_only_what_the_analysis_read() {
    let (dir, input) = workdir("tls-mixed");
    let d = s(dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let want = elsewhere.path().join("sel.pcap");
    let (code, _, err) = run(&["analyze", "-q", s(&input), "--write-sessions", s(&want)]);
    assert_eq!(code, 1, "{err}");
    // The first carve lands in the directory before the second one reads the capture again:
    // the second must not read it as part of the capture.
    let (failed, selected) = (dir.path().join("failed.pcap"), dir.path().join("sel.pcap"));
    let (code, _, err) = run(&[
        "analyze",
        "-q",
        d,
        "--write-failed",
        s(&failed),
        "--write-sessions",
        s(&selected),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(failed.exists());
    assert_eq!(std::fs::read(&selected).unwrap(), std::fs::read(&want).unwrap());
}
