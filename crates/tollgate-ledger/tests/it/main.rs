//! Integration tests of the stored log: appends, proofs against the in-memory reference,
//! reopen and crash recovery, tampering caught by `verify_dir` and refused by `Log::open`,
//! pruning, and the group-commit writer.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tollgate_ledger::log::{Log, Options, verify_dir};
use tollgate_ledger::note::{Ed25519Signer, VerifierKey};
use tollgate_ledger::proof::{verify_consistency, verify_inclusion};
use tollgate_ledger::tree::{MemoryTree, leaf_hash};
use tollgate_ledger::writer::{Writer, WriterConfig};
use tollgate_ledger::{Error, leaf};

const ORIGIN: &str = "tollgate.example/ledger";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(ORIGIN, &[42u8; 32]).unwrap()
}

fn keys() -> Vec<VerifierKey> {
    vec![signer().verifier()]
}

fn small() -> Options {
    Options {
        segment_size: 4096,
        ..Options::default()
    }
}

fn leaf_n(i: u64) -> Vec<u8> {
    leaf::encode_v1(
        &serde_json::json!({"event": i, "units": i % 7, "pad": "x".repeat((i % 50) as usize)}),
    )
}

fn open(dir: &Path) -> tollgate_ledger::Result<Log> {
    Log::open(dir, ORIGIN, &keys(), small())
}

/// A log of `n` leaves in `batch`-sized appends, checkpointed after each of `cps` sizes.
fn build(dir: &Path, n: u64, cps: &[u64]) -> Log {
    let mut log = open(dir).unwrap();
    let s = signer();
    let mut i = 0;
    for &target in cps.iter().chain(std::iter::once(&n)) {
        let leaves: Vec<Vec<u8>> = (i..target).map(leaf_n).collect();
        for chunk in leaves.chunks(37) {
            log.append_batch(chunk).unwrap();
        }
        i = target;
        if target != n || cps.contains(&n) {
            log.sign_checkpoint(&s).unwrap();
        }
    }
    log
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Offsets of the records of a segment file.
fn record_offsets(path: &Path) -> Vec<(u64, u64)> {
    let b = fs::read(path).unwrap();
    let mut off = 16usize;
    let mut out = Vec::new();
    while off + 4 <= b.len() {
        let len = u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize;
        out.push((off as u64, (len + 12) as u64));
        off += len + 12;
    }
    out
}

fn verify(dir: &Path) -> tollgate_ledger::Result<tollgate_ledger::log::VerifyReport> {
    verify_dir(dir, ORIGIN, &keys(), &mut |_, _| {})
}

#[test]
fn stored_log_matches_the_reference_tree_and_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 500;
    let log = build(tmp.path(), n, &[100, 250]);
    assert!(segments(tmp.path()).len() > 3, "small segments roll");
    let mem = MemoryTree::from_leaves((0..n).map(leaf_n));
    assert_eq!(log.size(), n);
    assert_eq!(log.root(), mem.root());
    for size in [1, 2, 3, 7, 64, 65, 255, 256, 257, 499, 500] {
        let root = log.root_at(size).unwrap();
        assert_eq!(
            root,
            tollgate_ledger::tree::root(&mem, size).unwrap(),
            "root at {size}"
        );
        for i in [0, size / 2, size - 1] {
            let p = log.inclusion_proof(i, size).unwrap();
            verify_inclusion(&leaf_hash(&leaf_n(i)), i, size, &p, &root).unwrap();
            assert_eq!(log.leaf_hash(i).unwrap(), leaf_hash(&leaf_n(i)));
        }
        for m in [1, size / 3, size] {
            if m == 0 {
                continue;
            }
            let p = log.consistency_proof(m, size).unwrap();
            verify_consistency(m, size, &p, &log.root_at(m).unwrap(), &root).unwrap();
        }
    }
    assert_eq!(
        log.entries(60, 200).unwrap(),
        (60..200).map(leaf_n).collect::<Vec<_>>()
    );
    assert!(log.root_at(n + 1).is_err());
    assert!(log.entries(0, n + 1).is_err());
    let cps = log.checkpoints_since(0).unwrap();
    assert_eq!(
        cps.iter().map(|c| c.size).collect::<Vec<_>>(),
        vec![100, 250]
    );
    assert_eq!(log.checkpoints_since(100).unwrap().len(), 1);
    drop(log);

    let mut log = open(tmp.path()).unwrap();
    assert_eq!(log.root(), mem.root());
    assert_eq!(log.latest_checkpoint().unwrap().size, 250);
    let cp = log.sign_checkpoint(&signer()).unwrap().unwrap();
    assert_eq!((cp.size, cp.root), (n, mem.root()));
    assert!(
        log.sign_checkpoint(&signer()).unwrap().is_none(),
        "nothing new"
    );
    log.append_batch(&[leaf_n(n)]).unwrap();
    drop(log);
    let r = verify(tmp.path()).unwrap();
    assert_eq!((r.entries, r.checkpoints, r.torn_tail), (n + 1, 3, None));
}

