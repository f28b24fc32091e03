//! Small files packed together: a tree's small files travel as a few pack
//! files instead of one file each.
//!
//! A pack is an ordinary file of the owner's (its own manifest, chunks,
//! receipts, repair and audits), named `PACKS/<random id>` so no user path
//! can collide with it, cut into short segments ([`PACK_SEGMENT`]) so that
//! reading one small file fetches little more than the file. Each packed
//! file's folder entry carries a [`PackSlice`]: the pack's handle and
//! version and where the file's bytes start. A pack is listed in a folder
//! record of its own (the folder key `root / PACKS`, which no folder entry
//! links to, so `ls` never shows it), which is how [`gc`] finds packs no
//! live entry uses any more.
//!
//! What this saves per small file: its own record (two DHT reads and a
//! write), its own chunk chain and receipts, and the probing and
//! reservations a put pays; what is left per file is its folder entry,
//! written with the others of its folder ([`crate::folder_batch`]).

use std::collections::{HashMap, HashSet};
use std::io::Read;

use ifs_core::folder_record::{ChildKind, PackSlice};
use ifs_core::keys::UserKey;
use ifs_core::wire::Manifest;
use tracing::{info, warn};

use crate::catalog::retire;
use crate::error::{GetError, PutError};
use crate::folder_batch::{FolderBatch, ensure_folders};
use crate::folders::{self, Seen, own_entry};
use crate::put::{PutOptions, now_ms, upload};
use crate::records;
use crate::session::Session;

/// The folder segment packs are named under: a NUL byte, which no user
/// path may hold (`validate_name`), so packs never meet user files.
pub const PACKS: &str = "\0packs";
/// Files up to this size are packed by a tree put.
pub const PACK_SMALL: u64 = 512 << 10;
/// Plaintext bytes a pack is filled to before it is sent.
pub const PACK_TARGET: u64 = 16 << 20;
/// A pack's segment size: reading one packed file fetches at most two
/// chunks of this size.
pub const PACK_SEGMENT: usize = 1 << 20;
/// A pack's chunks travelling at once (short chunks: more of them).
const PACK_CHUNKS_IN_FLIGHT: usize = 8;
/// How long an unused pack is kept: a tree put may have sent the pack but
/// not yet written its files' entries.
pub const PACK_GRACE_MS: u64 = 3600 * 1000;

/// The name a new pack is put under.
pub fn new_pack_name() -> String {
    let id: [u8; 16] = rand::random();
    format!("{PACKS}/{}", hex::encode(id))
}

/// One file of a pack being filled.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its path in the owner's namespace.
    pub name: String,
    /// Where its bytes start in the pack.
    pub offset: u64,
    /// Its size.
    pub len: u64,
    /// BLAKE3 of its bytes.
    pub hash: [u8; 32],
}

/// A pack being filled: the files' bytes back to back.
#[derive(Debug, Default)]
pub struct PackBuilder {
    buf: Vec<u8>,
    members: Vec<Member>,
}

impl PackBuilder {
    /// Add `name` with the bytes `data`.
    pub fn add(&mut self, name: &str, data: &[u8]) {
        self.members.push(Member {
            name: name.to_string(),
            offset: self.buf.len() as u64,
            len: data.len() as u64,
            hash: *blake3::hash(data).as_bytes(),
        });
        self.buf.extend_from_slice(data);
    }

    /// Read the whole of `input` as `name`, at most `limit` bytes (a file
    /// that grew past what a pack takes is refused, not cut).
    pub fn add_from(&mut self, name: &str, input: impl Read, limit: u64) -> std::io::Result<()> {
        let start = self.buf.len();
        let read = input.take(limit + 1).read_to_end(&mut self.buf);
        let len = (self.buf.len() - start) as u64;
        if read.is_err() || len > limit {
            self.buf.truncate(start);
            return read.and(Err(std::io::Error::other(format!(
                "grew past {limit} bytes while being read"
            ))));
        }
        self.members.push(Member {
            name: name.to_string(),
            offset: start as u64,
            len,
            hash: *blake3::hash(&self.buf[start..]).as_bytes(),
        });
        Ok(())
    }

    /// Plaintext bytes so far.
    pub fn len(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Whether no file was added.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The files added, in order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }
}

/// A committed pack: its manifest (under its handle) and each member's
/// slice.
#[derive(Clone, Debug)]
pub struct SentPack {
    /// The pack's name (`PACKS/<id>`).
    pub name: String,
    /// Its committed manifest.
    pub manifest: Manifest,
    /// Every member with its slice, in order.
    pub slices: Vec<(String, PackSlice)>,
}

