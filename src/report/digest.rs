//! Keeping a report's sessions in bounded memory.
//!
//! A capture may hold millions of sessions. The text, Markdown and HTML reports need counts, groups and
//! a few representative sessions: [`Digest`] aggregates as sessions arrive and keeps only the
//! earliest ones (by first frame, so the choice does not depend on thread timing). The JSON
//! document needs every session: [`SessionStore`] keeps each one serialized, in memory up to a
//! cap and in a temporary file beyond it, and writes them back in capture order.

use super::json::io_error;
use super::model::SessionReport;
use super::pseudonymize::Redactor;
use crate::capture::Timestamp;
use crate::diagnose::Outcome;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;

/// Failed sessions shown in full in a text report (the rest are counted).
pub const TEXT_BLOCKS: usize = 200;
/// Distinct clients remembered per failure group.
const GROUP_CLIENTS: usize = 1000;
/// Servers remembered for the "top failing servers" table.
const SERVERS: usize = 100_000;
/// Serialized sessions kept in memory before spilling to a temporary file.
const STORE_MEMORY: usize = 16 << 20;
/// Block size of the temporary file's writes and reads.
const SPILL_BLOCK: usize = 1 << 20;
/// Spilled bytes read back per slice of the output (the memory that reading back costs).
const SLICE: usize = 8 << 20;
/// Sessions this close in the temporary file are read in one block with what lies between.
const GAP: u64 = 256 << 10;

/// The `n` sessions with the smallest first frame.
#[derive(Debug)]
pub struct Earliest {
    n: usize,
    heap: BinaryHeap<Keyed>,
    /// Sessions offered in all.
    pub seen: u64,
}

#[derive(Debug)]
struct Keyed(Box<SessionReport>);

impl PartialEq for Keyed {
    fn eq(&self, o: &Keyed) -> bool {
        self.0.first_frame == o.0.first_frame
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, o: &Keyed) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Keyed {
    fn cmp(&self, o: &Keyed) -> std::cmp::Ordering {
        self.0.first_frame.cmp(&o.0.first_frame)
    }
}

impl Earliest {
    /// Keeps at most `n`.
    pub fn new(n: usize) -> Earliest {
        Earliest {
            n,
            heap: BinaryHeap::new(),
            seen: 0,
        }
    }

    fn offer(&mut self, s: &SessionReport) {
        self.seen += 1;
        if self.n == 0 {
            return;
        }
        if self.heap.len() < self.n {
            self.heap.push(Keyed(Box::new(s.clone())));
        } else if self.heap.peek().is_some_and(|top| s.first_frame < top.0.first_frame) {
            self.heap.pop();
            self.heap.push(Keyed(Box::new(s.clone())));
        }
    }

    /// The kept sessions in capture order.
    pub fn sorted(&self) -> Vec<&SessionReport> {
        let mut v: Vec<&SessionReport> = self.heap.iter().map(|k| &*k.0).collect();
        v.sort_by_key(|s| s.first_frame);
        v
    }

    /// Redacts every kept session (the order, by first frame, is unchanged).
    fn redact(&mut self, r: &Redactor) {
        let mut kept = std::mem::take(&mut self.heap).into_vec();
        for k in &mut kept {
            r.apply_assigned(&mut k.0);
        }
        self.heap = kept.into();
    }

    /// How many were offered but not kept.
    pub fn dropped(&self) -> u64 {
        self.seen - self.heap.len() as u64
    }
}

/// Failed sessions sharing server, SNI, cause and reason.
#[derive(Debug)]
pub struct Group {
    pub server: String,
    pub sni: String,
    pub cause: String,
    pub reason: String,
    pub count: u64,
    /// Sessions per client address (the first [`GROUP_CLIENTS`] distinct clients).
    pub clients: BTreeMap<IpAddr, u64>,
    pub more_clients: bool,
    pub first_start: Timestamp,
    pub last_end: Timestamp,
    /// Highest versions the group's clients offered (a fallback shows several).
    pub offered_max: BTreeSet<String>,
    /// The earliest session of the group.
    pub representative: Box<SessionReport>,
}

impl Group {
    /// Distinct clients, with a `+` when there were more than were remembered.
    pub fn clients_label(&self) -> String {
        if self.more_clients {
            format!("{}+", self.clients.len())
        } else {
            self.clients.len().to_string()
        }
    }

