//! Group-commit writer: one std thread owns the `Log`, takes leaves from a bounded channel,
//! appends them in batches with one fsync each, completes every request with its index, and
//! signs checkpoints on a timer while entries arrive. Readers use `LogReader`, which never
//! waits for the writer's fsync and never sees entries that are not durable.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::log::{Log, LogReader};
use crate::note::NoteSigner;

/// What a request learns: its leaf index once durable, or the error shared by its batch.
pub type Committed = std::result::Result<u64, Arc<Error>>;

/// Receives the outcome of one append. The server implements it over a tokio oneshot sender
/// (so this crate needs no async runtime); closures implement it too. It is called exactly
/// once, on the writer thread, so it must not block.
pub trait Completion: Send + 'static {
    fn complete(self, result: Committed);
}

impl<F: FnOnce(Committed) + Send + 'static> Completion for F {
    fn complete(self, result: Committed) {
        self(result)
    }
}

/// Called on the writer thread after each checkpoint attempt (to publish or log it).
pub type CheckpointHook = Box<dyn FnMut(Result<&Checkpoint, &Error>) + Send>;

/// Writer tuning.
pub struct WriterConfig {
    /// Most leaves in one batch (one fsync).
    pub max_batch: usize,
    /// How long a batch may wait for more leaves after its first one. Zero commits as soon
    /// as the queue is empty: batches then form by themselves while the previous fsync runs,
    /// which gives the lowest latency on a single disk.
    pub max_linger: Duration,
    /// Capacity of the request queue; `append` blocks and `try_append` fails when full.
    pub queue: usize,
    /// Sign a checkpoint this often while new entries arrive (needs a signer).
    pub checkpoint_every: Duration,
    pub signer: Option<Box<dyn NoteSigner + Send>>,
    pub on_checkpoint: Option<CheckpointHook>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 4096,
            max_linger: Duration::ZERO,
            queue: 65536,
            checkpoint_every: Duration::from_secs(1),
            signer: None,
            on_checkpoint: None,
        }
    }
}

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("max_batch", &self.max_batch)
            .field("max_linger", &self.max_linger)
            .field("queue", &self.queue)
            .field("checkpoint_every", &self.checkpoint_every)
            .field(
                "signer",
                &self.signer.as_ref().map(|s| s.name().to_string()),
            )
            .finish()
    }
}

enum Msg<C> {
    Append(Vec<u8>, C),
    /// Retention: prune entry bodies below an index (see `Log::prune_bodies_before`).
    Prune(u64, PruneDone),
    Shutdown,
}

/// Receives the outcome of a prune: the first index whose body is still kept.
pub type PruneDone = Box<dyn FnOnce(Result<u64>) + Send>;

/// A cloneable sender of leaves to the writer thread.
pub struct WriterHandle<C: Completion> {
    tx: SyncSender<Msg<C>>,
}

impl<C: Completion> Clone for WriterHandle<C> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<C: Completion> std::fmt::Debug for WriterHandle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterHandle")
    }
}

/// Why `try_append` did not queue a leaf.
pub enum TryAppendError<C> {
    /// The queue is full: the leaf and completion come back for the caller to retry or shed.
    Full(Vec<u8>, C),
    /// The writer has stopped; the completion was already called with the error.
    Stopped,
}

impl<C> std::fmt::Debug for TryAppendError<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(..) => f.write_str("Full"),
            Self::Stopped => f.write_str("Stopped"),
        }
    }
}

impl<C: Completion> WriterHandle<C> {
    /// Queues a leaf, blocking while the queue is full. If the writer has stopped, `done` is
    /// completed with `Error::WriterStopped` and that error is returned.
    pub fn append(&self, leaf: Vec<u8>, done: C) -> Result<()> {
        match self.tx.send(Msg::Append(leaf, done)) {
            Ok(()) => Ok(()),
            Err(mpsc::SendError(msg)) => {
                if let Msg::Append(_, done) = msg {
                    done.complete(Err(Arc::new(Error::WriterStopped)));
                }
                Err(Error::WriterStopped)
            }
        }
    }

    /// Asks the writer thread to prune entry bodies below `index` (retention); `done`
    /// gets the first index whose body is still kept, on the writer thread.
    pub fn prune(&self, index: u64, done: PruneDone) -> Result<()> {
        self.tx
            .send(Msg::Prune(index, done))
            .map_err(|_| Error::WriterStopped)
    }

    /// Queues a leaf without blocking (for async callers).
    pub fn try_append(&self, leaf: Vec<u8>, done: C) -> std::result::Result<(), TryAppendError<C>> {
        match self.tx.try_send(Msg::Append(leaf, done)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Msg::Append(leaf, done))) => {
                Err(TryAppendError::Full(leaf, done))
            }
            Err(TrySendError::Disconnected(Msg::Append(_, done))) => {
                done.complete(Err(Arc::new(Error::WriterStopped)));
                Err(TryAppendError::Stopped)
            }
            Err(_) => Err(TryAppendError::Stopped),
        }
    }
}

/// The running writer. Dropping it without `shutdown` also flushes and stops the thread.
pub struct Writer<C: Completion> {
    handle: WriterHandle<C>,
    thread: Option<JoinHandle<Log>>,
    reader: LogReader,
    durable: Arc<AtomicU64>,
}

impl<C: Completion> std::fmt::Debug for Writer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("reader", &self.reader)
            .finish()
    }
}