/// Encode `pack` as one file, place it through `placer` and write its
/// record. Its members' folder entries, and the pack's own entry in the
/// pack folder, are the caller's to write.
pub(crate) async fn send_pack(
    session: &Session,
    key: &UserKey,
    pack: PackBuilder,
    template: &PutOptions,
    placer: &crate::place::Placer<'_>,
) -> Result<SentPack, PutError> {
    let name = new_pack_name();
    let mut opts = template.clone();
    opts.name = name.clone();
    opts.size_hint = Some(pack.len());
    opts.codec.segment_size = PACK_SEGMENT;
    opts.in_flight = PACK_CHUNKS_IN_FLIGHT;
    opts.readers = Vec::new();
    opts.reader_keys = Vec::new();
    let PackBuilder { buf, members } = pack;
    let (_, manifest) = upload(session, key, std::io::Cursor::new(buf), &opts, placer).await?;
    let handle = key.file_handle(&name);
    let slices = members
        .into_iter()
        .map(|m| {
            let slice = PackSlice {
                handle: handle.clone(),
                version: manifest.version,
                offset: m.offset,
                len: m.len,
                hash: m.hash,
            };
            (m.name, slice)
        })
        .collect();
    info!(pack = %handle, size = manifest.size, "pack committed");
    Ok(SentPack {
        name,
        manifest,
        slices,
    })
}

/// The pack slice of `key`'s own file `name` and its entry's version;
/// `None` unless its folder entry is live and packed.
pub(crate) async fn packed_slice(
    session: &Session,
    key: &UserKey,
    name: &str,
) -> Result<Option<(PackSlice, u64)>, GetError> {
    Ok(match own_entry(session, key, name).await? {
        Some((version, false, Some(child))) => child.pack.map(|p| (p, version)),
        _ => None,
    })
}

/// The record of the pack `slice` names, checked to be live at the
/// version the slice was written into.
pub(crate) async fn pack_record(
    session: &Session,
    key: &UserKey,
    slice: &PackSlice,
    name: &str,
) -> Result<ifs_core::file_record::FileRecord, GetError> {
    let bad = |why: String| GetError::BadPack {
        name: name.to_string(),
        why,
    };
    let rec = records::get_file_record(session, &key.user_id(), &slice.handle)
        .await?
        .ok_or_else(|| bad("the pack's record is not found".into()))?;
    match rec.live_manifest() {
        Some(m) if m.version == slice.version => Ok(rec),
        Some(m) => Err(bad(format!(
            "the pack is at version {}, the file was written into {}",
            m.version, slice.version
        ))),
        None => Err(bad("the pack was deleted".into())),
    }
}

/// Give `key`'s packed file `from` a second name `to` (an entry naming
/// the same slice of the same pack: no byte is sent), and with `remove`
/// take the name `from` away (a move). `Ok(false)` when `from` is not a
/// packed file, for the caller to copy it byte by byte. A file `to` with a
/// record of its own is replaced and its record deleted.
pub async fn link_packed(
    session: &Session,
    key: &UserKey,
    from: &str,
    to: &str,
    remove: bool,
) -> Result<bool, GetError> {
    let Some((slice, version)) = packed_slice(session, key, from).await? else {
        return Ok(false);
    };
    let mut batch = FolderBatch::default();
    batch.add_packed(to, slice);
    ensure_folders(session, key, &batch.folders()).await?;
    let flushed = batch.flush(session, key).await;
    if let Some((_, e)) = flushed.failed.into_iter().next() {
        return Err(e);
    }
    for (name, e) in retire_superseded(session, key, &flushed.superseded).await {
        warn!(name = %name, "replaced, but its old record not deleted: {e}");
    }
    if remove {
        batch.add_deleted(from, version);
        if let Some((_, e)) = batch.flush(session, key).await.failed.into_iter().next() {
            return Err(e);
        }
    }
    Ok(true)
}

/// Delete the records of the files whose packed entries replaced them
/// (see [`crate::folder_batch::Superseded`]): otherwise `get`, which looks
/// for a file's own record first, would keep finding the older bytes.
/// The files whose record could not be deleted, with why.
pub(crate) async fn retire_superseded(
    session: &Session,
    key: &UserKey,
    superseded: &[crate::folder_batch::Superseded],
) -> Vec<(String, GetError)> {
    let mut failed = Vec::new();
    for s in superseded {
        match retire(session, key, &s.name).await {
            Ok(_) | Err(GetError::NotFound(_)) => {}
            Err(e) => failed.push((s.name.clone(), e)),
        }
    }
    failed
}

