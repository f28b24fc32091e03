//! Chunk codec benchmark; `scripts/bench-codec.sh` builds and runs it.
//!
//! Generates (once, cached in `IFS_BENCH_DIR`) a text-like corpus and a
//! random one of `IFS_BENCH_MB` MiB each, measures the primitives alone on
//! one core, then the codec's encode and decode on all cores, and the peak
//! RSS of encoding an `IFS_BENCH_RSS_MB` MiB stream in a child process.
//! MB here is 10^6 bytes.

#[path = "bench_codec/corpus.rs"]
mod corpus;
#[path = "bench_codec/primitives.rs"]
mod primitives;
#[path = "common/thread_cpu.rs"]
mod thread_cpu;

use ifs_core::codec::{CodecParams, Decoder, Encoder, FileKey, NoncePrefix};
use std::error::Error;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error>>;

const MIB: u64 = 1 << 20;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

/// The 1, 5 and 15 minute load averages: how contended the run was.
fn loadavg() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// CPU seconds used by the whole process, all threads (user + system).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(") ").map_or("", |r| r.1);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // Clock ticks are 1/100 s on Linux.
    f.get(11)
        .zip(f.get(12))
        .map_or(0.0, |(u, s)| (u + s) as f64 / 100.0)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "rss-child" {
        return rss_child(Path::new(&args[2]), args[3].parse()?);
    }
    let dir = PathBuf::from(
        std::env::var("IFS_BENCH_DIR").unwrap_or_else(|_| "target/bench-codec".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let mb = env_u64("IFS_BENCH_MB", 1024);
    let rss_mb = env_u64("IFS_BENCH_RSS_MB", 4096);
    let prim_mb = env_u64("IFS_BENCH_PRIM_MB", 256).min(mb);
    let params = CodecParams::default();
    let cores = params.threads;
    println!(
        "chunk codec: {cores} cores, segment {} MiB, zstd level {}, {} segments in flight; corpora {mb} MiB each in {}",
        params.segment_size >> 20,
        params.zstd_level,
        params.in_flight,
        dir.display()
    );

    let text = ensure(
        &dir.join(format!("text-v1-{mb}MiB.txt")),
        mb * MIB,
        &mut corpus::Text::new(1, mb * MIB),
    )?;
    let random = ensure(
        &dir.join(format!("random-v1-{mb}MiB.bin")),
        mb * MIB,
        &mut corpus::Random::new(2, mb * MIB),
    )?;

    println!("load average: {}", loadavg());
    let p = primitives::measure(&text, prim_mb * MIB, params.segment_size)?;
    println!(
        "\nprimitives alone, one core, on {prim_mb} MiB in {} MiB segments (MB per CPU-second):",
        params.segment_size >> 20
    );
    println!(
        "  zstd-1 compress (text)   {:>7.0}   (ratio {:.2})",
        p.zstd_c, p.ratio
    );
    println!("  zstd-1 decompress (text) {:>7.0}", p.zstd_d);
    println!("  AES-256-GCM encrypt      {:>7.0}", p.aes_e);
    println!("  AES-256-GCM decrypt      {:>7.0}", p.aes_d);
    println!("  BLAKE3                   {:>7.0}", p.blake3);
    let n = cores as f64;
    let ceiling = n / (1.0 / p.zstd_c + 1.0 / p.aes_e + 1.0 / p.blake3);
    let dec_ceiling = n / (1.0 / p.aes_d + 1.0 / p.blake3);
    println!("  encode ceiling = {cores} / (1/zstd + 1/aes + 1/blake3) = {ceiling:.0} MB/s");
    println!(
        "  decode ceiling, stored data = {cores} / (1/aes + 1/blake3) = {dec_ceiling:.0} MB/s"
    );

    let key = FileKey([0x5a; 32]);
    let prefix = NoncePrefix([3; 7]);
    println!("\ncodec, all cores, MB/s of plaintext: wall clock, and per CPU-second × {cores}");
    println!("(what the codec would do with the cores to itself: robust to other load)");
    for (name, path) in [("text", &text), ("random", &random)] {
        let r = run_codec(name, path, &dir, &key, prefix, &params)?;
        println!(
            "  {name:<6} ratio {:.2}  encode {:>5.0} wall {:>5.0} cpu ({:>3.0}% / {:>3.0}% of ceiling)  decode {:>5.0} wall {:>5.0} cpu",
            r.ratio,
            r.encode,
            r.encode_cpu * n,
            100.0 * r.encode / ceiling,
            100.0 * r.encode_cpu * n / ceiling,
            r.decode,
            r.decode_cpu * n,
        );
    }
    println!("load average: {}", loadavg());

    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args([
            "rss-child",
            &text.display().to_string(),
            &rss_mb.to_string(),
        ])
        .output()?;
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("rss child failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    print!("\n{report}");
    Ok(())
}

/// Writes the corpus at `path` unless a complete one is there already (the
/// generators are deterministic, so a cached file is the same input).
fn ensure(path: &Path, len: u64, source: &mut dyn Read) -> Res<PathBuf> {
    if std::fs::metadata(path)
        .map(|m| m.len() == len)
        .unwrap_or(false)
    {
        return Ok(path.to_path_buf());
    }
    let start = Instant::now();
    let tmp = path.with_extension("partial");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let copied = io::copy(source, &mut w)?;
    w.flush()?;
    std::fs::rename(&tmp, path)?;
    println!(
        "generated {} ({copied} bytes) in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(path.to_path_buf())
}

struct CodecRun {
    ratio: f64,
    /// Wall-clock MB/s.
    encode: f64,
    decode: f64,
    /// MB per CPU-second, all threads together.
    encode_cpu: f64,
    decode_cpu: f64,
}

/// Encodes `input` (timed, chunks dropped as a sender would), encodes it
/// again into a chunk file (untimed), then decodes that file (timed).
fn run_codec(
    name: &str,
    input: &Path,
    dir: &Path,
    key: &FileKey,
    prefix: NoncePrefix,
    params: &CodecParams,
) -> Res<CodecRun> {
    let start = Instant::now();
    let cpu = process_cpu();
    let (mut plain, mut packed) = (0u64, 0u64);
    let recycle = std::env::var_os("IFS_BENCH_NO_RECYCLE").is_none();
    let mut encoder = Encoder::new(File::open(input)?, key, prefix, params)?;
    while let Some(chunk) = encoder.next() {
        let chunk = chunk?;
        plain += chunk.plain_len;
        packed += chunk.data.len() as u64;
        // As a sender would once the chunk is on the wire.
        if recycle {
            encoder.recycle(chunk.data);
        }
    }
    let encode = mbps(plain, start.elapsed().as_secs_f64());
    let encode_cpu = mbps(plain, process_cpu() - cpu);

    let chunk_path = dir.join(format!("{name}.chunks"));
    let mut ids = Vec::new();
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&chunk_path)?);
    for chunk in Encoder::new(File::open(input)?, key, prefix, params)? {
        let chunk = chunk?;
        ids.push(chunk.id);
        w.write_all(&(chunk.data.len() as u32).to_le_bytes())?;
        w.write_all(&chunk.data)?;
    }
    w.flush()?;
    drop(w);

    let start = Instant::now();
    let mut r = File::open(&chunk_path)?;
    let count = ids.len();
    let cpu = process_cpu();
    let mut dec = Decoder::new(key, prefix, ids, Counter(0), params)?;
    for index in 0..count {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let len = u64::from(u32::from_le_bytes(len));
        // As a network receiver would: into a buffer the decoder is done with.
        let mut data = dec.take_buffer();
        (&mut r).take(len).read_to_end(&mut data)?;
        dec.push(index as u32, data)?;
    }
    let written = dec.finish()?.0;
    let decode = mbps(written, start.elapsed().as_secs_f64());
    let decode_cpu = mbps(written, process_cpu() - cpu);
    std::fs::remove_file(&chunk_path)?;
    if written != plain {
        return Err(format!("{name}: decoded {written} bytes, encoded {plain}").into());
    }
    Ok(CodecRun {
        ratio: plain as f64 / packed as f64,
        encode,
        decode,
        encode_cpu,
        decode_cpu,
    })
}

/// Counts what the decoder writes; the output itself is not the subject.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// In a fresh process, so earlier phases do not count: encodes `mb` MiB of
/// the text corpus read over and over, and reports the peak RSS.
fn rss_child(text: &Path, mb: u64) -> Res<()> {
    let params = CodecParams::default();
    let reader = Looped {
        path: text.to_path_buf(),
        file: File::open(text)?,
        remaining: mb * MIB,
    };
    let start = Instant::now();
    let mut plain = 0;
    for chunk in Encoder::new(reader, &FileKey([1; 32]), NoncePrefix([2; 7]), &params)? {
        plain += chunk?.plain_len;
    }
    let secs = start.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .map_or_else(|| "unknown".to_string(), |v| v.trim().to_string());
    let hwm_mib = hwm
        .trim_end_matches(" kB")
        .parse::<f64>()
        .map(|kb| format!("{:.0} MiB", kb / 1024.0));
    println!(
        "peak RSS encoding a {mb} MiB text stream: {} (VmHWM {hwm}); encode {:.0} MB/s",
        hwm_mib.unwrap_or(hwm.clone()),
        mbps(plain, secs)
    );
    Ok(())
}

/// A file read again from the start until `remaining` bytes were served.
struct Looped {
    path: PathBuf,
    file: File,
    remaining: u64,
}

impl Read for Looped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let mut n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            self.file = File::open(&self.path)?;
            n = self.file.read(&mut buf[..want])?;
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
