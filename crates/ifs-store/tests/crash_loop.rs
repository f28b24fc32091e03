//! The crash loop: a child process churns a store (reservations, puts of
//! chunks spanning several pieces, commits, releases, deletes, expiry) and is
//! killed with SIGKILL at a random instant, 100 times over the same
//! directories. After each kill the store is reopened here and checked
//! against the journal the child kept of what succeeded:
//!
//! * every chunk committed and not deleted reads back bit-identical;
//! * `used` is the sum of the listed chunks, per volume and in total, and the
//!   piece files on disk add up to exactly that;
//! * after a sweep at the crash time, `reserved` is the outstanding part of
//!   the reservations the journal says are open and unexpired;
//! * no listed chunk has a piece missing, and nothing unknown is listed.
//!
//! The child is this test binary run again with `IFS_CHURN_DIR` set, so the
//! test needs no separate target. `IFS_CRASH_SEED` replays a run; the seed is
//! printed at the start.

use ifs_core::{ChunkId, UserId};
use ifs_store::{Cap, StoreConfig, StoreError, StoreHandle, VolumeSpec};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KIB: u64 = 1024;
const OWNER: UserId = UserId([9; 32]);
const ITERATIONS: u64 = 100;
const PIECE_SIZE: u64 = 8 * KIB;
const LARGEST_CHUNK: u64 = 40 * KIB;
const CHILD_ENV: &str = "IFS_CHURN_DIR";
const CHILD_SEED_ENV: &str = "IFS_CHURN_SEED";
const CHILD_BASE_ENV: &str = "IFS_CHURN_BASE";
const CHILD_CLOCK_ENV: &str = "IFS_CHURN_CLOCK";
const SEED_ENV: &str = "IFS_CRASH_SEED";
/// Logical milliseconds between two operations of the child.
const STEP_MS: u64 = 10;
/// A child is killed after at most this many operations (and a random
/// instant into the next).
const MAX_OPS_BEFORE_KILL: usize = 40;

fn config(dir: &Path) -> StoreConfig {
    let volumes = (0..2)
        .map(|i| VolumeSpec {
            path: dir.join(format!("vol{i}")),
            cap: Cap::Bytes(640 * KIB),
        })
        .collect();
    let mut cfg = StoreConfig::new(dir.join("data"), volumes);
    cfg.piece_size = PIECE_SIZE;
    cfg
}

/// The bytes of the chunk with content seed `seed`.
fn content(seed: u64, len: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One operation of the child, as journalled before it is tried.
#[derive(Clone, Debug, PartialEq)]
enum Op {
    Reserve {
        bytes: u64,
        expires_ms: u64,
        now: u64,
    },
    Put {
        res: u64,
        seed: u64,
        len: u64,
        now: u64,
    },
    End {
        res: u64,
        now: u64,
    },
    Delete {
        chunk: ChunkId,
        now: u64,
    },
    Sweep {
        now: u64,
    },
}

impl Op {
    fn now(&self) -> u64 {
        match self {
            Op::Reserve { now, .. }
            | Op::Put { now, .. }
            | Op::End { now, .. }
            | Op::Delete { now, .. }
            | Op::Sweep { now } => *now,
        }
    }

    fn line(&self, n: u64) -> String {
        match self {
            Op::Reserve {
                bytes,
                expires_ms,
                now,
            } => format!("I {n} reserve {bytes} {expires_ms} {now}"),
            Op::Put {
                res,
                seed,
                len,
                now,
            } => format!("I {n} put {res} {seed} {len} {now}"),
            Op::End { res, now } => format!("I {n} end {res} {now}"),
            Op::Delete { chunk, now } => format!("I {n} delete {} {now}", chunk.to_hex()),
            Op::Sweep { now } => format!("I {n} sweep {now}"),
        }
    }

    fn parse(words: &[&str]) -> Option<Op> {
        let num = |i: usize| words.get(i)?.parse::<u64>().ok();
        Some(match *words.first()? {
            "reserve" => Op::Reserve {
                bytes: num(1)?,
                expires_ms: num(2)?,
                now: num(3)?,
            },
            "put" => Op::Put {
                res: num(1)?,
                seed: num(2)?,
                len: num(3)?,
                now: num(4)?,
            },
            "end" => Op::End {
                res: num(1)?,
                now: num(2)?,
            },
            "delete" => Op::Delete {
                chunk: ChunkId::from_hex(words.get(1)?).ok()?,
                now: num(2)?,
            },
            "sweep" => Op::Sweep { now: num(1)? },
            _ => return None,
        })
    }
}

/// A reservation as the journal knows it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ModelRes {
    bytes: u64,
    used: u64,
    expires_ms: u64,
}