#[test]
fn signer_must_match_origin_and_checkpoint_needs_known_key() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = build(tmp.path(), 10, &[10]);
    let other = Ed25519Signer::generate("someone.else").unwrap();
    log.append_batch(&[b"x"]).unwrap();
    assert!(matches!(
        log.sign_checkpoint(&other),
        Err(Error::SignerName { .. })
    ));
    drop(log);
    let stranger = Ed25519Signer::generate(ORIGIN).unwrap();
    let e = Log::open(tmp.path(), ORIGIN, &[stranger.verifier()], small()).unwrap_err();
    assert!(e.to_string().contains("checkpoint 0"), "{e}");
    assert!(matches!(
        Log::open(tmp.path(), ORIGIN, &[], small()),
        Err(Error::NoVerifierKeys)
    ));
    assert!(matches!(
        Log::open(tmp.path(), "other.log", &keys(), small()),
        Err(Error::WrongLog { .. })
    ));
}

/// Applies `damage` to a fresh 300-leaf log checkpointed at 300 and checks that verify_dir
/// fails with a message containing `want` and that open refuses.
fn tamper(damage: impl FnOnce(&Path), want: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    drop(build(tmp.path(), 300, &[150, 300]));
    verify(tmp.path()).unwrap();
    damage(tmp.path());
    let e = verify(tmp.path())
        .expect_err("verify_dir accepted a tampered log")
        .to_string();
    for w in want {
        assert!(e.contains(w), "verify error {e:?} lacks {w:?}");
    }
    let e2 = open(tmp.path()).expect_err("open accepted a tampered log");
    let _ = e2.to_string();
}

fn second_segment(dir: &Path) -> PathBuf {
    segments(dir)[1].clone()
}

#[test]
fn flipped_byte_in_a_leaf_body_is_found() {
    tamper(
        |d| {
            let p = second_segment(d);
            let (off, _) = record_offsets(&p)[3];
            let mut b = fs::read(&p).unwrap();
            b[off as usize + 6] ^= 1;
            fs::write(&p, b).unwrap();
        },
        &["00000000000000000", ".seg", "checksum mismatch", "at byte"],
    );
}

#[test]
fn deleted_record_is_found() {
    tamper(
        |d| {
            let p = second_segment(d);
            let (off, len) = record_offsets(&p)[2];
            let mut b = fs::read(&p).unwrap();
            b.drain(off as usize..(off + len) as usize);
            fs::write(&p, b).unwrap();
        },
        &["checksum mismatch", ".seg"],
    );
}

#[test]
fn duplicated_record_is_found() {
    tamper(
        |d| {
            let p = second_segment(d);
            let (off, len) = record_offsets(&p)[2];
            let mut b = fs::read(&p).unwrap();
            let rec = b[off as usize..(off + len) as usize].to_vec();
            b.splice((off + len) as usize..(off + len) as usize, rec);
            fs::write(&p, b).unwrap();
        },
        &["checksum mismatch"],
    );
}

