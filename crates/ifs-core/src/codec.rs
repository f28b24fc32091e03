//! The chunk codec: zstd → segment → AES-256-GCM, chunk id = BLAKE3(ciphertext).
