//! `ifsnode local-roundtrip` (hidden, used by `scripts/demo.sh`): one file
//! through the codec and a local store and back, on this machine only.
//!
//! Encode → store → read back → decode → compare, printing each chunk's id,
//! sizes and volumes and each phase's MB/s. Encoding and storing are
//! pipelined chunk by chunk, so memory stays bounded for any input size.

use crate::cmd::GlobalArgs;
use crate::stdout::outln;
use crate::volume::{Cap, VolumeSpec};
use anyhow::{Context, bail};
use clap::Args;
use ifs_core::ChunkId;
use ifs_core::codec::{CodecParams, Decoder, Encoder, FileKey, NoncePrefix};
use ifs_core::keys::UserKey;
use ifs_store::{StoreConfig, StoreHandle};
use serde::Serialize;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Arguments of `ifsnode local-roundtrip`.
#[derive(Debug, Args)]
pub struct LocalRoundtripArgs {
    /// Work directory (sample file, store, volumes); must exist.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// File to send through; default: a generated text-like sample.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Size of the generated sample, e.g. 64MiB.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub size: u64,
    /// Number of volumes the store spreads pieces over.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub volumes: u16,
    /// Print the report as JSON at the end instead of lines as it goes.
    #[arg(long)]
    pub json: bool,
}

/// A line of the human output; with `--json` the report is printed at the
/// end instead, from the same figures.
macro_rules! say {
    ($json:expr, $($arg:tt)*) => {
        if $json { anyhow::Ok(()) } else { outln!($($arg)*) }
    };
}

/// One chunk as it went through encode and store.
#[derive(Debug, Serialize)]
struct ChunkRow {
    index: u32,
    id: String,
    plain_bytes: u64,
    stored_bytes: u64,
    pieces: usize,
    volumes: Vec<String>,
}

/// A volume after the round trip.
#[derive(Debug, Serialize)]
struct VolumeRow {
    path: String,
    used_bytes: u64,
    cap_bytes: u64,
    free_bytes: u64,
}

/// What `local-roundtrip --json` prints.
#[derive(Debug, Serialize)]
struct Report {
    input: String,
    size_bytes: u64,
    stored_bytes: u64,
    chunks: Vec<ChunkRow>,
    encode_s: f64,
    store_s: f64,
    read_s: f64,
    read_decode_s: f64,
    identical: bool,
    volumes: Vec<VolumeRow>,
}

/// `64MiB`, `1GiB`, `1000000`: a byte count with an optional binary unit.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(format!("bad size {s:?} (expected e.g. 64MiB)")),
    };
    n.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size {s:?} (expected e.g. 64MiB)"))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn mbps(bytes: u64, t: Duration) -> String {
    format!("{:.0} MB/s", bytes as f64 / 1e6 / t.as_secs_f64().max(1e-9))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Run `ifsnode local-roundtrip`.