/// What the store must hold according to the journal.
#[derive(Clone, Debug, Default)]
struct Model {
    /// Keyed by the journal number of the reserve.
    reservations: BTreeMap<u64, ModelRes>,
    /// Committed chunks: id → (content seed, length).
    chunks: HashMap<ChunkId, (u64, u64)>,
}

impl Model {
    fn sweep(&mut self, now: u64) {
        self.reservations.retain(|_, r| r.expires_ms > now);
    }

    fn apply(&mut self, n: u64, op: &Op) {
        match *op {
            Op::Reserve {
                bytes, expires_ms, ..
            } => {
                // A reserve sweeps first.
                self.sweep(op.now());
                self.reservations.insert(
                    n,
                    ModelRes {
                        bytes,
                        used: 0,
                        expires_ms,
                    },
                );
            }
            Op::Put { res, seed, len, .. } => {
                // Short chunks repeat: a chunk already held is not charged again.
                let id = ChunkId::of(&content(seed, len));
                if self.chunks.contains_key(&id) {
                    return;
                }
                self.chunks.insert(id, (seed, len));
                if let Some(r) = self.reservations.get_mut(&res) {
                    r.used += len;
                }
            }
            Op::End { res, .. } => {
                self.reservations.remove(&res);
            }
            Op::Delete { chunk, .. } => {
                self.chunks.remove(&chunk);
            }
            Op::Sweep { now } => self.sweep(now),
        }
    }

    fn reserved(&self) -> u64 {
        self.reservations
            .values()
            .map(|r| r.bytes.saturating_sub(r.used))
            .sum()
    }
}

/// What one child left in the journal.
#[derive(Debug, Default)]
struct Replay {
    opened: bool,
    /// The operation tried last and neither done nor failed: it may or may
    /// not have taken effect.
    in_flight: Option<(u64, Op)>,
    /// The child's last logical time.
    last_now: u64,
    /// A fatal error the child wrote before exiting.
    fatal: Option<String>,
    done: u64,
}

/// Applies the complete journal lines after `offset` to `model`.
fn replay(journal: &Path, offset: usize, model: &mut Model) -> Replay {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    let tail = text.get(offset..).unwrap_or("");
    // A line cut by the kill has no newline: it never happened.
    let complete = match tail.rfind('\n') {
        Some(end) => &tail[..=end],
        None => "",
    };
    let mut out = Replay::default();
    for line in complete.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["open"] => out.opened = true,
            ["I", n, rest @ ..] => {
                let n: u64 = n.parse().expect("journal number");
                let op = Op::parse(rest).unwrap_or_else(|| panic!("bad journal line {line:?}"));
                assert!(out.in_flight.is_none(), "two operations at once: {line:?}");
                out.last_now = out.last_now.max(op.now());
                out.in_flight = Some((n, op));
            }
            ["D", n] | ["F", n] => {
                let n: u64 = n.parse().expect("journal number");
                let (m, op) = out
                    .in_flight
                    .take()
                    .unwrap_or_else(|| panic!("{line:?} without an intent"));
                assert_eq!(n, m, "journal out of order");
                if words[0] == "D" {
                    model.apply(n, &op);
                    out.done += 1;
                }
            }
            ["X", ..] => out.fatal = Some(line.to_string()),
            _ => panic!("bad journal line {line:?}"),
        }
    }
    out
}

/// Bytes of the files under `dir`, recursively.
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                tree_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn tree_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() { tree_files(&path) } else { 1 }
        })
        .sum()
}

