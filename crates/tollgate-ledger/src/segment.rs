//! Segment files: the append-only source of truth. A segment is a 16-byte header followed by
//! leaf records `len u32 LE ‖ hcrc u32 LE ‖ bytes ‖ crc u32 LE`, where `hcrc` is the CRC-32
//! (IEEE, crc32fast) of `index u64 LE ‖ len u32 LE` and `crc` that of
//! `index u64 LE ‖ len u32 LE ‖ bytes`. Putting the leaf index under the checksums makes a
//! record that moved (deleted, duplicated or swapped neighbour) fail its check at its new
//! position; the header check tells a damaged length (corruption) from a record cut short
//! by a crash (a torn tail), which a length alone cannot. The same framing stores the
//! signed checkpoints, numbered from 0.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// Magic of leaf segment files (format version 1).
pub const SEGMENT_MAGIC: [u8; 8] = *b"TGLSEG01";
/// Magic of the checkpoint file (format version 1).
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"TGLCKP01";
/// Header: magic ‖ first index u64 LE.
pub const HEADER_LEN: u64 = 16;
/// Framing bytes around each record's body.
pub const RECORD_OVERHEAD: u64 = 12;
/// Every this many records a segment's reader index remembers a byte offset.
pub const SPARSE_EVERY: u64 = 64;

/// The CRC of a record at `index`.
pub fn record_crc(index: u64, bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&index.to_le_bytes());
    h.update(&(bytes.len() as u32).to_le_bytes());
    h.update(bytes);
    h.finalize()
}

/// The CRC of a record's length field at `index`.
pub fn header_crc(index: u64, len: u32) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&index.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.finalize()
}

/// Appends the framed record for `bytes` at `index` to `out`.
pub fn encode_record(out: &mut Vec<u8>, index: u64, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&header_crc(index, bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(&record_crc(index, bytes).to_le_bytes());
}

pub fn header(magic: [u8; 8], first: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&magic);
    h[8..].copy_from_slice(&first.to_le_bytes());
    h
}

/// `segments/<first index, 20 digits>.seg`: names sort in index order.
pub fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An incomplete last record: what a crash in the middle of an append leaves behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Byte offset of the incomplete record; the file is valid up to here.
    pub offset: u64,
    /// Index the incomplete record would have had.
    pub index: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
}

/// What a scan of one file found.
#[derive(Debug)]
pub struct Scanned {
    pub records: u64,
    /// Length of the valid prefix (header plus whole good records).
    pub valid_len: u64,
    pub torn: Option<TornTail>,
    /// Offsets of records `first + k·SPARSE_EVERY`.
    pub sparse: Vec<u64>,
}

