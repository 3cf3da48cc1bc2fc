//! The stored log: segment files, hash level files, the checkpoint file, crash recovery at
//! open, appends with one fsync per batch, signed checkpoints, pruning, and `LogReader`, the
//! lock-light read handle that only ever sees durable entries.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, IoContext, Result};
use crate::note::{NoteSigner, VerifierKey, validate_key_name};
use crate::proof;
use crate::segment::{
    self, CHECKPOINT_MAGIC, HEADER_LEN, SEGMENT_MAGIC, SPARSE_EVERY, TornTail, encode_record,
};
use crate::tree::{self, CompactRange, Hash, NodeSource, leaf_hash, node_hash};

/// First line of the `LEDGER` file: the on-disk format version.
pub const FORMAT_LINE: &str = "tollgate-ledger 1";
/// Levels stored in hash files are the multiples of this; others are recomputed from at most
/// 2^(STRIDE-1) stored hashes of the level below, which keeps the node storage at ~1.07× the
/// leaf hashes while a proof still costs O(log n) small reads.
pub const STRIDE: u32 = 4;
const STORED_LEVELS: usize = (64 / STRIDE) as usize;
/// Most checkpoints returned by one `checkpoints_since` call.
pub const MAX_CHECKPOINTS_PER_CALL: usize = 1000;

/// Tuning knobs of a log.
#[derive(Clone, Debug)]
pub struct Options {
    /// A segment is rolled once it would grow past this many bytes.
    pub segment_size: u64,
    /// Largest accepted leaf.
    pub max_leaf_len: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            max_leaf_len: 1 << 20,
        }
    }
}

fn level_path(dir: &Path, level: u32) -> PathBuf {
    dir.join("hashes").join(format!("level-{level:02}.bin"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).at(dir)?.sync_all().at(dir)
}

/// A segment as readers see it.
struct SegRead {
    first: u64,
    path: PathBuf,
    file: Arc<File>,
    sparse: Vec<u64>,
}

#[derive(Clone, Copy)]
struct CpEntry {
    size: u64,
    offset: u64,
    len: u32,
}

struct CpState {
    entries: Vec<CpEntry>,
    latest: Option<Checkpoint>,
}

/// State shared between the log (the single writer) and its readers.
struct Shared {
    origin: String,
    durable: Arc<AtomicU64>,
    head: RwLock<(u64, Hash)>,
    levels: Vec<(PathBuf, File)>,
    segments: RwLock<Vec<SegRead>>,
    pruned_before: AtomicU64,
    checkpoints: RwLock<CpState>,
    cp_path: PathBuf,
    cp_file: File,
}

/// A cheap, cloneable read handle. Everything it answers is bounded by the durable size, and
/// durable data is immutable on disk, so reads use positioned reads on shared file handles
/// and never wait for the writer's fsync.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("origin", &self.shared.origin)
            .field("size", &self.size())
            .finish()
    }
}

fn read_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset).at(path)
}

impl NodeSource for Shared {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash> {
        let k = level % STRIDE;
        let (path, file) = &self.levels[(level / STRIDE) as usize];
        let count = 1usize << k;
        let mut buf = vec![0u8; 32 * count];
        read_at(file, path, &mut buf, (index << k) * 32)?;
        let mut row: Vec<Hash> = buf
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        while row.len() > 1 {
            row = row
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
        }
        Ok(row[0])
    }
}

impl LogReader {
    /// The origin (log name and checkpoint key name).
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// Number of durable entries.
    pub fn size(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// The durable size and its root, read together.
    pub fn tree_head(&self) -> (u64, Hash) {
        *self.shared.head.read().expect("head lock")
    }

    /// The root at the durable size.
    pub fn root(&self) -> Hash {
        self.tree_head().1
    }

    fn check_size(&self, requested: u64) -> Result<()> {
        let size = self.size();
        if requested > size {
            return Err(Error::SizeOutOfRange { requested, size });
        }
        Ok(())
    }

    /// The root of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        tree::root(&*self.shared, size)
    }

    /// The leaf hash of entry `index` (kept even when its body is pruned).
    pub fn leaf_hash(&self, index: u64) -> Result<Hash> {
        let size = self.size();
        if index >= size {
            return Err(Error::IndexOutOfRange { index, size });
        }
        self.shared.perfect(0, index)
    }