#[test]
fn swapped_records_are_found() {
    tamper(
        |d| {
            let p = second_segment(d);
            let offs = record_offsets(&p);
            let (a, al) = offs[1];
            let (b_, bl) = offs[2];
            let mut b = fs::read(&p).unwrap();
            let ra = b[a as usize..(a + al) as usize].to_vec();
            let rb = b[b_ as usize..(b_ + bl) as usize].to_vec();
            let mut swapped = rb;
            swapped.extend_from_slice(&ra);
            b.splice(a as usize..(b_ + bl) as usize, swapped);
            fs::write(&p, b).unwrap();
        },
        &["checksum mismatch", "at byte"],
    );
}

#[test]
fn truncation_in_the_middle_is_found() {
    // A middle segment cut short: the next segment no longer continues it.
    tamper(
        |d| {
            let p = second_segment(d);
            let (off, _) = record_offsets(&p)[3];
            fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(off)
                .unwrap();
        },
        &["segment"],
    );
    // The last segment cut below the checkpointed size.
    tamper(
        |d| {
            let p = segments(d).last().unwrap().clone();
            let (off, _) = record_offsets(&p)[0];
            fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(off + 3)
                .unwrap();
        },
        &["entries but checkpoint 1 signed size 300"],
    );
}

#[test]
fn edited_checkpoint_is_found() {
    // Edited in place (checksum breaks) and re-framed with a valid checksum (signature breaks).
    tamper(
        |d| {
            let p = d.join("checkpoints.log");
            let mut b = fs::read(&p).unwrap();
            let at = b.windows(5).position(|w| w == b"\n300\n").unwrap();
            b[at + 1..at + 4].copy_from_slice(b"299");
            fs::write(&p, b).unwrap();
        },
        &["checkpoint 1"],
    );
    tamper(
        |d| {
            let p = d.join("checkpoints.log");
            let b = fs::read(&p).unwrap();
            let first_len = u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize;
            let off = 16 + first_len + 12;
            let note = String::from_utf8(b[off + 8..b.len() - 4].to_vec()).unwrap();
            let forged = note.replace("\n300\n", "\n299\n");
            let mut out = b[..off].to_vec();
            out.extend_from_slice(&(forged.len() as u32).to_le_bytes());
            out.extend_from_slice(
                &tollgate_ledger::segment::header_crc(1, forged.len() as u32).to_le_bytes(),
            );
            out.extend_from_slice(forged.as_bytes());
            out.extend_from_slice(
                &tollgate_ledger::segment::record_crc(1, forged.as_bytes()).to_le_bytes(),
            );
            fs::write(&p, out).unwrap();
        },
        &["checkpoint 1", "does not verify"],
    );
}

#[test]
fn tampered_node_hash_is_found() {
    tamper(
        |d| {
            let p = d.join("hashes").join("level-04.bin");
            let mut b = fs::read(&p).unwrap();
            b[40] ^= 1;
            fs::write(&p, b).unwrap();
        },
        &["level 4 index 1", "differs"],
    );
}