pub fn run(_global: &GlobalArgs, args: LocalRoundtripArgs) -> anyhow::Result<()> {
    let json = args.json;
    let mut rows: Vec<ChunkRow> = Vec::new();
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("work directory {}", args.dir.display()))?;
    let input = match &args.input {
        Some(p) => p.clone(),
        None => {
            let p = dir.join("sample.txt");
            let t = Instant::now();
            write_sample(&p, args.size)?;
            say!(
                json,
                "sample   {} ({}, text-like, made in {:.2} s)",
                p.display(),
                mib(args.size),
                t.elapsed().as_secs_f64()
            )?;
            p
        }
    };
    let len = std::fs::metadata(&input)
        .with_context(|| format!("cannot read {}", input.display()))?
        .len();

    // Caps that together hold the file with 20% to spare, so pieces spread
    // over every volume (the store fills the one with the most room first).
    let params = CodecParams::default();
    let segments = len.div_ceil(params.segment_size as u64).max(1);
    let bound = len + segments * ifs_core::codec::CHUNK_OVERHEAD as u64;
    let cap = (bound * 6 / 5 / u64::from(args.volumes)).max(params.segment_size as u64 + (1 << 20));
    let volumes: Vec<VolumeSpec> = (0..args.volumes)
        .map(|i| {
            let path = dir.join(format!("volume{i}"));
            std::fs::create_dir_all(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            Ok(VolumeSpec {
                path,
                cap: Cap::Bytes(cap),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store = rt
        .block_on(StoreHandle::open(StoreConfig::new(
            dir.join("store"),
            volumes,
        )))
        .with_context(|| format!("cannot open a store in {}", dir.display()))?;
    let stats = rt.block_on(store.stats())?;
    say!(
        json,
        "store    {} (local table), {} free",
        dir.join("store").display(),
        mib(stats.free)
    )?;
    for v in &stats.volumes {
        say!(json, "volume   {}  cap {}", v.path.display(), mib(v.cap))?;
    }

    // Encode and store, chunk by chunk.
    let mut rng = rand::rng();
    let (key, prefix, owner) = (
        FileKey::generate(&mut rng),
        NoncePrefix::generate(&mut rng),
        UserKey::generate(&mut rng).user_id(),
    );
    let reservation = rt.block_on(store.reserve(bound, Duration::from_secs(600), now_ms()))?;
    say!(
        json,
        "reserve  {} for up to {segments} chunks (id {})",
        mib(bound),
        reservation.id
    )?;
    say!(
        json,
        "\nencode + store  ({} threads, {} segments)",
        params.threads,
        mib(params.segment_size as u64)
    )?;
    say!(
        json,
        "  {:>5}  {:<16}  {:>10}  {:>10}  {:>6}  {:>6}  volumes",
        "chunk",
        "id",
        "plain",
        "stored",
        "ratio",
        "pieces"
    )?;

    let reader = BufReader::with_capacity(
        1 << 20,
        File::open(&input).with_context(|| format!("cannot read {}", input.display()))?,
    );
    let mut encoder = Encoder::new(reader, &key, prefix, &params)?;
    let (mut encode_t, mut store_t, mut stored_bytes) = (Duration::ZERO, Duration::ZERO, 0u64);
    let mut ids: Vec<ChunkId> = Vec::new();
    let mut before = stats.volumes.iter().map(|v| v.used).collect::<Vec<_>>();
    loop {
        let t = Instant::now();
        let Some(chunk) = encoder.next() else { break };
        let chunk = chunk.with_context(|| format!("cannot encode {}", input.display()))?;
        encode_t += t.elapsed();
        let t = Instant::now();
        let (id, clen, plain, index) = (
            chunk.id,
            chunk.data.len() as u64,
            chunk.plain_len,
            chunk.index,
        );
        let stored =
            rt.block_on(store.put_chunk(reservation.id, id, owner, chunk.data, now_ms()))?;
        store_t += t.elapsed();
        let after: Vec<u64> = rt
            .block_on(store.stats())?
            .volumes
            .iter()
            .map(|v| v.used)
            .collect();
        let used_on: Vec<String> = (0..after.len())
            .filter(|&i| after[i] > before[i])
            .map(|i| format!("volume{i}"))
            .collect();
        before = after;
        stored_bytes += clen;
        let row = ChunkRow {
            index,
            id: id.to_hex(),
            plain_bytes: plain,
            stored_bytes: clen,
            pieces: stored.pieces,
            volumes: used_on,
        };
        let ratio = row.plain_bytes as f64 / row.stored_bytes.max(1) as f64;
        say!(
            json,
            "  {:>5}  {:<16}  {:>10}  {:>10}  {ratio:>6.2}  {:>6}  {}",
            row.index,
            &row.id[..16],
            mib(row.plain_bytes),
            mib(row.stored_bytes),
            row.pieces,
            row.volumes.join(", ")
        )?;
        rows.push(row);
        ids.push(id);
    }
    let end = rt.block_on(store.commit_reservation(reservation.id))?;
    say!(
        json,
        "  encoded {} → {} in {} chunks: encode {:.2} s ({}), store {:.2} s ({}); {} of the reservation returned",
        mib(len),
        mib(stored_bytes),
        ids.len(),
        encode_t.as_secs_f64(),
        mbps(len, encode_t),
        store_t.as_secs_f64(),
        mbps(stored_bytes, store_t),
        mib(end.returned)
    )?;

    // Read back, decode, compare.
    say!(json, "\nread + decode + compare")?;
    let original = BufReader::with_capacity(1 << 20, File::open(&input)?);
    let mut decoder = Decoder::new(&key, prefix, ids.clone(), Compare::new(original), &params)?;
    let (mut read_t, t_all) = (Duration::ZERO, Instant::now());
    for (i, id) in ids.iter().enumerate() {
        let t = Instant::now();
        let data = rt.block_on(store.get_chunk(*id))?;
        read_t += t.elapsed();
        decoder
            .push(i as u32, data)
            .with_context(|| format!("cannot decode chunk {i} ({id})"))?;
    }
    let compare = decoder.finish().context("cannot finish decoding")?;
    let total_t = t_all.elapsed();
    compare.check(len)?;
    say!(
        json,
        "  read {} chunks in {:.2} s ({}); read + decode {:.2} s ({} of plaintext)",
        ids.len(),
        read_t.as_secs_f64(),
        mbps(stored_bytes, read_t),
        total_t.as_secs_f64(),
        mbps(len, total_t)
    )?;
    say!(json, "  identical: {} bytes match {}", len, input.display())?;

    let stats = rt.block_on(store.stats())?;
    say!(json, "\nvolumes")?;
    for v in &stats.volumes {
        say!(
            json,
            "  {}  used {}  cap {}  free {}",
            v.path.display(),
            mib(v.used),
            mib(v.cap),
            mib(v.free)
        )?;
    }
    say!(json, "round trip ok")?;
    if json {
        let report = Report {
            input: input.display().to_string(),
            size_bytes: len,
            stored_bytes,
            chunks: rows,
            encode_s: encode_t.as_secs_f64(),
            store_s: store_t.as_secs_f64(),
            read_s: read_t.as_secs_f64(),
            read_decode_s: total_t.as_secs_f64(),
            identical: true,
            volumes: stats
                .volumes
                .iter()
                .map(|v| VolumeRow {
                    path: v.path.display().to_string(),
                    used_bytes: v.used,
                    cap_bytes: v.cap,
                    free_bytes: v.free,
                })
                .collect(),
        };
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    }
    rt.block_on(store.shutdown());
    Ok(())
}

/// A writer that checks each byte against the original file as it arrives.
struct Compare<R: Read> {
    original: R,
    buf: Vec<u8>,
    seen: u64,
    mismatch_at: Option<u64>,
}

impl<R: Read> Compare<R> {
    fn new(original: R) -> Self {
        Compare {
            original,
            buf: Vec::new(),
            seen: 0,
            mismatch_at: None,
        }
    }

    fn check(mut self, len: u64) -> anyhow::Result<()> {
        if let Some(at) = self.mismatch_at {
            bail!("decoded data differs from the input at byte {at}");
        }
        if self.seen != len || self.original.read(&mut [0u8; 1])? != 0 {
            bail!("decoded {} bytes, the input has {len}", self.seen);
        }
        Ok(())
    }
}

impl<R: Read> Write for Compare<R> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.resize(data.len(), 0);
        self.original.read_exact(&mut self.buf)?;
        if self.mismatch_at.is_none()
            && let Some(i) = data.iter().zip(&self.buf).position(|(a, b)| a != b)
        {
            self.mismatch_at = Some(self.seen + i as u64);
        }
        self.seen += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Deterministic text-like data: words drawn with a skewed distribution from
/// a 4096-word vocabulary, so zstd finds realistic redundancy, not a
/// repeated string.
fn write_sample(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let syllables = [
        "ka", "lo", "mi", "ne", "su", "ra", "to", "vi", "de", "po", "an", "er", "is", "ul", "th",
        "gr",
    ];
    let vocab: Vec<String> = (0..4096)
        .map(|_| {
            let n = 1 + (next() % 4) as usize;
            (0..n).map(|_| syllables[(next() % 16) as usize]).collect()
        })
        .collect();
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    let (mut written, mut line) = (0u64, 0usize);
    let mut buf = String::with_capacity(64 << 10);
    while written < size {
        buf.clear();
        while buf.len() < 60 << 10 {
            // Squaring a uniform draw favours low ranks, like word frequencies.
            let r = (next() % 4096) as f64 / 4096.0;
            buf.push_str(&vocab[(r * r * 4096.0) as usize]);
            line += 1;
            buf.push_str(match line % 12 {
                0 => ".\n",
                6 => ", ",
                _ => " ",
            });
        }
        let take = buf.len().min((size - written) as usize);
        out.write_all(&buf.as_bytes()[..take])?;
        written += take as u64;
    }
    out.flush()?;
    Ok(())
}