    /// RFC 9162 inclusion proof of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        proof::inclusion(&*self.shared, index, size)
    }

    /// RFC 9162 consistency proof between the trees of `old` and `new` entries.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        proof::consistency(&*self.shared, old, new)
    }

    /// First index whose body is still stored.
    pub fn pruned_before(&self) -> u64 {
        self.shared.pruned_before.load(Ordering::Acquire)
    }

    /// The bodies of entries `[start, end)`; `Error::Pruned` if any of them was pruned.
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>> {
        let size = self.size();
        if start > end || end > size {
            return Err(Error::SizeOutOfRange {
                requested: end,
                size,
            });
        }
        let pruned_before = self.pruned_before();
        if start < pruned_before {
            return Err(Error::Pruned {
                index: start,
                pruned_before,
            });
        }
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut index = start;
        while index < end {
            // Hold the lock only to find the file and a nearby offset.
            let (file, path, mut at, mut offset, seg_end) = {
                let segs = self.shared.segments.read().expect("segments lock");
                let pos = segs.partition_point(|s| s.first <= index);
                let s = pos.checked_sub(1).map(|p| &segs[p]).ok_or(Error::Pruned {
                    index,
                    pruned_before,
                })?;
                let k = ((index - s.first) / SPARSE_EVERY) as usize;
                let seg_end = segs.get(pos).map_or(u64::MAX, |n| n.first);
                (
                    s.file.clone(),
                    s.path.clone(),
                    s.first + k as u64 * SPARSE_EVERY,
                    s.sparse[k],
                    seg_end,
                )
            };
            while index < end && at < seg_end {
                let mut lb = [0u8; 8];
                read_at(&file, &path, &mut lb, offset)?;
                let len32 = u32::from_le_bytes(lb[..4].try_into().expect("4 bytes"));
                let len = len32 as usize;
                if u32::from_le_bytes(lb[4..].try_into().expect("4 bytes"))
                    != segment::header_crc(at, len32)
                {
                    return Err(Error::CorruptRecord {
                        path,
                        offset,
                        index: at,
                        reason: "length checksum mismatch on read".into(),
                    });
                }
                if at == index {
                    let mut body = vec![0u8; len + 4];
                    read_at(&file, &path, &mut body, offset + 8)?;
                    let crc = u32::from_le_bytes(body[len..].try_into().expect("4 bytes"));
                    body.truncate(len);
                    if crc != segment::record_crc(index, &body) {
                        return Err(Error::CorruptRecord {
                            path,
                            offset,
                            index,
                            reason: "checksum mismatch on read".into(),
                        });
                    }
                    out.push(body);
                    index += 1;
                }
                offset += len as u64 + segment::RECORD_OVERHEAD;
                at += 1;
            }
        }
        Ok(out)
    }

    /// The newest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Option<Checkpoint> {
        self.shared
            .checkpoints
            .read()
            .expect("checkpoints lock")
            .latest
            .clone()
    }

    /// Stored checkpoints whose size is greater than `size`, oldest first, at most
    /// `MAX_CHECKPOINTS_PER_CALL` of them.
    pub fn checkpoints_since(&self, size: u64) -> Result<Vec<Checkpoint>> {
        let entries: Vec<CpEntry> = {
            let st = self.shared.checkpoints.read().expect("checkpoints lock");
            let from = st.entries.partition_point(|e| e.size <= size);
            st.entries[from..]
                .iter()
                .take(MAX_CHECKPOINTS_PER_CALL)
                .copied()
                .collect()
        };
        let sh = &self.shared;
        entries
            .iter()
            .map(|e| {
                let mut buf = vec![0u8; e.len as usize];
                read_at(&sh.cp_file, &sh.cp_path, &mut buf, e.offset + 8)?;
                Checkpoint::parse_unverified(&buf)
            })
            .collect()
    }
}

/// What `verify_dir` found in a log that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub segments: usize,
    pub checkpoints: u64,
    /// Entries below this index have no body on disk; their leaf hashes come from the node
    /// storage, which the checkpoints' roots cover.
    pub pruned_before: u64,
    /// An incomplete last record beyond the last checkpoint: crash debris that `Log::open`
    /// removes, not tampering.
    pub torn_tail: Option<TornTail>,
    /// Stored node hashes beyond the last checkpoint that disagree with or lag the leaves
    /// (unsynced writes before a crash); `Log::open` rebuilds them.
    pub stale_hashes: bool,
}

/// The single writer of one log directory.
pub struct Log {
    dir: PathBuf,
    reader: LogReader,
    opts: Options,
    frontier: CompactRange,
    active: File,
    active_path: PathBuf,
    active_first: u64,
    active_len: u64,
    level_files: Vec<File>,
    level_bufs: Vec<Vec<u8>>,
    levels_dirty: Vec<bool>,
    cp_writer: File,
    cp_len: u64,
    cp_count: u64,
    poisoned: bool,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("size", &self.frontier.size())
            .finish()
    }
}

