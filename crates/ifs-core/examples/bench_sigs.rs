//! Ed25519 verification of one signer's batch, as a node checks the new
//! entries of a folder record; `scripts/bench-sigs.sh` builds and runs it.
//!
//! Signatures per CPU-second on one core: signing, `verify` one by one,
//! ed25519-dalek's `verify_batch` (the baseline, what `verify_all` called
//! before) and `verify_all`, for batches of 64, 512 and 4,096 messages of a
//! folder entry's size, and the ratio of `verify_all` to the baseline.

#[path = "common/thread_cpu.rs"]
mod thread_cpu;

use ifs_core::keys::{Sig, UserKey, domain, verify, verify_all};
use thread_cpu::thread_cpu;

/// Runs `f` (which handles `n` signatures) until at least 0.5 CPU-s have
/// passed; signatures per CPU-second.
fn rate(n: usize, mut f: impl FnMut()) -> f64 {
    let start = thread_cpu();
    let mut done = 0usize;
    while thread_cpu() - start < 0.5 {
        f();
        done += n;
    }
    done as f64 / (thread_cpu() - start)
}

fn main() {
    let key = UserKey::generate(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7));
    let id = key.user_id();
    let pk = id.as_bytes();
    println!("signatures per CPU-second, one core, messages of 256 bytes:");
    println!(
        "{:>6} {:>9} {:>11} {:>14} {:>11} {:>9}",
        "batch", "sign", "one by one", "dalek batch", "verify_all", "ratio"
    );
    for n in [64usize, 512, 4096] {
        let msgs: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let mut m = vec![0u8; 256];
                m[..8].copy_from_slice(&(i as u64).to_le_bytes());
                m
            })
            .collect();
        let mut sigs: Vec<Sig> = Vec::new();
        let sign = rate(n, || {
            sigs = msgs
                .iter()
                .map(|m| key.sign(domain::FOLDER_ENTRY, m))
                .collect();
        });
        let one = rate(n, || {
            for (m, s) in msgs.iter().zip(&sigs) {
                verify(pk, domain::FOLDER_ENTRY, m, s).expect("valid");
            }
        });
        // The baseline: ed25519-dalek's batch over the same signed inputs.
        let inputs: Vec<Vec<u8>> = msgs.iter().map(|m| signed_input(m)).collect();
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let dsigs: Vec<ed25519_dalek::Signature> = sigs
            .iter()
            .map(|s| ed25519_dalek::Signature::from_bytes(&s.0))
            .collect();
        let vk = ed25519_dalek::VerifyingKey::from_bytes(pk).expect("key");
        let keys = vec![vk; n];
        let dalek = rate(n, || {
            ed25519_dalek::verify_batch(&refs, &dsigs, &keys).expect("valid");
        });
        let ours = rate(n, || {
            verify_all(pk, domain::FOLDER_ENTRY, &msgs, &sigs).expect("valid");
        });
        println!(
            "{n:>6} {sign:>9.0} {one:>11.0} {dalek:>14.0} {ours:>11.0} {:>8.2}x",
            ours / dalek
        );
    }
}

/// What `ifs_core::keys` signs for `msg` in the folder-entry domain (its
/// domain separation, repeated here to feed ed25519-dalek the same bytes).
fn signed_input(msg: &[u8]) -> Vec<u8> {
    let d = domain::FOLDER_ENTRY.as_bytes();
    let mut out = b"ifs-sig\0".to_vec();
    out.push(d.len() as u8);
    out.extend_from_slice(d);
    out.extend_from_slice(msg);
    out
}