#[test]
fn torn_tail_beyond_the_checkpoint_is_repaired_not_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let log = build(tmp.path(), 200, &[150]);
    let root = log.root();
    drop(log);
    // A crash in the middle of appending record 200 leaves a partial record.
    let last = segments(tmp.path()).last().unwrap().clone();
    let mut rec = Vec::new();
    tollgate_ledger::segment::encode_record(&mut rec, 200, &leaf_n(200));
    let mut b = fs::read(&last).unwrap();
    b.extend_from_slice(&rec[..rec.len() - 5]);
    fs::write(&last, &b).unwrap();
    // And node hashes written past the durable leaves, never fsynced.
    let l0 = tmp.path().join("hashes").join("level-00.bin");
    let mut h = fs::read(&l0).unwrap();
    h.extend_from_slice(&[0xAB; 32]);
    fs::write(&l0, h).unwrap();

    let r = verify(tmp.path()).unwrap();
    let torn = r.torn_tail.expect("torn tail reported as crash debris");
    assert_eq!((torn.index, r.entries), (200, 200));
    assert!(r.stale_hashes);
    let mut log = open(tmp.path()).unwrap();
    assert_eq!((log.size(), log.root()), (200, root));
    log.append_batch(&[leaf_n(200)]).unwrap();
    drop(log);
    let r = verify(tmp.path()).unwrap();
    assert_eq!((r.entries, r.torn_tail, r.stale_hashes), (201, None, false));
}

#[test]
fn missing_node_hashes_are_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let log = build(tmp.path(), 300, &[]);
    let root = log.root();
    drop(log);
    fs::remove_dir_all(tmp.path().join("hashes")).unwrap();
    let log = open(tmp.path()).unwrap();
    assert_eq!(log.root(), root);
    let p = log.inclusion_proof(123, 300).unwrap();
    verify_inclusion(&leaf_hash(&leaf_n(123)), 123, 300, &p, &root).unwrap();
}

#[test]
fn pruned_bodies_keep_proofs_and_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = build(tmp.path(), 400, &[400]);
    let root = log.root();
    let before = segments(tmp.path()).len();
    assert!(matches!(
        log.prune_bodies_before(401),
        Err(Error::PruneBeyondCheckpoint { .. })
    ));
    let kept = log.prune_bodies_before(250).unwrap();
    assert!(kept > 0 && kept <= 250, "kept from {kept}");
    assert!(segments(tmp.path()).len() < before);
    assert!(matches!(
        log.entries(0, 5),
        Err(Error::Pruned { index: 0, .. })
    ));
    assert_eq!(
        log.entries(kept, kept + 3).unwrap(),
        (kept..kept + 3).map(leaf_n).collect::<Vec<_>>()
    );
    let p = log.inclusion_proof(3, 400).unwrap();
    verify_inclusion(&leaf_hash(&leaf_n(3)), 3, 400, &p, &root).unwrap();
    log.append_batch(&[leaf_n(400)]).unwrap();
    drop(log);
    let r = verify(tmp.path()).unwrap();
    assert_eq!((r.pruned_before, r.entries), (kept, 401));
    let log = open(tmp.path()).unwrap();
    assert_eq!(log.root_at(400).unwrap(), root);
    drop(log);
    // A pruned leaf hash altered: the checkpoint root no longer matches.
    let l0 = tmp.path().join("hashes").join("level-00.bin");
    let mut h = fs::read(&l0).unwrap();
    h[0] ^= 1;
    fs::write(&l0, h).unwrap();
    assert!(verify(tmp.path()).is_err());
    assert!(open(tmp.path()).is_err());
}