/// Directory facts read before the leaves.
struct Layout {
    pruned_before: u64,
    segments: Vec<(u64, PathBuf)>,
    checkpoints: Vec<(u64, CpEntry, Checkpoint)>,
    cp_scan: segment::Scanned,
}

fn read_layout(
    dir: &Path,
    origin: &str,
    keys: &[VerifierKey],
    verify_all: bool,
    repair: bool,
) -> Result<Layout> {
    let ledger = dir.join("LEDGER");
    let text = fs::read_to_string(&ledger).at(&ledger)?;
    let mut lines = text.lines();
    if lines.next() != Some(FORMAT_LINE) {
        return Err(Error::Format {
            path: ledger,
            found: text,
        });
    }
    let found = lines.next().unwrap_or_default();
    if found != origin {
        return Err(Error::WrongLog {
            path: dir.to_path_buf(),
            expected: origin.to_string(),
            found: found.to_string(),
        });
    }
    let pruned_path = dir.join("PRUNED");
    let pruned_before = match fs::read_to_string(&pruned_path) {
        Ok(s) => s.trim().parse().map_err(|_| Error::Format {
            path: pruned_path.clone(),
            found: s.clone(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e).at(&pruned_path),
    };
    let seg_dir = dir.join("segments");
    let mut segments = Vec::new();
    for e in fs::read_dir(&seg_dir).at(&seg_dir)? {
        let e = e.at(&seg_dir)?;
        let name = e.file_name();
        let Some(first) = name.to_str().and_then(segment::parse_segment_name) else {
            continue;
        };
        if first < pruned_before && repair {
            // Left over by a crash in the middle of pruning, after PRUNED was written.
            fs::remove_file(e.path()).at(&e.path())?;
            continue;
        }
        segments.push((first, e.path()));
    }
    segments.sort();
    segments.retain(|(first, _)| *first >= pruned_before);
    if segments.first().is_some_and(|(f, _)| *f != pruned_before) {
        return Err(Error::CorruptSegment {
            path: segments[0].1.clone(),
            reason: format!(
                "first segment starts at {} but bodies are kept from {pruned_before}",
                segments[0].0
            ),
        });
    }
    // Checkpoints: framing and order always; signatures of the newest only, or of all.
    let cp_path = dir.join("checkpoints.log");
    let mut raw = Vec::new();
    let cp_scan = segment::scan(
        &cp_path,
        CHECKPOINT_MAGIC,
        0,
        true,
        |number, offset, bytes| {
            raw.push((number, offset, bytes.to_vec()));
            Ok(())
        },
    )
    .map_err(|e| match e {
        // The shared framing calls checkpoint numbers "leaf index"; say what they are.
        Error::CorruptRecord {
            path,
            offset,
            index,
            reason,
        } => Error::CorruptCheckpoint {
            number: index,
            path,
            offset,
            reason,
        },
        e => e,
    })?;
    if !raw.is_empty() && keys.is_empty() {
        return Err(Error::NoVerifierKeys);
    }
    let mut checkpoints: Vec<(u64, CpEntry, Checkpoint)> = Vec::with_capacity(raw.len());
    let last = raw.len().saturating_sub(1);
    for (i, (number, offset, bytes)) in raw.into_iter().enumerate() {
        let bad = |reason: String| Error::CorruptCheckpoint {
            number,
            path: cp_path.clone(),
            offset,
            reason,
        };
        let cp = if verify_all || i == last {
            Checkpoint::open(&bytes, origin, keys).map_err(|e| bad(e.to_string()))?
        } else {
            let cp = Checkpoint::parse_unverified(&bytes).map_err(|e| bad(e.to_string()))?;
            if cp.origin != origin {
                return Err(bad(format!("origin {:?}", cp.origin)));
            }
            cp
        };
        if let Some((prev, e, _)) = checkpoints.last()
            && cp.size <= e.size
        {
            return Err(Error::CheckpointRegression {
                number,
                size: cp.size,
                previous: *prev,
                previous_size: e.size,
            });
        }
        let entry = CpEntry {
            size: cp.size,
            offset,
            len: bytes.len() as u32,
        };
        checkpoints.push((number, entry, cp));
    }
    Ok(Layout {
        pruned_before,
        segments,
        checkpoints,
        cp_scan,
    })
}

/// Per stored level: compare stored hashes with recomputed ones, and (when repairing) rewrite
/// from the first stale one.
struct LevelPass {
    path: PathBuf,
    level: u32,
    stored: u64,
    reader: Option<BufReader<File>>,
    writer: Option<BufWriter<File>>,
    stale: bool,
}

struct Pass {
    size: u64,
    frontier: CompactRange,
    scans: Vec<(u64, PathBuf, segment::Scanned)>,
    torn: Option<TornTail>,
    stale_hashes: bool,
}

/// The one pass over the leaves shared by `Log::open` and `verify_dir`: recompute every leaf
/// hash and perfect subtree from the segment bodies (stored leaf hashes below
/// `pruned_before`), check each checkpoint's root at its size, and cross-check the stored
/// node hashes. Stored hashes covered by the last checkpoint were fsynced before it was
/// signed, so a difference there is corruption; beyond it they may be crash leftovers.
fn pass(
    dir: &Path,
    layout: &Layout,
    repair: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Pass> {
    let covered = layout.checkpoints.last().map_or(0, |c| c.1.size);
    let mut levels = Vec::with_capacity(STORED_LEVELS);
    for i in 0..STORED_LEVELS {
        let level = i as u32 * STRIDE;
        let path = level_path(dir, level);
        let (stored, reader) = match File::open(&path) {
            Ok(f) => (
                f.metadata().at(&path)?.len() / 32,
                Some(BufReader::with_capacity(1 << 16, f)),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, None),
            Err(e) => return Err(e).at(&path),
        };
        levels.push(LevelPass {
            path,
            level,
            stored,
            reader,
            writer: None,
            stale: false,
        });
    }
    let total: u64 = layout
        .segments
        .iter()
        .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let mut done_bytes = 0u64;
    let mut frontier = CompactRange::new();
    let mut cps = layout.checkpoints.iter().peekable();
    let mut first_err: Option<Error> = None;

    let on_node = |levels: &mut Vec<LevelPass>, level: u32, index: u64, h: &Hash| -> Result<()> {
        if !level.is_multiple_of(STRIDE) {
            return Ok(());
        }
        let lp = &mut levels[(level / STRIDE) as usize];
        if lp.writer.is_none() && !lp.stale && index < lp.stored {
            let mut got = [0u8; 32];
            lp.reader
                .as_mut()
                .expect("stored > 0 has a file")
                .read_exact(&mut got)
                .at(&lp.path)?;
            if &got == h {
                return Ok(());
            }
            if (index + 1) << level <= covered {
                return Err(Error::StoredHashMismatch {
                    path: lp.path.clone(),
                    level,
                    index,
                });
            }
        }
        // From here on this level is rebuilt (repair) or reported stale (verify).
        if !repair {
            lp.stale = true;
            return Ok(());
        }
        if lp.writer.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&lp.path)
                .at(&lp.path)?;
            f.set_len(index * 32).at(&lp.path)?;
            let mut w = BufWriter::with_capacity(1 << 16, f);
            w.seek(SeekFrom::Start(index * 32)).at(&lp.path)?;
            lp.writer = Some(w);
            lp.reader = None;
            lp.stale = true;
        }
        lp.writer
            .as_mut()
            .expect("just set")
            .write_all(h)
            .at(&lp.path)
    };

    let mut check_cps = |frontier: &CompactRange| -> Result<()> {
        while let Some((number, e, cp)) = cps.peek() {
            if e.size != frontier.size() {
                break;
            }
            if frontier.root() != cp.root {
                return Err(Error::RootMismatch {
                    size: e.size,
                    number: *number,
                });
            }
            cps.next();
        }
        Ok(())
    };
    check_cps(&frontier)?;

    // Pruned range: the stored leaf hashes are the leaves.
    if layout.pruned_before > 0 {
        let path0 = levels[0].path.clone();
        if levels[0].stored < layout.pruned_before {
            return Err(Error::StoredHashesMissing {
                path: path0,
                found: levels[0].stored,
                needed: layout.pruned_before,
            });
        }
        let mut r = BufReader::with_capacity(1 << 16, File::open(&path0).at(&path0)?);
        for _ in 0..layout.pruned_before {
            let mut h = [0u8; 32];
            r.read_exact(&mut h).at(&path0)?;
            let mut res = Ok(());
            // Level 0 is compared with itself here, which keeps its reader aligned.
            frontier.push(h, |level, index, node| {
                if res.is_ok() {
                    res = on_node(&mut levels, level, index, node);
                }
            });
            res?;
            check_cps(&frontier)?;
        }
    }

    let mut scans = Vec::new();
    let mut torn = None;
    let n_segs = layout.segments.len();
    for (k, (first, path)) in layout.segments.iter().enumerate() {
        if frontier.size() != *first {
            return Err(Error::CorruptSegment {
                path: path.clone(),
                reason: format!(
                    "starts at index {first} but the previous segments end at {}",
                    frontier.size()
                ),
            });
        }
        let last = k + 1 == n_segs;
        let base = done_bytes;
        let scanned = segment::scan(path, SEGMENT_MAGIC, *first, last, |index, offset, bytes| {
            let mut res = Ok(());
            frontier.push(leaf_hash(bytes), |level, i, node| {
                if res.is_ok() {
                    res = on_node(&mut levels, level, i, node);
                }
            });
            res?;
            check_cps(&frontier)?;
            if index % 65536 == 0 {
                progress(base + offset, total);
            }
            Ok(())
        });
        let scanned = match scanned {
            Ok(s) => s,
            Err(e) => {
                first_err = Some(e);
                break;
            }
        };
        done_bytes += fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if scanned.torn.is_some() {
            torn = scanned.torn.clone();
        }
        scans.push((*first, path.clone(), scanned));
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    progress(total, total);
    let size = frontier.size();
    if let Some((number, e, _)) = cps.peek() {
        return Err(Error::CheckpointBeyondLog {
            entries: size,
            number: *number,
            size: e.size,
        });
    }
    let mut stale_hashes = false;
    for lp in &mut levels {
        let want = size >> lp.level;
        if lp.stale || lp.stored > want || (lp.writer.is_none() && lp.stored < want) {
            stale_hashes = true;
        }
        if !repair {
            continue;
        }
        if let Some(mut w) = lp.writer.take() {
            w.flush().at(&lp.path)?;
        } else if lp.stored > want {
            let f = OpenOptions::new().write(true).open(&lp.path).at(&lp.path)?;
            f.set_len(want * 32).at(&lp.path)?;
        }
    }
    Ok(Pass {
        size,
        frontier,
        scans,
        torn,
        stale_hashes,
    })
}

/// Offline verification of a log directory for `ledger verify`: every leaf hash and the whole
/// tree are recomputed from the segment files alone, every checkpoint's signature is checked
/// against `keys` and its root against the recomputed tree at its size (which also proves
/// consistent history between consecutive checkpoints), and stored node hashes are
/// cross-checked. The first problem is returned as an error naming the file and byte offset
/// and leaf index, or the checkpoint number. `progress(bytes_done, bytes_total)` reports the
/// scan of segment files. Nothing is modified.
pub fn verify_dir(
    dir: &Path,
    origin: &str,
    keys: &[VerifierKey],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport> {
    let layout = read_layout(dir, origin, keys, true, false)?;
    let p = pass(dir, &layout, false, progress)?;
    Ok(VerifyReport {
        entries: p.size,
        segments: p.scans.len(),
        checkpoints: layout.checkpoints.len() as u64,
        pruned_before: layout.pruned_before,
        torn_tail: p.torn,
        stale_hashes: p.stale_hashes,
    })
}

impl Log {
    /// Opens (creating if needed) the log in `dir`. Recovery: a torn last record is cut off, the
    /// node storage is checked against the leaves and rebuilt where it is behind or stale,
    /// every stored checkpoint's root is checked against the tree at its size, and the newest
    /// checkpoint's signature must verify with one of `keys`. Anything else that does not
    /// match is an error naming the file, offset, index or checkpoint, and no leaf or
    /// checkpoint data is modified in that case.
    pub fn open(dir: &Path, origin: &str, keys: &[VerifierKey], opts: Options) -> Result<Self> {
        validate_key_name(origin)?;
        fs::create_dir_all(dir.join("segments")).at(dir)?;
        fs::create_dir_all(dir.join("hashes")).at(dir)?;
        let ledger = dir.join("LEDGER");
        if !ledger.exists() {
            let tmp = dir.join("LEDGER.tmp");
            let mut f = File::create(&tmp).at(&tmp)?;
            f.write_all(format!("{FORMAT_LINE}\n{origin}\n").as_bytes())
                .at(&tmp)?;
            f.sync_all().at(&tmp)?;
            fs::rename(&tmp, &ledger).at(&ledger)?;
            sync_dir(dir)?;
        }
        let cp_path = dir.join("checkpoints.log");
        if !cp_path.exists() {
            let mut f = File::create(&cp_path).at(&cp_path)?;
            f.write_all(&segment::header(CHECKPOINT_MAGIC, 0))
                .at(&cp_path)?;
            f.sync_all().at(&cp_path)?;
            sync_dir(dir)?;
        }
        // One pass that verifies and repairs at once. Its only writes before every check has
        // passed are to node hashes beyond the last checkpoint (derived data the pass
        // recomputed) and to segments already pruned; torn tails are cut only afterwards.
        let layout = read_layout(dir, origin, keys, false, true)?;
        let p = pass(dir, &layout, true, &mut |_, _| {})?;

        // Cut torn tails now that everything before them verified.
        let cp_file_len = layout.cp_scan.valid_len;
        let cp_writer = OpenOptions::new().write(true).open(&cp_path).at(&cp_path)?;
        if layout.cp_scan.torn.is_some() {
            cp_writer
                .set_len(cp_file_len.max(HEADER_LEN))
                .at(&cp_path)?;
            if cp_file_len < HEADER_LEN {
                cp_writer
                    .write_all_at(&segment::header(CHECKPOINT_MAGIC, 0), 0)
                    .at(&cp_path)?;
            }
            cp_writer.sync_all().at(&cp_path)?;
        }
        let mut segs = Vec::new();
        let (active_first, active_path, active_len) = match p.scans.last() {
            Some((first, path, s)) => {
                let f = OpenOptions::new().write(true).open(path).at(path)?;
                if s.torn.is_some() {
                    f.set_len(s.valid_len.max(HEADER_LEN)).at(path)?;
                    if s.valid_len < HEADER_LEN {
                        f.write_all_at(&segment::header(SEGMENT_MAGIC, *first), 0)
                            .at(path)?;
                    }
                    f.sync_all().at(path)?;
                }
                (*first, path.clone(), s.valid_len.max(HEADER_LEN))
            }
            None => {
                let first = p.size;
                let path = dir.join("segments").join(segment::segment_name(first));
                create_segment(dir, &path, first)?;
                (first, path, HEADER_LEN)
            }
        };
        for (first, path, s) in &p.scans {
            let file = Arc::new(File::open(path).at(path)?);
            segs.push(SegRead {
                first: *first,
                path: path.clone(),
                file,
                sparse: s.sparse.clone(),
            });
        }
        if segs.is_empty() {
            let file = Arc::new(File::open(&active_path).at(&active_path)?);
            segs.push(SegRead {
                first: active_first,
                path: active_path.clone(),
                file,
                sparse: Vec::new(),
            });
        }
        let active = OpenOptions::new()
            .write(true)
            .open(&active_path)
            .at(&active_path)?;

        let mut level_files = Vec::new();
        let mut level_reads = Vec::new();
        for i in 0..STORED_LEVELS {
            let path = level_path(dir, i as u32 * STRIDE);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .at(&path)?;
            level_reads.push((path.clone(), File::open(&path).at(&path)?));
            level_files.push(f);
        }
        let cp_entries: Vec<CpEntry> = layout.checkpoints.iter().map(|c| c.1).collect();
        let latest = layout.checkpoints.last().map(|c| c.2.clone());
        let cp_count = cp_entries.len() as u64;
        let shared = Shared {
            origin: origin.to_string(),
            durable: Arc::new(AtomicU64::new(p.size)),
            head: RwLock::new((p.size, p.frontier.root())),
            levels: level_reads,
            segments: RwLock::new(segs),
            pruned_before: AtomicU64::new(layout.pruned_before),
            checkpoints: RwLock::new(CpState {
                entries: cp_entries,
                latest,
            }),
            cp_file: File::open(&cp_path).at(&cp_path)?,
            cp_path,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            reader: LogReader {
                shared: Arc::new(shared),
            },
            opts,
            frontier: p.frontier,
            active,
            active_path,
            active_first,
            active_len,
            level_files,
            level_bufs: vec![Vec::new(); STORED_LEVELS],
            levels_dirty: vec![false; STORED_LEVELS],
            cp_writer,
            cp_len: cp_file_len.max(HEADER_LEN),
            cp_count,
            poisoned: false,
            buf: Vec::new(),
        })
    }

    /// A read handle sharing this log's files.
    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// The durable size as an atomic the server can poll without locks.
    pub fn durable_size(&self) -> Arc<AtomicU64> {
        self.reader.shared.durable.clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends leaves: records and node hashes are written, then the segment is fsynced once
    /// (fdatasync), and the returned range is durable. Node hashes are derived data and are
    /// fsynced at checkpoint time; until then `open` can rebuild them from the leaves.
    pub fn append_batch<L: AsRef<[u8]>>(&mut self, leaves: &[L]) -> Result<Range<u64>> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let max = self.opts.max_leaf_len.min(u32::MAX as usize);
        if let Some(l) = leaves.iter().find(|l| l.as_ref().len() > max) {
            return Err(Error::LeafTooLarge {
                len: l.as_ref().len(),
                max,
            });
        }
        let r = self.append_inner(leaves);
        if r.is_err() {
            // After a failed write or fsync the file contents are unknown; only a reopen (which
            // re-verifies) may continue.
            self.poisoned = true;
        }
        r
    }

    fn append_inner<L: AsRef<[u8]>>(&mut self, leaves: &[L]) -> Result<Range<u64>> {
        let start = self.frontier.size();
        self.buf.clear();
        let mut new_sparse = Vec::new();
        for leaf in leaves {
            let bytes = leaf.as_ref();
            let index = self.frontier.size();
            let rec = bytes.len() as u64 + segment::RECORD_OVERHEAD;
            let pos = self.active_len + self.buf.len() as u64;
            if pos + rec > self.opts.segment_size && index > self.active_first {
                self.flush_sparse(&mut new_sparse);
                self.roll(index)?;
            }
            let pos = self.active_len + self.buf.len() as u64;
            if (index - self.active_first).is_multiple_of(SPARSE_EVERY) {
                new_sparse.push(pos);
            }
            encode_record(&mut self.buf, index, bytes);
            let bufs = &mut self.level_bufs;
            self.frontier.push(leaf_hash(bytes), |level, _, h| {
                if level.is_multiple_of(STRIDE) {
                    bufs[(level / STRIDE) as usize].extend_from_slice(h);
                }
            });
        }
        self.active
            .write_all_at(&self.buf, self.active_len)
            .at(&self.active_path)?;
        self.active_len += self.buf.len() as u64;
        self.write_levels()?;
        self.flush_sparse(&mut new_sparse);
        self.active.sync_data().at(&self.active_path)?;
        let end = self.frontier.size();
        let sh = &self.reader.shared;
        *sh.head.write().expect("head lock") = (end, self.frontier.root());
        sh.durable.store(end, Ordering::Release);
        Ok(start..end)
    }

    fn write_levels(&mut self) -> Result<()> {
        for (i, buf) in self.level_bufs.iter_mut().enumerate() {
            if !buf.is_empty() {
                let path = &self.reader.shared.levels[i].0;
                self.level_files[i].write_all(buf).at(path)?;
                buf.clear();
                self.levels_dirty[i] = true;
            }
        }
        Ok(())
    }

    /// Publishes sparse offsets of the active segment to readers. Readers never look past the
    /// durable size, so offsets may be published before the fsync.
    fn flush_sparse(&mut self, new_sparse: &mut Vec<u64>) {
        if new_sparse.is_empty() {
            return;
        }
        let mut segs = self.reader.shared.segments.write().expect("segments lock");
        if let Some(s) = segs.last_mut() {
            s.sparse.append(new_sparse);
        }
    }

    /// Writes what is buffered to the active segment, makes it durable, and starts a new
    /// segment whose first index is `first`.
    fn roll(&mut self, first: u64) -> Result<()> {
        self.active
            .write_all_at(&self.buf, self.active_len)
            .at(&self.active_path)?;
        self.buf.clear();
        self.active.sync_data().at(&self.active_path)?;
        let path = self.dir.join("segments").join(segment::segment_name(first));
        create_segment(&self.dir, &path, first)?;
        self.active = OpenOptions::new().write(true).open(&path).at(&path)?;
        let file = Arc::new(File::open(&path).at(&path)?);
        self.reader
            .shared
            .segments
            .write()
            .expect("segments lock")
            .push(SegRead {
                first,
                path: path.clone(),
                file,
                sparse: Vec::new(),
            });
        self.active_path = path;
        self.active_first = first;
        self.active_len = HEADER_LEN;
        Ok(())
    }

    fn sync_levels(&mut self) -> Result<()> {
        for i in 0..STORED_LEVELS {
            if self.levels_dirty[i] {
                self.level_files[i]
                    .sync_data()
                    .at(&self.reader.shared.levels[i].0)?;
                self.levels_dirty[i] = false;
            }
        }
        Ok(())
    }

    /// Signs a checkpoint of every durable entry and stores it (fsynced) before returning it.
    /// `None` when nothing was appended since the last checkpoint (or the log is empty).
    pub fn sign_checkpoint(&mut self, signer: &dyn NoteSigner) -> Result<Option<Checkpoint>> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let size = self.frontier.size();
        let last = self.reader.latest_checkpoint().map(|c| c.size);
        match last {
            Some(l) if l == size => return Ok(None),
            Some(l) if l > size => {
                return Err(Error::CheckpointRegression {
                    number: self.cp_count,
                    size,
                    previous: self.cp_count - 1,
                    previous_size: l,
                });
            }
            _ => {}
        }
        let cp = Checkpoint::sign(
            &self.reader.shared.origin,
            size,
            self.frontier.root(),
            signer,
        )?;
        let r = self.store_checkpoint(&cp);
        if r.is_err() {
            self.poisoned = true;
        }
        r?;
        Ok(Some(cp))
    }

    fn store_checkpoint(&mut self, cp: &Checkpoint) -> Result<()> {
        // The node hashes this checkpoint covers become durable first, so that from now on a
        // stored hash below the checkpoint that disagrees with the leaves is corruption.
        self.sync_levels()?;
        let number = self.cp_count;
        let mut rec = Vec::with_capacity(cp.note.len() + 8);
        encode_record(&mut rec, number, cp.note.as_bytes());
        let path = &self.reader.shared.cp_path;
        self.cp_writer.write_all_at(&rec, self.cp_len).at(path)?;
        self.cp_writer.sync_data().at(path)?;
        let entry = CpEntry {
            size: cp.size,
            offset: self.cp_len,
            len: cp.note.len() as u32,
        };
        self.cp_len += rec.len() as u64;
        self.cp_count += 1;
        let mut st = self
            .reader
            .shared
            .checkpoints
            .write()
            .expect("checkpoints lock");
        st.entries.push(entry);
        st.latest = Some(cp.clone());
        Ok(())
    }

    /// Deletes whole segment files whose entries all lie below `index` (and below the last
    /// checkpoint). Leaf and node hashes stay, so roots, proofs and checkpoints still verify;
    /// `entries` on those indices returns `Error::Pruned`. Returns the first index whose body
    /// is still kept.
    pub fn prune_bodies_before(&mut self, index: u64) -> Result<u64> {
        let checkpointed = self.reader.latest_checkpoint().map_or(0, |c| c.size);
        if index > checkpointed {
            return Err(Error::PruneBeyondCheckpoint {
                requested: index,
                checkpointed,
            });
        }
        let sh = self.reader.shared.clone();
        let (keep_from, doomed): (u64, Vec<PathBuf>) = {
            let segs = sh.segments.read().expect("segments lock");
            // A segment may go when the next one starts at or below `index`.
            let n = segs.windows(2).take_while(|w| w[1].first <= index).count();
            (
                segs[n].first,
                segs[..n].iter().map(|s| s.path.clone()).collect(),
            )
        };
        if doomed.is_empty() {
            return Ok(self.reader.pruned_before());
        }
        self.sync_levels()?;
        let tmp = self.dir.join("PRUNED.tmp");
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(format!("{keep_from}\n").as_bytes()).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        let dst = self.dir.join("PRUNED");
        fs::rename(&tmp, &dst).at(&dst)?;
        sync_dir(&self.dir)?;
        sh.pruned_before.store(keep_from, Ordering::Release);
        sh.segments
            .write()
            .expect("segments lock")
            .retain(|s| s.first >= keep_from);
        for p in &doomed {
            fs::remove_file(p).at(p)?;
        }
        sync_dir(&self.dir.join("segments"))?;
        Ok(keep_from)
    }

    // Reads, delegated to the reader (they see exactly what is durable, which for the
    // writer is everything appended).

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.reader.root_at(size)
    }
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.reader.inclusion_proof(index, size)
    }
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.reader.consistency_proof(old, new)
    }
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>> {
        self.reader.entries(start, end)
    }
    pub fn leaf_hash(&self, index: u64) -> Result<Hash> {
        self.reader.leaf_hash(index)
    }
    pub fn checkpoints_since(&self, size: u64) -> Result<Vec<Checkpoint>> {
        self.reader.checkpoints_since(size)
    }
    pub fn latest_checkpoint(&self) -> Option<Checkpoint> {
        self.reader.latest_checkpoint()
    }
}

fn create_segment(dir: &Path, path: &Path, first: u64) -> Result<()> {
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(path)
        .at(path)?;
    f.write_all(&segment::header(SEGMENT_MAGIC, first))
        .at(path)?;
    f.sync_all().at(path)?;
    // The new name must survive a crash before any record in it is acknowledged.
    sync_dir(&dir.join("segments"))
}
