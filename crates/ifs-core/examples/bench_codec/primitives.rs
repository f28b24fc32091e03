//! The building blocks of the codec timed alone, on one core.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use std::error::Error;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::thread_cpu::thread_cpu;

/// MB per second.
fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

/// MB/s per CPU-second of each primitive.
pub struct Primitives {
    pub zstd_c: f64,
    pub zstd_d: f64,
    pub ratio: f64,
    pub aes_e: f64,
    pub aes_d: f64,
    pub blake3: f64,
}

/// Times each primitive alone on the calling thread, over `len` bytes of
/// the text corpus in segment-sized pieces (the codec's working size).
pub fn measure(text: &Path, len: u64, seg: usize) -> Result<Primitives, Box<dyn Error>> {
    let mut segments = Vec::new();
    let mut f = File::open(text)?.take(len);
    loop {
        let mut s = Vec::with_capacity(seg);
        let n = (&mut f).take(seg as u64).read_to_end(&mut s)?;
        if n == 0 {
            break;
        }
        segments.push(s);
    }
    let total: u64 = segments.iter().map(|s| s.len() as u64).sum();
    let time = |f: &mut dyn FnMut()| {
        let start = thread_cpu();
        f();
        mbps(total, thread_cpu() - start)
    };

    let mut zc = zstd::bulk::Compressor::new(1)?;
    let mut packed: Vec<Vec<u8>> = segments
        .iter()
        .map(|_| Vec::with_capacity(zstd::zstd_safe::compress_bound(seg)))
        .collect();
    let zstd_c = time(&mut || {
        for (s, p) in segments.iter().zip(packed.iter_mut()) {
            zc.compress_to_buffer(&s[..], p).expect("compress");
        }
    });
    let ratio = total as f64 / packed.iter().map(|p| p.len() as f64).sum::<f64>();
    let mut zd = zstd::bulk::Decompressor::new()?;
    let mut plain = Vec::with_capacity(seg);
    let zstd_d = time(&mut || {
        for p in &packed {
            zd.decompress_to_buffer(&p[..], &mut plain)
                .expect("decompress");
        }
    });
    drop(packed);

    // The implementation the codec uses (aws-lc), sealing in place and
    // opening out of place as the codec does.
    let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"));
    let nonce = || Nonce::assume_unique_for_key([1u8; 12]);
    let mut tags = Vec::new();
    let aes_e = time(&mut || {
        for s in segments.iter_mut() {
            tags.push(
                cipher
                    .seal_in_place_separate_tag(nonce(), Aad::empty(), s.as_mut_slice())
                    .expect("encrypt"),
            );
        }
    });
    let mut out = vec![0u8; segments.first().map_or(0, Vec::len)];
    let aes_d = time(&mut || {
        for (s, t) in segments.iter().zip(&tags) {
            out.resize(s.len(), 0);
            cipher
                .open_separate_gather(nonce(), Aad::empty(), s, t.as_ref(), &mut out)
                .expect("decrypt");
        }
    });
    let mut sink = 0u8;
    let blake3 = time(&mut || {
        for s in &segments {
            sink ^= blake3::hash(s).as_bytes()[0];
        }
    });
    std::hint::black_box(sink);
    Ok(Primitives {
        zstd_c,
        zstd_d,
        ratio,
        aes_e,
        aes_d,
        blake3,
    })
}