/// Reopens the store after a kill, settles the in-flight operation from what
/// the store shows, and checks every invariant. Returns the mismatches.
async fn check(cfg: &StoreConfig, model: &mut Model, run: &Replay) -> Vec<String> {
    let mut bad = Vec::new();
    let store = StoreHandle::open(cfg.clone()).await.expect("reopen");

    // Settle the operation that was interrupted: chunk presence decides a
    // put or a delete; `reserved` decides a reserve or an end.
    let mut candidates = vec![model.clone()];
    if let Some((n, op)) = &run.in_flight {
        let mut applied = model.clone();
        applied.apply(*n, op);
        match op {
            Op::Put { seed, len, .. } => {
                let id = ChunkId::of(&content(*seed, *len));
                if store.contains(id).await.unwrap() {
                    candidates = vec![applied];
                }
            }
            Op::Delete { chunk, .. } => {
                if !store.contains(*chunk).await.unwrap() {
                    candidates = vec![applied];
                }
            }
            Op::Reserve { .. } | Op::End { .. } => candidates.push(applied),
            // A sweep is idempotent: the sweep below finishes it.
            Op::Sweep { .. } => candidates = vec![applied],
        }
    }
    // Sweep at the crash time: what is left must be exactly the open,
    // unexpired reservations.
    store.sweep_expired(run.last_now).await.unwrap();
    for m in &mut candidates {
        m.sweep(run.last_now);
    }
    let stats = store.stats().await.unwrap();
    match candidates.iter().find(|m| m.reserved() == stats.reserved) {
        Some(m) => *model = m.clone(),
        None => {
            bad.push(format!(
                "reserved {} after reopen, the journal allows {:?}",
                stats.reserved,
                candidates.iter().map(Model::reserved).collect::<Vec<_>>()
            ));
            *model = candidates.swap_remove(0);
        }
    }

    // (a) every committed chunk reads back bit-identical.
    for (id, (seed, len)) in &model.chunks {
        match store.get_chunk(*id).await {
            Ok(data) if data == content(*seed, *len) => {}
            Ok(_) => bad.push(format!("chunk {id} reads back different bytes")),
            Err(e) => bad.push(format!("committed chunk {id} (seed {seed}): {e}")),
        }
    }
    // (b) used = the listed chunks = the piece files on disk.
    let listed = store.list_chunks().await.unwrap();
    let listed_bytes: u64 = listed.iter().map(|c| c.len).sum();
    for c in &listed {
        match model.chunks.get(&c.id) {
            Some((_, len)) if *len == c.len => {}
            Some((_, len)) => bad.push(format!(
                "chunk {} listed as {} bytes, not {len}",
                c.id, c.len
            )),
            None => bad.push(format!(
                "chunk {} is listed but was never committed or was deleted",
                c.id
            )),
        }
    }
    if stats.used != listed_bytes {
        bad.push(format!(
            "used {} but the listed chunks hold {listed_bytes}",
            stats.used
        ));
    }
    let mut disk_total = 0;
    for (spec, vol) in cfg.volumes.iter().zip(&stats.volumes) {
        let on_disk = tree_bytes(&spec.path.join("ifs/pieces"));
        disk_total += on_disk;
        if on_disk != vol.used {
            bad.push(format!(
                "{}: {on_disk} bytes of piece files, {} counted",
                spec.path.display(),
                vol.used
            ));
        }
        let temps = tree_files(&spec.path.join("ifs/tmp"));
        if temps > 0 {
            bad.push(format!("{temps} temp files survived the reopen"));
        }
    }
    if disk_total != stats.used {
        bad.push(format!(
            "{disk_total} bytes of piece files, used is {}",
            stats.used
        ));
    }
    if stats.unremoved_files > 0 {
        bad.push(format!(
            "{} files could not be removed",
            stats.unremoved_files
        ));
    }
    if stats.free != stats.donated.saturating_sub(stats.used + stats.reserved) {
        bad.push(format!("free {} does not add up", stats.free));
    }
    // (d) no listed chunk has a piece missing (or damaged).
    let report = store.scrub().await.unwrap();
    if !report.is_clean() || report.checked != listed.len() as u64 {
        bad.push(format!("scrub after reopen: {report:?}"));
    }
    store.shutdown().await;
    bad
}