    /// What the server accepted in established sessions, when it explains this group's failure
    /// (a cipher failure or a version mismatch) and the server had any.
    pub fn explaining_profile<'a>(&self, r: &'a super::model::Report) -> Option<&'a super::model::ServerSummary> {
        let s = &self.representative;
        if self.cause != "cipher" && self.reason != "version_mismatch" {
            return None;
        }
        r.servers
            .iter()
            .find(|p| p.server.ip == s.server.ip && p.server.port == s.server.port && p.established > 0)
    }
}

/// Sessions of one server and SNI.
#[derive(Debug)]
struct ServerCount {
    sni: Option<Box<str>>,
    failed: u64,
    sessions: u64,
}

impl Digest {
    /// Failed and total sessions per server label (`ip:port`, with ` (SNI)` when there is one).
    pub fn server_counts(&self) -> impl Iterator<Item = (String, u64, u64)> + '_ {
        self.servers.iter().flat_map(|(server, names)| {
            names.iter().map(move |c| {
                let mut label = String::with_capacity(32);
                server.push_to(&mut label);
                if let Some(n) = &c.sni {
                    label.push_str(" (");
                    label.push_str(n);
                    label.push(')');
                }
                (label, c.failed, c.sessions)
            })
        })
    }
}

/// Server address as shown in reports: `ip:port`, IPv6 in brackets.
pub fn server_label(s: &SessionReport) -> String {
    let mut out = String::with_capacity(24);
    push_server_label(&mut out, s);
    out
}

fn push_server_label(out: &mut String, s: &SessionReport) {
    s.server.endpoint().push_to(out);
}

/// What the text and Markdown reports need, in bounded memory.
#[derive(Debug)]
pub struct Digest {
    /// The earliest failed sessions, shown in full.
    pub failures: Earliest,
    /// The earliest sessions of any outcome (for `--all`).
    pub all: Earliest,
    pub groups: HashMap<(String, String, String, String), Group>,
    /// Failed and total sessions per server and SNI (see [`Digest::server_counts`]).
    servers: HashMap<crate::flow::Endpoint, Vec<ServerCount>, crate::flow::FlowHashBuilder>,
    /// Entries in `servers` (bounded by [`SERVERS`]).
    server_entries: usize,
    pub servers_dropped: u64,
    /// Established sessions with a warning: (server, SNI, warning id) → (sessions, detail).
    pub warnings: BTreeMap<(String, String, String), (u64, String)>,
    /// Sessions per time bin (the HTML report's timeline).
    pub timeline: super::timeline::Timeline,
}

impl Digest {
    /// An empty digest; `all` keeps that many sessions of any outcome.
    pub fn new(all: usize) -> Digest {
        Digest {
            failures: Earliest::new(TEXT_BLOCKS),
            all: Earliest::new(all),
            groups: HashMap::new(),
            servers: HashMap::default(),
            server_entries: 0,
            servers_dropped: 0,
            warnings: BTreeMap::new(),
            timeline: super::timeline::Timeline::default(),
        }
    }

