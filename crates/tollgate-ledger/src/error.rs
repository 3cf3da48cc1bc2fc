//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the ledger. Variants carry the data needed to find the
/// problem on disk (file, byte offset, leaf index, checkpoint number) because an operator
/// reading a refusal to open must be able to act on it without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {requested} exceeds the log size {size}")]
    SizeOutOfRange { requested: u64, size: u64 },
    #[error("consistency proof needs old size <= new size, got {old} and {new}")]
    BadConsistencyRange { old: u64, new: u64 },
    #[error("inclusion proof does not verify: {0}")]
    InclusionProof(&'static str),
    #[error("consistency proof does not verify: {0}")]
    ConsistencyProof(&'static str),
    #[error("malformed note: {0}")]
    MalformedNote(String),
    #[error("note has no valid signature from any of the {known} known keys")]
    NoteUnverified { known: usize },
    #[error("signature by known key {name}+{key_id:08x} does not verify")]
    BadSignature { name: String, key_id: u32 },
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName { name: String, reason: &'static str },
    #[error("malformed verifier key {key:?}: {reason}")]
    MalformedVerifierKey { key: String, reason: &'static str },
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    #[error("checkpoint origin {found:?} is not the log origin {expected:?}")]
    OriginMismatch { expected: String, found: String },
    #[error("signer failed: {0}")]
    Signing(String),
    #[error("signer key name {signer:?} differs from the log origin {origin:?}")]
    SignerName { signer: String, origin: String },
    #[error("leaf is empty: no version byte")]
    LeafEmpty,
    #[error("leaf version byte {0:#04x} is not supported")]
    LeafVersion(u8),
    #[error("leaf body is not json: {0}")]
    LeafJson(#[source] serde_json::Error),
    #[error("leaf body is not rfc 8785 canonical json")]
    LeafNotCanonical,
    #[error("leaf of {len} bytes exceeds the maximum record size of {max} bytes")]
    LeafTooLarge { len: usize, max: usize },
    #[error("corrupt record in {path} at byte {offset} (leaf index {index}): {reason}")]
    CorruptRecord {
        path: PathBuf,
        offset: u64,
        index: u64,
        reason: String,
    },
    #[error("corrupt segment {path}: {reason}")]
    CorruptSegment { path: PathBuf, reason: String },
    #[error("corrupt checkpoint {number} in {path} at byte {offset}: {reason}")]
    CorruptCheckpoint {
        number: u64,
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("log has {entries} entries but checkpoint {number} signed size {size}")]
    CheckpointBeyondLog {
        entries: u64,
        number: u64,
        size: u64,
    },
    #[error("root at size {size} differs from checkpoint {number}")]
    RootMismatch { size: u64, number: u64 },
    #[error(
        "checkpoint {number} at size {size} is smaller than checkpoint {previous} at size {previous_size}"
    )]
    CheckpointRegression {
        number: u64,
        size: u64,
        previous: u64,
        previous_size: u64,
    },
    #[error(
        "stored hash at level {level} index {index} in {path} differs from the hash recomputed from the leaves"
    )]
    StoredHashMismatch {
        path: PathBuf,
        level: u32,
        index: u64,
    },
    #[error("stored hashes are missing: {path} has {found} entries, {needed} needed")]
    StoredHashesMissing {
        path: PathBuf,
        found: u64,
        needed: u64,
    },
    #[error("leaf {index} is pruned: bodies are kept from index {pruned_before}")]
    Pruned { index: u64, pruned_before: u64 },
    #[error(
        "cannot prune before {requested}: only entries below the last checkpoint size {checkpointed} may be pruned"
    )]
    PruneBeyondCheckpoint { requested: u64, checkpointed: u64 },
    #[error("the log is unusable after an earlier write error; reopen it")]
    Poisoned,
    #[error("ledger directory {path} holds log {found:?}, not {expected:?}")]
    WrongLog {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("unsupported ledger format in {path}: {found:?}")]
    Format { path: PathBuf, found: String },
    #[error("the log has checkpoints but no verifier key was supplied")]
    NoVerifierKeys,
    #[error("the ledger writer has stopped")]
    WriterStopped,
    #[error("the ledger writer thread panicked")]
    WriterPanicked,
}

/// Short form used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the path to an `std::io::Error`, because a bare "permission denied" does not say
/// which of the ledger's files is at fault.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