impl<C: Completion> Writer<C> {
    /// Starts the writer thread, which owns `log` until `shutdown`.
    pub fn spawn(log: Log, config: WriterConfig) -> Result<Self> {
        let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
        let reader = log.reader();
        let durable = log.durable_size();
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || run(log, rx, config))
            .map_err(|e| Error::Io {
                path: "ledger-writer thread".into(),
                source: e,
            })?;
        Ok(Self {
            handle: WriterHandle { tx },
            thread: Some(thread),
            reader,
            durable,
        })
    }

    /// A sender for other threads or tasks.
    pub fn handle(&self) -> WriterHandle<C> {
        self.handle.clone()
    }

    /// See `WriterHandle::append`.
    pub fn append(&self, leaf: Vec<u8>, done: C) -> Result<()> {
        self.handle.append(leaf, done)
    }

    /// See `WriterHandle::try_append`.
    pub fn try_append(&self, leaf: Vec<u8>, done: C) -> std::result::Result<(), TryAppendError<C>> {
        self.handle.try_append(leaf, done)
    }

    /// A read handle: proofs, entries and checkpoints of durable entries only.
    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// The durable size, updated after each batch's fsync.
    pub fn durable_size(&self) -> Arc<AtomicU64> {
        self.durable.clone()
    }

    /// Commits everything queued before this call, signs a last checkpoint if a signer was
    /// given and there is something new, and returns the log.
    pub fn shutdown(mut self) -> Result<Log> {
        self.stop().ok_or(Error::WriterPanicked)?
    }

    fn stop(&mut self) -> Option<Result<Log>> {
        let thread = self.thread.take()?;
        // If the thread already ended (it panicked) the send fails; join reports that.
        let _ = self.handle.tx.send(Msg::Shutdown);
        Some(thread.join().map_err(|_| Error::WriterPanicked))
    }
}

impl<C: Completion> Drop for Writer<C> {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn run<C: Completion>(mut log: Log, rx: Receiver<Msg<C>>, mut config: WriterConfig) -> Log {
    let max_batch = config.max_batch.max(1);
    let mut leaves: Vec<Vec<u8>> = Vec::with_capacity(max_batch);
    let mut dones: Vec<C> = Vec::with_capacity(max_batch);
    // Monotonic time only schedules batching and checkpoints; it is never written anywhere.
    let mut last_checkpoint = Instant::now();
    // A log that never signed a checkpoint signs one even while empty (size 0, the empty
    // root), so every log has a signed head to cite from its first second on.
    let mut unsigned = log.latest_checkpoint().is_none();
    let mut shutting = false;
    while !shutting {
        // Wait for the first leaf of a batch, waking for a due checkpoint.
        let first = if unsigned && config.signer.is_some() {
            let due = last_checkpoint + config.checkpoint_every;
            match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Msg::Shutdown),
            }
        } else {
            Some(rx.recv().unwrap_or(Msg::Shutdown))
        };
        match first {
            None => {
                checkpoint(&mut log, &mut config);
                last_checkpoint = Instant::now();
                unsigned = false;
                continue;
            }
            Some(Msg::Shutdown) => shutting = true,
            Some(Msg::Prune(index, done)) => {
                done(log.prune_bodies_before(index));
                continue;
            }
            Some(Msg::Append(l, d)) => {
                leaves.push(l);
                dones.push(d);
            }
        }
        let mut prunes = Vec::new();
        let deadline = Instant::now() + config.max_linger;
        while !shutting && leaves.len() < max_batch {
            let msg = match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Disconnected) => Msg::Shutdown,
                Err(TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match rx.recv_timeout(left) {
                        Ok(m) => m,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => Msg::Shutdown,
                    }
                }
            };
            match msg {
                Msg::Shutdown => shutting = true,
                Msg::Prune(index, done) => prunes.push((index, done)),
                Msg::Append(l, d) => {
                    leaves.push(l);
                    dones.push(d);
                }
            }
        }
        if !leaves.is_empty() {
            match log.append_batch(&leaves) {
                Ok(range) => {
                    for (i, d) in dones.drain(..).enumerate() {
                        d.complete(Ok(range.start + i as u64));
                    }
                    unsigned = true;
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for d in dones.drain(..) {
                        d.complete(Err(e.clone()));
                    }
                }
            }
            leaves.clear();
        }
        for (index, done) in prunes {
            done(log.prune_bodies_before(index));
        }
        if unsigned
            && config.signer.is_some()
            && (shutting || last_checkpoint.elapsed() >= config.checkpoint_every)
        {
            checkpoint(&mut log, &mut config);
            last_checkpoint = Instant::now();
            unsigned = false;
        }
    }
    // Requests that raced with shutdown are refused rather than silently dropped; later
    // senders find the channel closed.
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Append(_, d) => d.complete(Err(Arc::new(Error::WriterStopped))),
            Msg::Prune(_, done) => done(Err(Error::WriterStopped)),
            Msg::Shutdown => {}
        }
    }
    drop(rx);
    log
}

fn checkpoint(log: &mut Log, config: &mut WriterConfig) {
    let Some(signer) = config.signer.as_deref() else {
        return;
    };
    let r = log.sign_checkpoint(signer);
    if let Some(hook) = config.on_checkpoint.as_mut() {
        match &r {
            Ok(Some(cp)) => hook(Ok(cp)),
            Ok(None) => {}
            Err(e) => hook(Err(e)),
        }
    }
}
