//! Where `analyze` and `live` write, checked before any input is read, and written so that a
//! failed or interrupted run never destroys anything.
//!
//! What it is: [`plan`] turns the output flags into [`Target`]s or one line saying why not: an
//! output that is an input (same device and inode after symlinks, a file of an input directory,
//! or the path an input resolves to), two outputs that are one file, a missing or unwritable
//! directory, a directory named as a file, carving from standard input or a FIFO (the second
//! pass would hang or read nothing). [`Output`] writes a regular file through a temporary file
//! in the target's directory (the `tempfile` crate: unpredictable name, exclusive creation),
//! synced and renamed over the target only by [`Output::commit`]; dropped without a commit, the
//! temporary file is removed and an older file at the target is left as it was.
//!
//! File mode: a new file gets 0666 less the umask (0644 under the usual 022), as a file created
//! by `File::create` would, not `tempfile`'s private 0600; a file replaced keeps its mode.
//! Replacing goes through the symlink: a symlink named as output keeps pointing at the new
//! file. An existing file that is not a regular file (`/dev/null`, a FIFO, a terminal) is
//! written in place.

use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, IoSlice, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tempfile::NamedTempFile;

/// Mode asked for a new output file (the umask applies, as for any file created).
const NEW_FILE_MODE: u32 = 0o666;
/// Write buffer of an output.
const BUFFER: usize = 256 << 10;

/// Temporary outputs not yet renamed into place, removed by [`discard_pending`] when a second
/// signal ends the process at once (destructors do not run then).
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Where one output goes.
#[derive(Clone, Debug)]
pub(super) enum Target {
    /// Standard output (no flag, or `-o -`).
    Stdout,
    /// A regular file, existing or not: `path` is where it lands (symlinks resolved), `shown`
    /// as typed; `mode` is the permission bits of the file it replaces.
    File {
        shown: PathBuf,
        path: PathBuf,
        mode: Option<u32>,
    },
    /// An existing file that is not a regular file (a device, a FIFO): written in place.
    Special { shown: PathBuf },
}

impl Target {
    /// The path as the user typed it (`-` for standard output).
    pub(super) fn shown(&self) -> &Path {
        match self {
            Target::Stdout => Path::new("-"),
            Target::File { shown, .. } | Target::Special { shown } => shown,
        }
    }
}

/// A file's identity: device and inode.
type FileId = (u64, u64);

/// One output flag: its name (for messages), the path given, and whether `-` means standard
/// output for it (a report does; a carved pcap needs a file).
pub(super) struct Flag<'a> {
    pub name: &'static str,
    pub path: Option<&'a Path>,
    pub stdout_ok: bool,
}

/// A file the inputs consist of: identity and resolved path.
struct InputFile {
    id: Option<FileId>,
    path: Option<PathBuf>,
    shown: PathBuf,
    /// The input directory it was found in.
    dir: Option<PathBuf>,
    /// A key log (`--keylog`), read like the capture and never written either.
    key_log: bool,
}