/// What [`gc`] found and did.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// Packs listed.
    pub packs: usize,
    /// Packs some live file still uses.
    pub used: usize,
    /// Plaintext bytes of live files in used packs.
    pub live_bytes: u64,
    /// Plaintext bytes of used packs that no live file uses (reclaimed
    /// only once every file of the pack is gone).
    pub dead_bytes: u64,
    /// Unused packs deleted (or, dry, that would be).
    pub deleted: usize,
    /// Their plaintext bytes.
    pub freed_bytes: u64,
    /// Unused packs kept because they are younger than asked.
    pub young: usize,
}

/// Delete the packs no live file of `key`'s uses any more and that were
/// written at least `min_age_ms` ago ([`PACK_GRACE_MS`] unless a test
/// says otherwise), telling their holders to free the chunks; with
/// `dry_run` only count them. Refuses to delete anything when a folder a
/// listing reaches has no record: its files might use any pack.
pub async fn gc(
    session: &Session,
    key: &UserKey,
    min_age_ms: u64,
    dry_run: bool,
) -> Result<GcReport, GetError> {
    let mut seen = Seen::new();
    let packs = folders::list(session, key, PACKS, false, &mut seen).await?;
    let mut report = GcReport {
        packs: packs.len(),
        ..GcReport::default()
    };
    if packs.is_empty() {
        return Ok(report);
    }
    let mut seen = Seen::new();
    let files = folders::list(session, key, "", true, &mut seen).await?;
    if seen.values().any(Option::is_none) {
        return Err(GetError::Folder(
            "a folder's record was not found, so its files' packs are unknown: nothing deleted"
                .into(),
        ));
    }
    let mut live: HashMap<(String, u64), u64> = HashMap::new();
    for f in files.iter().filter(|f| f.child.kind == ChildKind::File) {
        if let Some(p) = &f.child.pack {
            *live.entry((p.handle.clone(), p.version)).or_default() += p.len;
        }
    }
    let now = now_ms();
    let mut gone = HashSet::new();
    for p in packs.iter().filter(|p| p.child.kind == ChildKind::File) {
        let handle = key.file_handle(&p.name);
        if let Some(bytes) = live.get(&(handle.clone(), p.version)) {
            report.used += 1;
            report.live_bytes += bytes;
            report.dead_bytes += p.child.size.saturating_sub(*bytes);
            continue;
        }
        if now.saturating_sub(p.at_ms) < min_age_ms {
            report.young += 1;
            continue;
        }
        report.deleted += 1;
        report.freed_bytes += p.child.size;
        if dry_run {
            continue;
        }
        match retire(session, key, &p.name).await {
            Ok(_) | Err(GetError::NotFound(_)) => {
                gone.insert(p.name.clone());
            }
            Err(e) => warn!(pack = %handle, "pack not deleted: {e}"),
        }
    }
    if !gone.is_empty() {
        let mut batch = FolderBatch::default();
        for p in packs.iter().filter(|p| gone.contains(&p.name)) {
            batch.add_deleted(&p.name, p.version);
        }
        for (name, e) in batch.flush(session, key).await.failed {
            warn!(pack = %name, "pack deleted, its listing entry not: {e}");
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_holds_its_files_back_to_back() {
        let mut p = PackBuilder::default();
        p.add("a", b"hello");
        p.add_from("b", &b"world!"[..], 6).unwrap();
        p.add("c", b"");
        assert_eq!(p.len(), 11);
        let m = p.members();
        assert_eq!((m[0].offset, m[0].len), (0, 5));
        assert_eq!((m[1].offset, m[1].len), (5, 6));
        assert_eq!((m[2].offset, m[2].len), (11, 0));
        assert_eq!(&p.buf[5..11], b"world!");
    }

    #[test]
    fn a_file_that_grew_past_the_limit_is_refused_and_leaves_nothing() {
        let mut p = PackBuilder::default();
        p.add("a", b"xy");
        assert!(p.add_from("b", &b"too long"[..], 4).is_err());
        assert_eq!(p.len(), 2);
        assert_eq!(p.members().len(), 1);
    }

    #[test]
    fn pack_names_cannot_be_user_paths() {
        let n = new_pack_name();
        assert!(ifs_core::name::validate_name(&n).is_err());
        assert_ne!(n, new_pack_name());
    }
}