#[test]
fn the_store_survives_being_killed_at_random_points() {
    let seed: u64 = match std::env::var(SEED_ENV) {
        Ok(s) => s.parse().expect("IFS_CRASH_SEED is a number"),
        Err(_) => rand::random(),
    };
    println!("crash loop seed: {seed} (rerun with {SEED_ENV}={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    for v in &cfg.volumes {
        std::fs::create_dir_all(&v.path).unwrap();
    }
    let journal = dir.path().join("journal");
    let stderr_path = dir.path().join("child.stderr");
    let exe = std::env::current_exe().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut model = Model::default();
    let mut clock = 1_000;
    let (mut kills, mut kills_during_open, mut ops_done) = (0u64, 0u64, 0u64);
    for iteration in 0..ITERATIONS {
        let offset = std::fs::metadata(&journal).map_or(0, |m| m.len() as usize);
        let mut child = Command::new(&exe)
            .args(["churn_child", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_ENV, dir.path())
            .env(CHILD_SEED_ENV, rng.random::<u64>().to_string())
            .env(CHILD_BASE_ENV, ((iteration + 1) << 32).to_string())
            .env(CHILD_CLOCK_ENV, clock.to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        // Mostly kill during the churn, after a random number of operations
        // and a random instant into the next; sometimes while the child is
        // still opening the store (and recovering from the previous kill).
        if rng.random_bool(0.1) {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..=15)));
        } else {
            let ops = rng.random_range(0..=MAX_OPS_BEFORE_KILL);
            let start = Instant::now();
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                let text = std::fs::read_to_string(&journal).unwrap_or_default();
                let tail = text.get(offset..).unwrap_or("");
                if tail.contains("open\n") && tail.matches("\nI ").count() >= ops {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "iteration {iteration}: the child made no progress, seed {seed}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_micros(rng.random_range(0..=5_000)));
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        let run = replay(&journal, offset, &mut model);
        if let Some(fatal) = &run.fatal {
            panic!("iteration {iteration}: child failed: {fatal}, seed {seed}");
        }
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "iteration {iteration}: the child ended on its own ({status}), seed {seed}:\n{stderr}"
        );
        kills += 1;
        if !run.opened {
            kills_during_open += 1;
        }
        ops_done += run.done;
        let bad = rt.block_on(check(&cfg, &mut model, &run));
        assert!(
            bad.is_empty(),
            "iteration {iteration} (seed {seed}, in flight: {:?}):\n{}",
            run.in_flight,
            bad.join("\n")
        );
        clock = clock.max(run.last_now) + STEP_MS;
    }
    println!(
        "crash loop: {ITERATIONS} iterations, {kills} kills ({kills_during_open} while opening), \
         {ops_done} operations completed, {} chunks held at the end, 0 mismatches",
        model.chunks.len()
    );
}

/// A reservation the child made and may still use.
struct ChildRes {
    n: u64,
    id: ifs_store::ReservationId,
    left: u64,
    expires_ms: u64,
}

struct Child {
    store: StoreHandle,
    journal: std::fs::File,
    rng: StdRng,
    next: u64,
    now: u64,
    reservations: Vec<ChildRes>,
    chunks: Vec<ChunkId>,
}

impl Child {
    fn log(&mut self, line: &str) {
        self.journal
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        self.journal.sync_data().unwrap();
    }

    fn fatal(&mut self, what: &str) -> ! {
        self.log(&format!("X {what}"));
        std::process::exit(2);
    }

    /// Journals the intent, runs `op`, journals the outcome. `Ok(None)` is
    /// an expected refusal that changed nothing.
    async fn run<T>(
        &mut self,
        op: Op,
        result: impl AsyncFnOnce(&StoreHandle) -> Result<T, StoreError>,
        expected: impl Fn(&StoreError) -> bool,
    ) -> Option<T> {
        let n = self.next;
        self.next += 1;
        self.log(&op.line(n));
        match result(&self.store).await {
            Ok(v) => {
                self.log(&format!("D {n}"));
                Some(v)
            }
            Err(e) if expected(&e) => {
                self.log(&format!("F {n}"));
                None
            }
            Err(e) => self.fatal(&format!("{op:?}: {e}")),
        }
    }

    fn forget_expired(&mut self) {
        let now = self.now;
        self.reservations.retain(|r| r.expires_ms > now);
    }