    /// Takes one session (not a no-data connection).
    pub fn add(&mut self, s: &SessionReport) {
        if s.no_data {
            return;
        }
        self.all.offer(s);
        self.timeline.add(s);
        // Counted by address and SNI; labels are written only for the report.
        let failed = u64::from(s.outcome == Outcome::Failed);
        let server = s.server.endpoint();
        let sni = s.server_name();
        let known = self
            .servers
            .get_mut(&server)
            .and_then(|names| names.iter_mut().find(|c| c.sni.as_deref() == sni));
        if let Some(c) = known {
            c.sessions += 1;
            c.failed += failed;
        } else if self.server_entries < SERVERS {
            self.servers.entry(server).or_default().push(ServerCount {
                sni: sni.map(Box::from),
                failed,
                sessions: 1,
            });
            self.server_entries += 1;
        } else {
            self.servers_dropped += 1;
        }
        if s.outcome == Outcome::Established {
            for w in &s.warnings {
                let key = (
                    server_label(s),
                    s.server_name().unwrap_or("").to_string(),
                    w.id.to_string(),
                );
                self.warnings.entry(key).or_insert((0, w.detail.clone())).0 += 1;
            }
        }
        if s.outcome != Outcome::Failed {
            return;
        }
        self.failures.offer(s);
        let key = (
            server_label(s),
            s.server_name().unwrap_or("").to_string(),
            s.cause.map(|c| c.id().to_string()).unwrap_or_default(),
            s.reason.clone().unwrap_or_default(),
        );
        let offered = s
            .handshake
            .offered_versions
            .iter()
            .max()
            .map(|v| v.to_string())
            .unwrap_or_default();
        match self.groups.get_mut(&key) {
            Some(g) => {
                g.count += 1;
                if g.clients.len() < GROUP_CLIENTS || g.clients.contains_key(&s.client.ip) {
                    *g.clients.entry(s.client.ip).or_default() += 1;
                } else {
                    g.more_clients = true;
                }
                g.first_start = g.first_start.min(s.start);
                g.last_end = g.last_end.max(s.end);
                g.offered_max.insert(offered);
                if s.first_frame < g.representative.first_frame {
                    *g.representative = s.clone();
                }
            }
            None => {
                let g = Group {
                    server: key.0.clone(),
                    sni: key.1.clone(),
                    cause: key.2.clone(),
                    reason: key.3.clone(),
                    count: 1,
                    clients: BTreeMap::from([(s.client.ip, 1)]),
                    more_clients: false,
                    first_start: s.start,
                    last_end: s.end,
                    offered_max: BTreeSet::from([offered]),
                    representative: Box::new(s.clone()),
                };
                self.groups.insert(key, g);
            }
        }
    }

    /// Replaces client addresses by their pseudonyms (given at the end of the run, so that they
    /// do not depend on the order in which threads decided the sessions).
    pub fn redact(&mut self, r: &Redactor) {
        self.failures.redact(r);
        self.all.redact(r);
        for g in self.groups.values_mut() {
            r.apply_assigned(&mut g.representative);
            let clients = std::mem::take(&mut g.clients);
            for (ip, n) in clients {
                *g.clients.entry(r.alias_or_unspecified(ip)).or_default() += n;
            }
        }
    }

    /// Failure groups, largest first.
    pub fn sorted_groups(&self) -> Vec<&Group> {
        let mut v: Vec<&Group> = self.groups.values().collect();
        v.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.server, &a.sni, &a.reason).cmp(&(&b.server, &b.sni, &b.reason)))
        });
        v
    }
}

/// Every session of a JSON document, serialized, in memory up to a cap, then in a temporary
/// file; written back in capture order with ids numbered from 1.
///
/// The temporary file comes from `tempfile::tempfile()`: created exclusively under an
/// unpredictable name in the temporary directory and unlinked at once (on Linux it never has a
/// name: `O_TMPFILE`), so no other user can open it and it disappears with the process on
/// every exit path, a panic or a kill included. It is written and read in large blocks.
pub struct SessionStore {
    /// (first frame, where) per session.
    index: Vec<(u64, Place)>,
    /// Serialized bytes kept in memory before spilling ([`STORE_MEMORY`]), spilled bytes read
    /// back per slice ([`SLICE`]), and the gap read through ([`GAP`]).
    limits: (usize, usize, u64),
    memory: Vec<Box<[u8]>>,
    memory_bytes: usize,
    /// The session being serialized (reused: no allocation per session once grown).
    buf: Vec<u8>,
    spill: Option<Spill>,
    /// With `--redact`: real client address → pseudonym, applied as the sessions are written.
    pseudonyms: Option<HashMap<IpAddr, IpAddr>>,
}

/// The temporary file and the end of what was written to it.
struct Spill {
    w: BufWriter<std::fs::File>,
    end: u64,
}