/// Checks every output against the inputs (the captures and the `keys` logs) and each other,
/// before anything is read; `carving`: the inputs will be read a second time. `Err` is the one
/// line to print (exit status 2).
pub(super) fn plan(
    inputs: &[PathBuf],
    keys: &[PathBuf],
    flags: &[Flag<'_>],
    carving: bool,
) -> Result<Vec<Option<Target>>, String> {
    let to_files = flags.iter().any(|f| f.path.is_some_and(|p| p.as_os_str() != "-"));
    if !to_files && !carving {
        return Ok(flags.iter().map(|f| f.path.map(|_| Target::Stdout)).collect());
    }
    let (mut files, pipe) = input_files(inputs);
    files.extend(keys.iter().map(|k| key_file(k)));
    if carving {
        if let Some(pipe) = pipe {
            let which = flags
                .iter()
                .filter(|f| f.path.is_some() && !f.stdout_ok)
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(" and ");
            return Err(format!(
                "{which} reads the capture a second time, which {pipe} cannot give; save the capture to a file first (e.g. tcpdump -w trace.pcap), then analyze that file"
            ));
        }
    }
    let mut planned: Vec<(Option<Target>, Option<FileId>)> = Vec::with_capacity(flags.len());
    for flag in flags {
        let Some(path) = flag.path else {
            planned.push((None, None));
            continue;
        };
        if path.as_os_str() == "-" {
            if !flag.stdout_ok {
                return Err(format!(
                    "{} writes a pcap file and needs a file name, not `-`",
                    flag.name
                ));
            }
            planned.push((Some(Target::Stdout), None));
            continue;
        }
        let (target, id) = target(flag.name, path)?;
        if let Target::File { path: resolved, .. } = &target {
            if let Some(input) = files
                .iter()
                .find(|i| (id.is_some() && i.id == id) || i.path.as_deref() == Some(resolved.as_path()))
            {
                return Err(match &input.dir {
                    None if input.key_log => format!(
                        "{} {} is the key log {}: tlsdiag never writes over its input; name another file",
                        flag.name,
                        path.display(),
                        input.shown.display()
                    ),
                    None => format!(
                        "{} {} is the input {}: tlsdiag never writes over its input; name another file",
                        flag.name,
                        path.display(),
                        input.shown.display()
                    ),
                    Some(dir) => format!(
                        "{} {} is {}, a file of the input directory {}: tlsdiag never writes over its input; name a file outside it",
                        flag.name,
                        path.display(),
                        input.shown.display(),
                        dir.display()
                    ),
                });
            }
            for (other, (t, other_id)) in flags.iter().zip(&planned) {
                let same_path = matches!(t, Some(Target::File { path: p, .. }) if p == resolved);
                if same_path || (id.is_some() && *other_id == id) {
                    return Err(format!(
                        "{} and {} both name {}; name two different files",
                        other.name,
                        flag.name,
                        path.display()
                    ));
                }
            }
        }
        planned.push((Some(target), id));
    }
    Ok(planned.into_iter().map(|(t, _)| t).collect())
}

/// What an output path is, or why it cannot be written; with the identity of an existing
/// regular file.
fn target(flag: &str, path: &Path) -> Result<(Target, Option<FileId>), String> {
    let shown = path.to_path_buf();
    let cannot = |e: &dyn std::fmt::Display| format!("cannot write {flag} {}: {e}", path.display());
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(format!(
            "{flag} {} is a directory; name a file (e.g. {}/report)",
            path.display(),
            path.display()
        )),
        Ok(m) if m.is_file() => {
            let resolved = fs::canonicalize(path).map_err(|e| cannot(&e))?;
            // Opened for writing without truncating: the permission check `File::create`
            // would make, with nothing changed.
            fs::OpenOptions::new()
                .write(true)
                .open(&resolved)
                .map_err(|e| cannot(&e))?;
            let dir = resolved.parent().unwrap_or(Path::new("/"));
            probe(dir).map_err(|e| cannot(&format!("cannot create a file in {}: {e}", dir.display())))?;
            Ok((
                Target::File {
                    shown,
                    path: resolved,
                    mode: Some(m.permissions().mode() & 0o7777),
                },
                Some((m.dev(), m.ino())),
            ))
        }
        Ok(m) => {
            // Opening a FIFO waits for its reader: that happens when the output is written.
            if !m.file_type().is_fifo() {
                fs::OpenOptions::new().write(true).open(path).map_err(|e| cannot(&e))?;
            }
            Ok((Target::Special { shown }, None))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let Some(name) = path.file_name() else {
                return Err(format!("{flag} {} does not name a file", path.display()));
            };
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let dir = match fs::metadata(parent) {
                Ok(m) if m.is_dir() => fs::canonicalize(parent).map_err(|e| cannot(&e))?,
                Ok(_) => return Err(cannot(&format!("{} is not a directory", parent.display()))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(format!(
                        "cannot write {flag} {}: the directory {} does not exist; create it first (mkdir -p {})",
                        path.display(),
                        parent.display(),
                        parent.display()
                    ));
                }
                Err(e) => return Err(cannot(&e)),
            };
            probe(&dir).map_err(|e| cannot(&format!("cannot create a file in {}: {e}", dir.display())))?;
            Ok((
                Target::File {
                    shown,
                    path: dir.join(name),
                    mode: None,
                },
                None,
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(cannot(&format!(
            "{} is not a directory",
            path.parent().unwrap_or(Path::new(".")).display()
        ))),
        Err(e) => Err(cannot(&e)),
    }
}

/// Whether a file can be created in `dir` (created and removed at once).
fn probe(dir: &Path) -> io::Result<()> {
    temp_builder().tempfile_in(dir).map(drop)
}

fn temp_builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(".tlsdiag-").suffix(".tmp");
    b.permissions(Permissions::from_mode(NEW_FILE_MODE));
    b
}

/// A key log given with `--keylog` (in `live` it may not exist yet: it is read as it appears).
fn key_file(p: &Path) -> InputFile {
    let m = fs::metadata(p).ok().filter(fs::Metadata::is_file);
    let path = fs::canonicalize(p).ok().or_else(|| {
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(fs::canonicalize(parent).ok()?.join(p.file_name()?))
    });
    InputFile {
        id: m.map(|m| (m.dev(), m.ino())),
        path,
        shown: p.to_path_buf(),
        dir: None,
        key_log: true,
    }
}

/// The files the inputs consist of, and the first input that can be read only once (standard
/// input or a FIFO), described for a message.
fn input_files(inputs: &[PathBuf]) -> (Vec<InputFile>, Option<String>) {
    let mut files = Vec::new();
    let mut pipe = None;
    let add = |files: &mut Vec<InputFile>, p: &Path, m: &fs::Metadata, dir: Option<&Path>| {
        files.push(InputFile {
            id: Some((m.dev(), m.ino())),
            path: fs::canonicalize(p).ok(),
            shown: p.to_path_buf(),
            dir: dir.map(Path::to_path_buf),
            key_log: false,
        });
    };
    for input in inputs {
        if input.as_os_str() == "-" {
            pipe.get_or_insert_with(|| "standard input".to_string());
            // Standard input redirected from a file (`< trace.pcap`) is that file.
            if let Ok(m) = fs::metadata("/dev/stdin") {
                if m.is_file() {
                    files.push(InputFile {
                        id: Some((m.dev(), m.ino())),
                        path: None,
                        shown: input.clone(),
                        dir: None,
                        key_log: false,
                    });
                }
            }
            continue;
        }
        let Ok(m) = fs::metadata(input) else {
            // Reading it will say why; its path still counts.
            files.push(InputFile {
                id: None,
                path: fs::canonicalize(input).ok(),
                shown: input.clone(),
                dir: None,
                key_log: false,
            });
            continue;
        };
        if m.is_dir() {
            add(&mut files, input, &m, None);
            for entry in fs::read_dir(input).into_iter().flatten().flatten() {
                let p = entry.path();
                if let Ok(m) = fs::metadata(&p) {
                    if m.is_file() {
                        add(&mut files, &p, &m, Some(input));
                    }
                }
            }
        } else {
            if m.file_type().is_fifo() || m.file_type().is_char_device() || m.file_type().is_socket() {
                pipe.get_or_insert_with(|| format!("the FIFO {}", input.display()));
            }
            add(&mut files, input, &m, None);
        }
    }
    (files, pipe)
}

/// An output being written (see the module documentation).
pub(super) struct Output {
    w: BufWriter<Dest>,
    /// The path the temporary file is renamed to.
    to: Option<PathBuf>,
    _pending: Option<Pending>,
}

enum Dest {
    /// Unlocked: the output may move to a flusher thread (a lock is !Send); written in blocks,
    /// so locking per write costs nothing.
    Stdout(io::Stdout),
    Temp(NamedTempFile),
    Special(File),
}

impl Write for Dest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Dest::Stdout(w) => w.write(buf),
            Dest::Temp(w) => w.write(buf),
            Dest::Special(w) => w.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Dest::Stdout(w) => w.write_vectored(bufs),
            Dest::Temp(w) => w.write_vectored(bufs),
            Dest::Special(w) => w.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Dest::Stdout(w) => w.flush(),
            Dest::Temp(w) => w.flush(),
            Dest::Special(w) => w.flush(),
        }
    }
}

