//! `share` and `revoke` (DESIGN "Sharing").
//!
//! A share is a new manifest version with one more key wrap (the file key
//! sealed to the grantee's x25519 key) and the grantee in the fetch ACL;
//! the chunks stay where they are. A revoke re-keys: the file is read,
//! encrypted under a fresh key and put again as a new version wrapped for
//! the remaining readers only, then the old chunks' holders are told to
//! free them. The revoked key finds no wrap in the new manifest and no node
//! serves it the new chunks; the old ones are gone.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use ifs_core::ChunkId;
use ifs_core::codec::CodecParams;
use ifs_core::file_record::FileRecord;
use ifs_core::keys::{UserKey, UserPublic, wrap_key};
use ifs_core::wire::{FileDelete, MAX_READERS, Manifest};
use tracing::info;

use crate::catalog::forget_on_holders;
use crate::error::{GetError, ShareError};
use crate::folders::{self, FileState};
use crate::get::{GetOptions, get};
use crate::pages;
use crate::put::{PutOptions, PutReport, now_ms, put};
use crate::records;
use crate::session::Session;

/// What a share did.
#[derive(Clone, Debug)]
pub struct ShareReport {
    /// The manifest version that carries the grant.
    pub version: u64,
    /// The file was already shared with this key: nothing changed.
    pub already: bool,
    /// Readers besides the owner, now.
    pub readers: usize,
}

/// How a revoke re-puts the file.
#[derive(Clone, Debug)]
pub struct RevokeOptions {
    /// Replicas per chunk of the re-keyed copy.
    pub replicas: usize,
    /// Plaintext bytes re-put so far (for progress bars).
    pub progress: Option<Arc<AtomicU64>>,
}

impl Default for RevokeOptions {
    fn default() -> Self {
        RevokeOptions {
            replicas: 3,
            progress: None,
        }
    }
}

/// What a revoke did.
#[derive(Clone, Debug)]
pub struct RevokeReport {
    /// The re-keyed version.
    pub put: PutReport,
    /// Chunks of the old version.
    pub old_chunks: usize,
    /// Nodes holding old chunks, told to free them.
    pub holders: usize,
    /// Those that confirmed.
    pub confirmed: usize,
    /// Readers besides the owner that keep access.
    pub readers: usize,
}

/// The owner's live record and manifest of `name`.
async fn live(
    session: &Session,
    key: &UserKey,
    name: &str,
) -> Result<(FileRecord, Manifest), GetError> {
    let rec = records::get_own_file_record(session, key, name)
        .await?
        .ok_or_else(|| GetError::NotFound(name.to_string()))?;
    let m = rec
        .live_manifest()
        .ok_or_else(|| GetError::NotFound(name.to_string()))?
        .clone();
    Ok((rec, m))
}

/// Put `key`'s packed file `name` again alone (its own record, chunks and
/// file key), so it can be shared without the key of the pack it shared
/// with other files. `false` when `name` is not a packed file.
async fn unpack(session: &Session, key: &UserKey, name: &str) -> Result<bool, ShareError> {
    let Some((slice, _)) = crate::pack::packed_slice(session, key, name).await? else {
        return Ok(false);
    };
    let (_, bytes) = crate::get::get(
        session,
        key,
        name,
        Vec::with_capacity(slice.len as usize),
        crate::get::GetOptions::default(),
    )
    .await?;
    let mut opts = crate::put::PutOptions::new(name);
    opts.size_hint = Some(bytes.len() as u64);
    crate::put::put(session, key, std::io::Cursor::new(bytes), opts).await?;
    Ok(true)
}

/// The file key of `m` (the manifest of `name`), opened with the owner's
/// own wrap.
fn file_key(key: &UserKey, name: &str, m: &Manifest) -> Result<[u8; 32], GetError> {
    let wrap = m
        .wrap_for(&key.x25519_public())
        .ok_or_else(|| GetError::NotShared {
            name: name.to_string(),
            owner: m.owner.to_hex(),
        })?;
    Ok(key.unwrap_key(wrap)?)
}

/// Let `grantee` read `key`'s file `name`.
pub async fn share(
    session: &Session,
    key: &UserKey,
    name: &str,
    grantee: &UserPublic,
) -> Result<ShareReport, ShareError> {
    if grantee.user == key.user_id() || grantee.x25519 == key.x25519_public() {
        return Err(ShareError::OwnKey);
    }
    let (mut rec, m) = match live(session, key, name).await {
        Err(GetError::NotFound(_)) if unpack(session, key, name).await? => {
            live(session, key, name).await?
        }
        other => other?,
    };
    if m.readers.contains(&grantee.user) && m.wrap_for(&grantee.x25519).is_some() {
        return Ok(ShareReport {
            version: m.version,
            already: true,
            readers: m.readers.len(),
        });
    }
    let file_key = file_key(key, name, &m)?;
    let mut f = m.fields();
    if !f.readers.contains(&grantee.user) {
        if f.readers.len() >= MAX_READERS {
            return Err(ShareError::TooManyReaders {
                name: name.to_string(),
                max: MAX_READERS,
            });
        }
        f.readers.push(grantee.user);
    }
    f.key_wraps.retain(|w| w.recipient != grantee.x25519);
    f.key_wraps
        .push(wrap_key(&file_key, &grantee.x25519, &mut rand::rng())?);
    // A paged file's pages carry the readers too (nodes serve a page's
    // chunks to the readers its own manifest lists): each gets a new
    // version first, then the root.
    let view = pages::load(session, rec.clone(), name).await?;
    f.version = view
        .pages
        .iter()
        .map(|p| p.record.next_version())
        .max()
        .unwrap_or(1);
    let readers = f.readers.len();
    let new_pages = pages::reissue(key, &view, f.version, &f.readers)?;
    let mut page_records = Vec::new();
    for (p, m) in view.pages[1..].iter().zip(new_pages) {
        let mut r = p.record.clone();
        r.add_manifest(m)?;
        page_records.push(r);
    }
    pages::put_records(session, page_records).await?;
    let m = Manifest::new(key, f)?;
    commit_manifest(session, key, name, &mut rec, m.clone()).await?;
    let mut pointer = FileState::live(name, &m);
    pointer.handle = Some(rec.name().to_string());
    folders::record_shared(session, key, grantee, pointer).await?;
    info!(name, grantee = %grantee.user, version = m.version, "file shared");
    Ok(ShareReport {
        version: m.version,
        already: false,
        readers,
    })
}

