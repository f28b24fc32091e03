//! Put throughput: stores 1 GiB as 8 MiB chunks (2 pieces each) and prints
//! MB/s for several numbers of puts in flight, next to a bare
//! write + fsync + rename of the same bytes as the ceiling.
//!
//! `cargo run --release -p ifs-store --example put_throughput [DIR]`
//! (DIR defaults to a temp dir; it must sit on the disk you want to measure).

use ifs_core::{ChunkId, UserId};
use ifs_store::{Cap, StoreConfig, StoreHandle, VolumeSpec};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHUNK: usize = 8 << 20;
const CHUNKS: u64 = 128;

fn base_buffer() -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..CHUNK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Chunk `i`: the base buffer with its index stamped in front.
fn chunk(base: &[u8], i: u64) -> Vec<u8> {
    let mut data = base.to_vec();
    data[..8].copy_from_slice(&i.to_le_bytes());
    data
}

fn mbps(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = match std::env::args().nth(1) {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let base = Arc::new(base_buffer());
    let total = CHUNKS * CHUNK as u64;

    // Ceiling: the same bytes written as files the simplest durable way.
    let raw = root.path().join("raw");
    std::fs::create_dir(&raw)?;
    let t = Instant::now();
    for i in 0..CHUNKS {
        let tmp = raw.join(format!("{i}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&chunk(&base, i))?;
        f.sync_data()?;
        std::fs::rename(&tmp, raw.join(i.to_string()))?;
    }
    println!(
        "bare write+fsync+rename, 1 in flight: {:>7.0} MB/s",
        mbps(total, t.elapsed())
    );
    std::fs::remove_dir_all(&raw)?;

    for in_flight in [1usize, 2, 4, 8] {
        let dir = root.path().join(format!("run{in_flight}"));
        let vol = dir.join("vol");
        std::fs::create_dir_all(&vol)?;
        let cfg = StoreConfig::new(
            dir.join("data"),
            vec![VolumeSpec {
                path: vol,
                cap: Cap::Bytes(2 * total),
            }],
        );
        let store = StoreHandle::open(cfg).await?;
        let res = store.reserve(total, Duration::from_secs(3600), 0).await?;
        let ids: Vec<ChunkId> = (0..CHUNKS).map(|i| ChunkId::of(&chunk(&base, i))).collect();
        let sem = Arc::new(tokio::sync::Semaphore::new(in_flight));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for (i, id) in ids.into_iter().enumerate() {
            let permit = sem.clone().acquire_owned().await?;
            let (store, base) = (store.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                let data = chunk(&base, i as u64);
                let out = store.put_chunk(res.id, id, UserId([0; 32]), data, 1).await;
                drop(permit);
                out
            }));
        }
        for task in tasks {
            task.await??;
        }
        let elapsed = t.elapsed();
        let used = store.stats().await?.used;
        assert_eq!(used, total);
        println!(
            "store put, {in_flight} in flight:            {:>7.0} MB/s",
            mbps(total, elapsed)
        );
        store.shutdown().await;
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
