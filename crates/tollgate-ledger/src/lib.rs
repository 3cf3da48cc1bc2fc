//! Tollgate's metering ledger: a Certificate-Transparency-style Merkle log of usage events
//! with signed checkpoints, inclusion and consistency proofs, and append-only storage that
//! loses no acknowledged event. Pure and synchronous: `std::fs` and `std::thread` only, no
//! async runtime, no wall-clock reads (checkpoints carry no timestamps; the writer uses a
//! monotonic clock only to schedule batches), no private keys (signing goes through
//! [`note::NoteSigner`]).
//!
//! # Modules
//!
//! - [`tree`]: RFC 9162 §2.1 hashing, [`tree::NodeSource`], roots, the compact range.
//! - [`proof`]: inclusion and consistency proofs, generation and verification.
//! - [`note`] / [`checkpoint`]: C2SP signed notes (Ed25519) and tlog-checkpoints.
//! - [`leaf`]: the version-1 leaf encoding `0x01 ‖ RFC 8785 JSON`.
//! - [`segment`] / [`log`]: the on-disk format, recovery, [`log::verify_dir`].
//! - [`writer`]: the group-commit writer thread.
//!
//! # The tree
//!
//! RFC 9162 §2.1 exactly: leaf hash `SHA-256(0x00 ‖ leaf)`, interior `SHA-256(0x01 ‖ l ‖ r)`,
//! split at the largest power of two below `n`, empty root `SHA-256("")`. Entry `i` is the
//! `i`-th leaf, counting from 0.
//!
//! # On-disk layout (format 1)
//!
//! One directory per log. All integers little-endian unless said otherwise.
//!
//! ```text
//! <dir>/
//!   LEDGER                "tollgate-ledger 1\n<origin>\n"  (format version, log origin)
//!   segments/<first>.seg  leaf bodies; <first> = first index, 20 decimal digits, zero-padded
//!   hashes/level-LL.bin   stored node hashes of tree level LL = 00, 04, 08, …, 60
//!   checkpoints.log       every signed checkpoint ever produced, in order
//!   PRUNED                optional: "<k>\n", bodies of entries below k were deleted
//! ```
//!
//! **Segment file**: header `"TGLSEG01"` (8 ASCII bytes) ‖ first index u64, then records
//! for consecutive indices starting at the first index. A record for index `i` with body `b`
//! of `len` bytes is
//!
//! ```text
//! len u32 ‖ hcrc u32 ‖ b ‖ crc u32
//! hcrc = CRC-32(i u64 ‖ len u32)          crc = CRC-32(i u64 ‖ len u32 ‖ b)
//! ```
//!
//! with CRC-32 the IEEE polynomial (zlib's `crc32`). Because the index is under both
//! checksums, a deleted, duplicated or swapped record fails at its new position. Segments
//! are contiguous: each starts where the previous one ends; the first kept segment starts
//! at the `PRUNED` value (0 if absent). A new segment is started once a record would push the
//! current one past the size limit (64 MiB by default). Only the last segment may end in a
//! *torn tail*: fewer than 8 bytes, or a record whose length header checks but which runs
//! past the end of the file, or an all-zero tail; that is what a crash during an append
//! leaves, and it is never an acknowledged entry. Any other bad record is corruption.
//!
//! **Leaf bodies** are opaque to the log. Tollgate writes version-1 leaves:
//! `0x01 ‖ JCS(event)` (RFC 8785 canonical JSON, see [`leaf`]).
//!
//! **Hash files**: `hashes/level-LL.bin` is a flat array of 32-byte hashes; entry `j` is the
//! root of the perfect subtree over leaves `[j·2^LL, (j+1)·2^LL)`, present for every such
//! subtree that is complete. Level 00 holds the leaf hashes, which stay when bodies are
//! pruned. Levels that are not multiples of 4 are not stored: a node at level `L` is
//! recomputed from the `2^(L mod 4)` stored hashes below it at level `L − (L mod 4)`. Hash
//! files are derived data: the writer fsyncs them before each checkpoint is signed, so the
//! part covered by the last checkpoint is durable; beyond it they may lag or hold debris
//! after a crash and are rebuilt from the leaves at open. The root of size `n` is the fold,
//! right to left with the interior hash, of the perfect subtrees given by the set bits of
//! `n`, largest (leftmost) first.
//!
//! **Checkpoint file**: header `"TGLCKP01"` ‖ u64 0, then records framed exactly like leaf
//! records, where the index is the checkpoint number (0, 1, …) and the body is the complete
//! signed note. Sizes strictly increase. A note is a C2SP tlog-checkpoint signed as a C2SP
//! signed note:
//!
//! ```text
//! <origin>\n<tree size, decimal>\n<base64 root>\n
//! \n
//! — <origin> <base64(key id u32 big-endian ‖ Ed25519 signature (64 bytes))>\n
//! ```
//!
//! The dash is U+2014 followed by a space; base64 is RFC 4648 standard with padding; the key
//! name is the origin, and the key id is `SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`.
//! Verifier keys are written `<origin>+<key id, 8 lowercase hex>+<base64(0x01 ‖ public key)>`.
//! Each checkpoint is appended and fsynced before it is returned, after every entry it
//! covers was fsynced.
//!
//! # Verifying a log independently
//!
//! Read `LEDGER`; check each checkpoint record's framing and signature; walk the segments in
//! index order checking both CRCs of every record (from `PRUNED` on, taking leaf hashes
//! below it from `level-00.bin`); hash every leaf and fold them into the tree; at each
//! checkpoint's size the root must equal the checkpoint's root (matching roots at every
//! checkpoint prove the checkpoints are consistent with each other); the log must hold at
//! least as many entries as the last checkpoint. [`log::verify_dir`] does exactly this and
//! also cross-checks the stored hash files.
//!
//! # Durability
//!
//! [`log::Log::append_batch`] writes the records and node hashes and then fdatasyncs the
//! segment once; the range it returns (and the durable size readers see) covers only
//! entries that are on disk. New segment files are fsynced with their directory before
//! records go into them.

#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod error;
pub mod leaf;
pub mod log;
pub mod note;
pub mod proof;
pub mod segment;
pub mod tree;
pub mod writer;

pub use checkpoint::Checkpoint;
pub use error::{Error, Result};
pub use log::{Log, LogReader, Options, VerifyReport, verify_dir};
pub use note::{Ed25519Signer, NoteSigner, VerifierKey};
pub use tree::Hash;
pub use writer::{Completion, Writer, WriterConfig, WriterHandle};