enum Place {
    Memory(usize),
    File { offset: u64, len: usize },
}

impl Default for SessionStore {
    fn default() -> SessionStore {
        SessionStore::with_limits(STORE_MEMORY, SLICE, GAP)
    }
}

impl SessionStore {
    /// A store with other limits than the defaults (tests use small ones to spill and read
    /// back many slices): bytes kept in memory, spilled bytes read back per slice, and the gap
    /// between two spilled sessions read through rather than skipped.
    pub fn with_limits(memory: usize, slice: usize, gap: u64) -> SessionStore {
        SessionStore {
            index: Vec::new(),
            limits: (memory, slice.max(1), gap),
            memory: Vec::new(),
            memory_bytes: 0,
            buf: Vec::new(),
            spill: None,
            pseudonyms: None,
        }
    }

    /// Stores one session.
    pub fn add(&mut self, s: &SessionReport) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, s).map_err(io_error)?;
        let text = self.buf.as_slice();
        if self.memory_bytes + text.len() <= self.limits.0 {
            // One allocation of the exact size.
            self.memory_bytes += text.len();
            self.index.push((s.first_frame, Place::Memory(self.memory.len())));
            self.memory.push(Box::from(text));
            return Ok(());
        }
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert(Spill {
                w: BufWriter::with_capacity(SPILL_BLOCK, tempfile::tempfile()?),
                end: 0,
            }),
        };
        spill.w.write_all(text)?;
        self.index.push((
            s.first_frame,
            Place::File {
                offset: spill.end,
                len: text.len(),
            },
        ));
        spill.end += text.len() as u64;
        Ok(())
    }

    /// Writes every session's `client.ip` as its pseudonym from `r` (a client without one as the
    /// unspecified address, never as itself).
    pub fn redact(&mut self, r: &Redactor) {
        self.pseudonyms = Some(r.table().clone());
    }

    /// Sessions stored.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no session was stored.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Writes the sessions as the elements of a JSON array, in capture order.
    ///
    /// Sessions were stored as they were decided (mostly as their connections ended), so in
    /// capture order the spilled ones jump back and forth in the temporary file. They are read
    /// back a bounded slice of the output at a time: the slice's sessions sorted by their place
    /// in the file, neighbours read together in large blocks, then written in capture order.
    pub fn write_array(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.index.sort_by_key(|(frame, _)| *frame);
        let spilled = match self.spill.take() {
            Some(spill) => Some(spill.w.into_inner().map_err(io::IntoInnerError::into_error)?),
            None => None,
        };
        out.write_all(b"[")?;
        let mut slice = Vec::new();
        let mut block = Vec::new();
        let mut n = 0;
        let mut from = 0;
        while from < self.index.len() {
            // The next slice of the output: at most SLICE bytes from the file (one session at least).
            let (mut to, mut bytes) = (from, 0);
            while let Some((_, place)) = self.index.get(to) {
                let len = match place {
                    Place::File { len, .. } => *len,
                    Place::Memory(_) => 0,
                };
                if to > from && bytes + len > self.limits.1 {
                    break;
                }
                bytes += len;
                to += 1;
            }
            let part = self.index.get(from..to).unwrap_or_default();
            let at = match &spilled {
                Some(f) => load_slice(f, part, self.limits.2, &mut slice, &mut block)?,
                None => Vec::new(),
            };
            for (k, (_, place)) in part.iter().enumerate() {
                let text: &[u8] = match place {
                    Place::Memory(i) => self.memory.get(*i).map_or(&[], |t| &t[..]),
                    Place::File { len, .. } => {
                        let start = at.get(k).copied().unwrap_or(0);
                        slice.get(start..start + len).unwrap_or_default()
                    }
                };
                write_element(out, n, text, self.pseudonyms.as_ref())?;
                n += 1;
            }
            from = to;
        }
        out.write_all(if self.index.is_empty() { b"]" } else { b"\n  ]" })
    }
}