/// Write a new manifest version into the record and the file's folder.
async fn commit_manifest(
    session: &Session,
    key: &UserKey,
    name: &str,
    rec: &mut FileRecord,
    m: Manifest,
) -> Result<(), ShareError> {
    rec.add_manifest(m.clone())?;
    records::put_file_record(session, rec).await?;
    folders::record_file(session, key, FileState::live(name, &m)).await?;
    Ok(())
}

/// Take `revoked`'s access to `key`'s file `name` away: re-key, re-put,
/// and free the old chunks. The other readers keep access.
pub async fn revoke(
    session: &Session,
    key: &UserKey,
    name: &str,
    revoked: &UserPublic,
    opts: RevokeOptions,
) -> Result<RevokeReport, ShareError> {
    if revoked.user == key.user_id() || revoked.x25519 == key.x25519_public() {
        return Err(ShareError::OwnKey);
    }
    let (old_root, m) = live(session, key, name).await?;
    let old = pages::load(session, old_root, name).await?;
    if !m.readers.contains(&revoked.user) && m.wrap_for(&revoked.x25519).is_none() {
        return Err(ShareError::NotShared {
            name: name.to_string(),
            user: revoked.user.to_hex(),
        });
    }
    // Fail before reading anything if the file key does not open.
    file_key(key, name, &m)?;
    let own_x = key.x25519_public();
    let mut put_opts = PutOptions::new(name);
    put_opts.replicas = opts.replicas.max(1);
    put_opts.size_hint = Some(m.size);
    put_opts.codec = CodecParams::with_segment_size(m.segment_size as usize);
    put_opts.progress = opts.progress;
    put_opts.readers = m
        .readers
        .iter()
        .filter(|u| **u != revoked.user)
        .copied()
        .collect();
    put_opts.reader_keys = m
        .key_wraps
        .iter()
        .map(|w| w.recipient)
        .filter(|x| *x != own_x && *x != revoked.x25519)
        .collect();
    let readers = put_opts.readers.len();

    // The old version streams through a pipe into the new put: memory stays
    // bounded, and the put refuses to commit unless every byte arrived.
    let (reader, writer) = io::pipe().map_err(ShareError::Pipe)?;
    let read_old = async {
        let r = get(session, key, name, writer, GetOptions::default()).await;
        // Dropping the writer ends the put's input.
        r.map(|(report, w)| {
            drop(w);
            report
        })
    };
    let input = Exact {
        inner: reader,
        left: m.size,
    };
    let write_new = put(session, key, input, put_opts);
    let (got, put) = tokio::join!(read_old, write_new);
    // A put that failed is the cause when both failed (the get then only
    // saw its output close).
    let put = put?;
    got?;

    let mut gone = FileState::live(name, &m);
    gone.deleted = true;
    folders::record_shared(session, key, revoked, gone).await?;
    // Free the old version's chunks, record by record (root and pages):
    // each holder is shown the owner's delete of that record's old version.
    let now = now_ms();
    let (mut old_chunks, mut holders, mut confirmed) = (0, 0, 0);
    for p in &old.pages {
        let ids: Vec<ChunkId> = p
            .manifest
            .chunks
            .iter()
            .map(|c| c.id)
            .filter(|c| put.chunks.iter().all(|n| n.id != *c))
            .collect();
        let del = FileDelete::new(key, p.record.name().to_string(), m.version, now);
        let (h, c) = forget_on_holders(session, &p.record, &del, &ids).await?;
        (old_chunks, holders, confirmed) = (old_chunks + ids.len(), holders + h, confirmed + c);
    }
    info!(
        name,
        revoked = %revoked.user,
        version = put.version,
        holders,
        confirmed,
        "access revoked: file re-keyed"
    );
    Ok(RevokeReport {
        put,
        old_chunks,
        holders,
        confirmed,
        readers,
    })
}

/// A reader that must yield exactly `left` more bytes: an early end (the
/// old version could not be read in full) is an error, so the put of the
/// re-keyed copy fails instead of committing a truncated file.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the old version ended {} bytes early", self.left),
            ));
        }
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the old version is longer than its manifest says",
            )
        })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_reader_refuses_a_short_or_long_input() {
        let mut buf = Vec::new();
        let mut ok = Exact {
            inner: &b"hello"[..],
            left: 5,
        };
        assert_eq!(ok.read_to_end(&mut buf).unwrap(), 5);

        let mut short = Exact {
            inner: &b"hell"[..],
            left: 5,
        };
        let e = short.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);

        let mut long = Exact {
            inner: &b"hello!"[..],
            left: 5,
        };
        let e = long.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
