//! Worker threads that process numbered jobs in parallel and hand results
//! back in order, and a small pool of reusable segment buffers.

use super::CodecError;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Segment-sized buffers kept for reuse. Fresh multi-MiB allocations are
/// page-faulted in on first touch, which costs as much as a fast pass over
/// the data; reusing them keeps that off the hot path.
pub(crate) struct BufferPool {
    kept: Mutex<Vec<Vec<u8>>>,
    capacity: usize,
    max_kept: usize,
}

impl BufferPool {
    /// Buffers of `capacity` bytes; at most `max_kept` are held while idle.
    pub(crate) fn new(capacity: usize, max_kept: usize) -> Self {
        BufferPool {
            kept: Mutex::new(Vec::with_capacity(max_kept)),
            capacity,
            max_kept,
        }
    }

    /// An empty buffer, reused if one is kept.
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut buf = self.take_any();
        buf.clear();
        buf
    }

    /// A buffer of exactly `len` bytes of unspecified content (zeros or
    /// earlier data), for a caller that overwrites all of it. A reused
    /// buffer keeps the length it was given back with, so only bytes beyond
    /// that are zeroed: no pass over the whole buffer per use.
    pub(crate) fn take_len(&self, len: usize) -> Vec<u8> {
        let mut buf = self.take_any();
        if buf.len() >= len {
            buf.truncate(len);
        } else {
            buf.resize(len, 0);
        }
        buf
    }

    /// A buffer as it was given back: length and content unspecified.
    pub(crate) fn take_any(&self) -> Vec<u8> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        kept.unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// Returns a buffer for reuse; dropped if too small or the pool is full.
    /// Its length is kept (see [`BufferPool::take_len`]).
    pub(crate) fn give(&self, buf: Vec<u8>) {
        if buf.capacity() < self.capacity {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < self.max_kept {
            kept.push(buf);
        }
    }
}

type Outcome<O> = (u32, Result<O, CodecError>);

/// Runs `work` on `threads` threads over jobs numbered by the caller from 0
/// upwards, and returns the results in that order. The caller bounds how
/// many jobs are outstanding; both channels are sized to that bound, so a
/// worker never blocks on sending a result.
pub(crate) struct OrderedPool<J: Send + 'static, O: Send + 'static> {
    jobs: Option<SyncSender<(u32, J)>>,
    results: Receiver<Outcome<O>>,
    early: BTreeMap<u32, Result<O, CodecError>>,
    outstanding: usize,
    workers: Vec<JoinHandle<()>>,
}

impl<J: Send + 'static, O: Send + 'static> OrderedPool<J, O> {
    /// Starts the workers. Each builds its own state with `init` (a zstd
    /// context, an expanded key) and then runs `work` on each job.
    pub(crate) fn new<S, I, W>(
        threads: usize,
        bound: usize,
        init: I,
        work: W,
    ) -> Result<Self, CodecError>
    where
        S: 'static,
        I: Fn() -> Result<S, CodecError> + Send + Sync + 'static,
        W: Fn(&mut S, u32, J) -> Result<O, CodecError> + Send + Sync + 'static,
    {
        let (jobs_tx, jobs_rx) = sync_channel::<(u32, J)>(bound);
        let (results_tx, results) = sync_channel::<Outcome<O>>(bound);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let job = Arc::new((init, work));
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            let jobs_rx = Arc::clone(&jobs_rx);
            let results_tx = results_tx.clone();
            let job = Arc::clone(&job);
            let spawned = std::thread::Builder::new()
                .name(format!("ifs-codec-{n}"))
                .spawn(move || worker_loop(&jobs_rx, &results_tx, &job.0, &job.1));
            match spawned {
                Ok(handle) => workers.push(handle),
                // Fewer workers still make progress; none would hang.
                Err(_) if !workers.is_empty() => break,
                Err(_) => return Err(CodecError::Worker),
            }
        }
        Ok(OrderedPool {
            jobs: Some(jobs_tx),
            results,
            early: BTreeMap::new(),
            outstanding: 0,
            workers,
        })
    }

    /// Jobs submitted whose results were not yet taken.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Queues job `index`.
    pub(crate) fn submit(&mut self, index: u32, job: J) -> Result<(), CodecError> {
        let jobs = self.jobs.as_ref().ok_or(CodecError::Worker)?;
        jobs.send((index, job)).map_err(|_| CodecError::Worker)?;
        self.outstanding += 1;
        Ok(())
    }

    /// Waits for the result of job `index`, keeping later ones that finish first.
    pub(crate) fn take(&mut self, index: u32) -> Result<O, CodecError> {
        loop {
            if let Some(result) = self.early.remove(&index) {
                self.outstanding -= 1;
                return result;
            }
            // Every worker gone while a job is outstanding: nobody will answer.
            let (i, result) = self.results.recv().map_err(|_| CodecError::Worker)?;
            self.early.insert(i, result);
        }
    }
}

impl<J: Send + 'static, O: Send + 'static> Drop for OrderedPool<J, O> {
    fn drop(&mut self) {
        // Closing the job queue ends each worker after its current job;
        // joining them means no thread outlives the stream that used it.
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker_loop<S, J, O, I, W>(
    jobs: &Mutex<Receiver<(u32, J)>>,
    results: &SyncSender<Outcome<O>>,
    init: &I,
    work: &W,
) where
    I: Fn() -> Result<S, CodecError>,
    W: Fn(&mut S, u32, J) -> Result<O, CodecError>,
{
    let mut state = None;
    loop {
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok((index, job)) = next else { return };
        let result = match state.as_mut() {
            Some(s) => run(work, s, index, job),
            None => match init() {
                Ok(s) => run(work, state.insert(s), index, job),
                Err(e) => Err(e),
            },
        };
        // A panic may have left the state half-updated: rebuild it.
        if matches!(result, Err(CodecError::Worker)) {
            state = None;
        }
        if results.send((index, result)).is_err() {
            return;
        }
    }
}

/// Runs one job; a panic (a bug, never input-driven by design) becomes an
/// error instead of a hung stream.
fn run<S, J, O, W>(work: &W, state: &mut S, index: u32, job: J) -> Result<O, CodecError>
where
    W: Fn(&mut S, u32, J) -> Result<O, CodecError>,
{
    catch_unwind(AssertUnwindSafe(|| work(state, index, job))).unwrap_or(Err(CodecError::Worker))
}