impl Output {
    /// Starts writing `target` (a regular file: its temporary file, created now).
    pub(super) fn create(target: &Target) -> Result<Output, String> {
        let cannot = |e: io::Error| format!("cannot write {}: {e}", target.shown().display());
        let (dest, to, pending) = match target {
            Target::Stdout => (Dest::Stdout(io::stdout()), None, None),
            Target::Special { shown } => (
                Dest::Special(
                    fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(shown)
                        .map_err(cannot)?,
                ),
                None,
                None,
            ),
            Target::File { path, mode, .. } => {
                let dir = path.parent().unwrap_or(Path::new("/"));
                let tmp = temp_builder().tempfile_in(dir).map_err(cannot)?;
                if let Some(mode) = mode {
                    tmp.as_file()
                        .set_permissions(Permissions::from_mode(*mode))
                        .map_err(cannot)?;
                }
                let pending = Pending::new(tmp.path());
                (Dest::Temp(tmp), Some(path.clone()), Some(pending))
            }
        };
        Ok(Output {
            w: BufWriter::with_capacity(BUFFER, dest),
            to,
            _pending: pending,
        })
    }

    /// The temporary file's path, for a writer that opens it by name (libpcap).
    #[cfg(feature = "live")]
    pub(super) fn temp_path(&self) -> Option<&Path> {
        match self.w.get_ref() {
            Dest::Temp(t) => Some(t.path()),
            _ => None,
        }
    }

    /// Flushes and, for a file, syncs the temporary file and renames it over the target.
    pub(super) fn commit(self) -> io::Result<()> {
        let Output { w, to, _pending } = self;
        match (w.into_inner().map_err(io::IntoInnerError::into_error)?, to) {
            (Dest::Temp(tmp), Some(to)) => {
                tmp.as_file().sync_all()?;
                tmp.persist(&to).map(drop).map_err(|e| e.error)
            }
            _ => Ok(()),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.w.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// A temporary output's path in [`PENDING`] for as long as it lives.
struct Pending(PathBuf);

impl Pending {
    fn new(path: &Path) -> Pending {
        pending().push(path.to_path_buf());
        Pending(path.to_path_buf())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let me = &self.0;
        pending().retain(|p| p != me);
    }
}

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes the temporary files of outputs not committed (before an exit without destructors).
pub(super) fn discard_pending() {
    for p in pending().drain(..) {
        let _ = fs::remove_file(p);
    }
}