/// Reads every record of the file at `path`, calling `f(index, offset, bytes)`.
/// In the last file of a sequence (`last`), a final record cut short (fewer than 8 bytes, or
/// an intact length header whose record runs past the end), or a tail of zero bytes, is a
/// torn tail and ends the scan; anywhere else, and for any damaged length or record, the
/// file is corrupt and the error names the byte offset and index.
pub fn scan(
    path: &Path,
    magic: [u8; 8],
    first: u64,
    last: bool,
    mut f: impl FnMut(u64, u64, &[u8]) -> Result<()>,
) -> Result<Scanned> {
    let file = File::open(path).at(path)?;
    let file_len = file.metadata().at(path)?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let corrupt_seg = |reason: String| Error::CorruptSegment {
        path: path.to_path_buf(),
        reason,
    };
    if file_len < HEADER_LEN {
        if last {
            // A crash while creating the file: nothing in it was ever acknowledged.
            return Ok(Scanned {
                records: 0,
                valid_len: 0,
                torn: Some(TornTail {
                    path: path.to_path_buf(),
                    offset: 0,
                    index: first,
                    bytes: file_len,
                }),
                sparse: Vec::new(),
            });
        }
        return Err(corrupt_seg(format!(
            "{file_len} bytes is shorter than the header"
        )));
    }
    let mut h = [0u8; 16];
    r.read_exact(&mut h).at(path)?;
    if h[..8] != magic {
        return Err(corrupt_seg(format!(
            "bad magic {:?}",
            String::from_utf8_lossy(&h[..8])
        )));
    }
    let stored_first = u64::from_le_bytes(h[8..].try_into().expect("8 bytes"));
    if stored_first != first {
        return Err(corrupt_seg(format!(
            "header says first index {stored_first}, name says {first}"
        )));
    }
    let mut offset = HEADER_LEN;
    let mut index = first;
    let mut body = Vec::new();
    let mut sparse = Vec::new();
    loop {
        if offset == file_len {
            break;
        }
        let remaining = file_len - offset;
        let torn = |bytes| TornTail {
            path: path.to_path_buf(),
            offset,
            index,
            bytes,
        };
        let corrupt = |reason: String| Error::CorruptRecord {
            path: path.to_path_buf(),
            offset,
            index,
            reason,
        };
        if remaining < 8 {
            if last {
                return Ok(done(index - first, offset, Some(torn(remaining)), sparse));
            }
            return Err(corrupt(format!("{remaining} trailing bytes")));
        }
        let mut lb = [0u8; 8];
        r.read_exact(&mut lb).at(path)?;
        let len32 = u32::from_le_bytes(lb[..4].try_into().expect("4 bytes"));
        let len = len32 as u64;
        if u32::from_le_bytes(lb[4..].try_into().expect("4 bytes")) != header_crc(index, len32) {
            if last && zero_tail(path, offset)? {
                return Ok(done(index - first, offset, Some(torn(remaining)), sparse));
            }
            return Err(corrupt(
                "length checksum mismatch (record altered, moved, duplicated or missing)".into(),
            ));
        }
        if len + RECORD_OVERHEAD > remaining {
            if last {
                return Ok(done(index - first, offset, Some(torn(remaining)), sparse));
            }
            return Err(corrupt(format!(
                "record of {len} bytes runs past the end of the file ({remaining} bytes left)"
            )));
        }
        body.resize(len as usize + 4, 0);
        r.read_exact(&mut body).at(path)?;
        let crc = u32::from_le_bytes(body[len as usize..].try_into().expect("4 bytes"));
        let bytes = &body[..len as usize];
        if crc != record_crc(index, bytes) {
            if last && zero_tail(path, offset)? {
                return Ok(done(index - first, offset, Some(torn(remaining)), sparse));
            }
            return Err(corrupt(
                "checksum mismatch (record altered, moved, duplicated or missing)".into(),
            ));
        }
        if (index - first).is_multiple_of(SPARSE_EVERY) {
            sparse.push(offset);
        }
        f(index, offset, bytes)?;
        offset += len + RECORD_OVERHEAD;
        index += 1;
    }
    Ok(done(index - first, offset, None, sparse))
}

fn done(records: u64, valid_len: u64, torn: Option<TornTail>, sparse: Vec<u64>) -> Scanned {
    Scanned {
        records,
        valid_len,
        torn,
        sparse,
    }
}

/// Whether everything from `offset` to the end of the file is zero: file systems may expose
/// zero-filled blocks after a crash in the middle of an extending write.
fn zero_tail(path: &Path, offset: u64) -> Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).at(path)?;
    f.seek(SeekFrom::Start(offset)).at(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).at(path)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(segment_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert!(segment_name(9) < segment_name(10));
    }

    #[test]
    fn crc_binds_the_index() {
        assert_ne!(record_crc(1, b"x"), record_crc(2, b"x"));
        let mut out = Vec::new();
        encode_record(&mut out, 7, b"abc");
        assert_eq!(out.len(), 3 + RECORD_OVERHEAD as usize);
        assert_eq!(&out[4..8], &header_crc(7, 3).to_le_bytes());
        assert_eq!(&out[..4], &3u32.to_le_bytes());
    }
}