    async fn step(&mut self) {
        self.now += STEP_MS;
        let now = self.now;
        match self.rng.random_range(0..100) {
            0..15 => {
                let bytes = self.rng.random_range(8 * KIB..=64 * KIB);
                let ttl = if self.rng.random_bool(0.3) {
                    3_000
                } else {
                    self.rng.random_range(50..=400)
                };
                let op = Op::Reserve {
                    bytes,
                    expires_ms: now + ttl,
                    now,
                };
                let n = self.next;
                let got = self
                    .run(
                        op,
                        async |s| s.reserve(bytes, Duration::from_millis(ttl), now).await,
                        |e| matches!(e, StoreError::Full { .. }),
                    )
                    .await;
                self.forget_expired();
                if let Some(r) = got {
                    self.reservations.push(ChildRes {
                        n,
                        id: r.id,
                        left: bytes,
                        expires_ms: r.expires_ms,
                    });
                }
            }
            15..65 => {
                // Now and then a put under a reservation that has run out.
                let stale = self.rng.random_bool(0.05);
                let usable: Vec<usize> = (0..self.reservations.len())
                    .filter(|&i| {
                        let r = &self.reservations[i];
                        if stale {
                            r.expires_ms <= now
                        } else {
                            r.expires_ms > now && r.left > 0
                        }
                    })
                    .collect();
                if usable.is_empty() {
                    return;
                }
                let i = usable[self.rng.random_range(0..usable.len())];
                let (res_n, res_id) = (self.reservations[i].n, self.reservations[i].id);
                let most = self.reservations[i].left.clamp(1, LARGEST_CHUNK);
                let len = self.rng.random_range(1..=most);
                let seed = self.next;
                let data = content(seed, len);
                let id = ChunkId::of(&data);
                let op = Op::Put {
                    res: res_n,
                    seed,
                    len,
                    now,
                };
                let stored = self
                    .run(
                        op,
                        async |s| s.put_chunk(res_id, id, OWNER, data, now).await,
                        |e| {
                            stale
                                && matches!(
                                    e,
                                    StoreError::Expired(_) | StoreError::UnknownReservation(_)
                                )
                        },
                    )
                    .await;
                if stored.is_some_and(|s| !s.already_present) {
                    self.reservations[i].left -= len;
                    self.chunks.push(id);
                }
            }
            65..75 => {
                let live: Vec<usize> = (0..self.reservations.len())
                    .filter(|&i| self.reservations[i].expires_ms > now)
                    .collect();
                if live.is_empty() {
                    return;
                }
                let i = live[self.rng.random_range(0..live.len())];
                let (res_n, res_id) = (self.reservations[i].n, self.reservations[i].id);
                let commit = self.rng.random_bool(0.5);
                let op = Op::End { res: res_n, now };
                self.run(
                    op,
                    async |s| {
                        if commit {
                            s.commit_reservation(res_id).await
                        } else {
                            s.release(res_id).await
                        }
                    },
                    |_| false,
                )
                .await;
                self.reservations.remove(i);
            }
            75..90 => {
                if self.chunks.is_empty() {
                    return;
                }
                let i = self.rng.random_range(0..self.chunks.len());
                let chunk = self.chunks.swap_remove(i);
                let op = Op::Delete { chunk, now };
                self.run(op, async |s| s.delete(chunk).await, |_| false)
                    .await;
            }
            90..95 => {
                self.run(
                    Op::Sweep { now },
                    async |s| s.sweep_expired(now).await,
                    |_| false,
                )
                .await;
                self.forget_expired();
            }
            _ => {}
        }
    }
}

/// The child side of the crash loop; does nothing unless started by it.
#[test]
#[ignore = "run by the crash loop as its child process"]
fn churn_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let var = |name: &str| -> u64 { std::env::var(name).unwrap().parse().unwrap() };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("journal"))
            .unwrap();
        let store = StoreHandle::open(config(&dir)).await.unwrap();
        // Chunks from earlier runs may be deleted too.
        let chunks = store
            .list_chunks()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let mut child = Child {
            store,
            journal,
            rng: StdRng::seed_from_u64(var(CHILD_SEED_ENV)),
            next: var(CHILD_BASE_ENV),
            now: var(CHILD_CLOCK_ENV),
            reservations: Vec::new(),
            chunks,
        };
        child.log("open");
        loop {
            child.step().await;
        }
    });
}