#[test]
fn writer_commits_in_groups_and_readers_see_only_durable_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path()).unwrap();
    let (cp_tx, cp_rx) = mpsc::channel();
    let config = WriterConfig {
        signer: Some(Box::new(signer())),
        checkpoint_every: std::time::Duration::from_millis(20),
        on_checkpoint: Some(Box::new(move |r| {
            let _ = cp_tx.send(r.map(|c| c.size).map_err(|e| e.to_string()));
        })),
        ..WriterConfig::default()
    };
    let writer: Writer<Box<dyn FnOnce(tollgate_ledger::writer::Committed) + Send>> =
        Writer::spawn(log, config).unwrap();
    let reader = writer.reader();
    let durable = writer.durable_size();
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = writer.handle();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..250u64 {
                    let tx = tx.clone();
                    let body = format!("t{t} e{i}").into_bytes();
                    let b2 = body.clone();
                    h.append(body, Box::new(move |r| tx.send((r.unwrap(), b2)).unwrap()))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut got: Vec<(u64, Vec<u8>)> = (0..1000).map(|_| rx.recv().unwrap()).collect();
    got.sort();
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        (0..1000).collect::<Vec<_>>()
    );
    // Every completed index is durable and readable with its own body.
    assert!(durable.load(std::sync::atomic::Ordering::Acquire) >= 1000);
    for (i, body) in got.iter().step_by(97) {
        assert_eq!(&reader.entries(*i, i + 1).unwrap()[0], body);
        let p = reader.inclusion_proof(*i, 1000).unwrap();
        verify_inclusion(
            &leaf_hash(body),
            *i,
            1000,
            &p,
            &reader.root_at(1000).unwrap(),
        )
        .unwrap();
    }
    let log = writer.shutdown().unwrap();
    let last = log
        .latest_checkpoint()
        .expect("checkpoint signed on shutdown");
    assert_eq!((last.size, last.root), (1000, log.root()));
    let sizes: Vec<u64> = cp_rx.try_iter().map(|r| r.unwrap()).collect();
    assert_eq!(sizes.last(), Some(&1000));
    drop(log);
    let r = verify(tmp.path()).unwrap();
    assert_eq!(r.entries, 1000);
}

#[test]
fn reader_does_not_see_beyond_durable_and_writer_refuses_after_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path()).unwrap();
    let writer: Writer<Box<dyn FnOnce(tollgate_ledger::writer::Committed) + Send>> =
        Writer::spawn(log, WriterConfig::default()).unwrap();
    let reader = writer.reader();
    assert_eq!(reader.size(), 0);
    assert!(reader.entries(0, 1).is_err());
    let h = writer.handle();
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    h.append(
        b"one".to_vec(),
        Box::new(move |r| tx2.send(r.map_err(|e| e.to_string())).unwrap()),
    )
    .unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(0));
    assert_eq!(reader.size(), 1);
    drop(writer.shutdown().unwrap());
    let tx3 = tx.clone();
    assert!(
        h.append(
            b"two".to_vec(),
            Box::new(move |r| tx3.send(r.map_err(|e| e.to_string())).unwrap())
        )
        .is_err()
    );
    assert!(
        rx.recv().unwrap().is_err(),
        "completion called with the error"
    );
}

#[test]
fn writer_prunes_old_bodies_on_request_and_keeps_proofs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = build(tmp.path(), 300, &[300]);
    let root = log.root();
    let writer: Writer<Box<dyn FnOnce(tollgate_ledger::writer::Committed) + Send>> =
        Writer::spawn(log, WriterConfig::default()).unwrap();
    let reader = writer.reader();
    let h = writer.handle();
    let (tx, rx) = mpsc::channel();
    // Beyond the last checkpoint: refused.
    let t = tx.clone();
    h.prune(
        301,
        Box::new(move |r| t.send(r.map_err(|e| e.to_string())).unwrap()),
    )
    .unwrap();
    assert!(rx.recv().unwrap().unwrap_err().contains("checkpoint"));
    let t = tx.clone();
    h.prune(
        200,
        Box::new(move |r| t.send(r.map_err(|e| e.to_string())).unwrap()),
    )
    .unwrap();
    let kept_from = rx.recv().unwrap().unwrap();
    assert!(kept_from > 0 && kept_from <= 200, "{kept_from}");
    assert_eq!(reader.pruned_before(), kept_from);
    assert!(reader.entries(0, 1).is_err());
    assert!(reader.entries(kept_from, 300).is_ok());
    // Proofs of pruned entries still verify against the same root.
    let path = reader.inclusion_proof(0, 300).unwrap();
    tollgate_ledger::proof::verify_inclusion(
        &tollgate_ledger::tree::leaf_hash(&leaf_n(0)),
        0,
        300,
        &path,
        &root,
    )
    .unwrap();
    drop(writer.shutdown().unwrap());
    verify(tmp.path()).unwrap();
}