/// Reads the spilled sessions of `part` (in output order) into `slice`, each at the returned
/// position (by index in `part`; memory sessions get none used): sorted by their place in the
/// file, sessions less than `gap` apart are read together, up to [`SPILL_BLOCK`] per read.
fn load_slice(
    file: &std::fs::File,
    part: &[(u64, Place)],
    gap: u64,
    slice: &mut Vec<u8>,
    block: &mut Vec<u8>,
) -> io::Result<Vec<usize>> {
    use std::os::unix::fs::FileExt;
    // (offset in the file, length, index in part), and where each lands in `slice`.
    let mut wanted: Vec<(u64, usize, usize)> = Vec::new();
    let mut at = vec![0; part.len()];
    let mut size = 0;
    for (k, (_, place)) in part.iter().enumerate() {
        if let Place::File { offset, len } = place {
            wanted.push((*offset, *len, k));
            if let Some(a) = at.get_mut(k) {
                *a = size;
            }
            size += len;
        }
    }
    slice.clear();
    slice.resize(size, 0);
    wanted.sort_unstable();
    let mut i = 0;
    while let Some(&(first, _, _)) = wanted.get(i) {
        // A run of neighbours: each starts within GAP of the previous one's end.
        let (mut j, mut end) = (i, first);
        while let Some(&(offset, len, _)) = wanted.get(j) {
            let next_end = offset + len as u64;
            if j > i && (offset > end + gap || next_end - first > SPILL_BLOCK as u64) {
                break;
            }
            end = end.max(next_end);
            j += 1;
        }
        block.clear();
        block.resize((end - first) as usize, 0);
        file.read_exact_at(block, first)?;
        for &(offset, len, k) in wanted.get(i..j).unwrap_or_default() {
            let from = (offset - first) as usize;
            let (Some(src), Some(&dst)) = (block.get(from..from + len), at.get(k)) else {
                return Err(io::Error::other("spill: a session outside its block"));
            };
            if let Some(d) = slice.get_mut(dst..dst + len) {
                d.copy_from_slice(src);
            }
        }
        i = j;
    }
    Ok(at)
}

/// Writes the `n`th element of the sessions array: `text`, one serialized session, with its
/// client address replaced by its pseudonym under `--redact`.
fn write_element(
    out: &mut dyn Write,
    n: usize,
    text: &[u8],
    pseudonyms: Option<&HashMap<IpAddr, IpAddr>>,
) -> io::Result<()> {
    out.write_all(if n == 0 { b"\n    " } else { b",\n    " })?;
    // Every session starts with {"id":N, — N (its first frame) is written as it is; the
    // client address after it may be replaced by its pseudonym.
    let id_len = text
        .strip_prefix(b"{\"id\":")
        .and_then(|r| r.iter().position(|&b| b == b','))
        .map_or(0, |i| i + 6);
    let (head, rest) = text.split_at(id_len.min(text.len()));
    out.write_all(head)?;
    let rest = match pseudonyms {
        Some(map) => write_client_pseudonym(out, rest, map)?,
        None => rest,
    };
    out.write_all(rest)
}

/// `rest` starts with the session's `,"client":{"ip":"ADDR"` (the field after `id`): writes that
/// part with the pseudonym of ADDR and returns what follows ADDR.
fn write_client_pseudonym<'a>(
    out: &mut dyn Write,
    rest: &'a [u8],
    map: &HashMap<IpAddr, IpAddr>,
) -> io::Result<&'a [u8]> {
    const HEAD: &str = ",\"client\":{\"ip\":\"";
    let tail = rest
        .strip_prefix(HEAD.as_bytes())
        .ok_or_else(|| io::Error::other("redaction: unexpected session layout"))?;
    let end = tail.iter().position(|&b| b == b'"').unwrap_or(0);
    let (addr, after) = tail.split_at(end);
    let real: IpAddr = std::str::from_utf8(addr)
        .ok()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| io::Error::other("redaction: unexpected client address"))?;
    let alias = map.get(&real).copied().unwrap_or(match real {
        IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    });
    write!(out, "{HEAD}{alias}")?;
    Ok(after)
}
