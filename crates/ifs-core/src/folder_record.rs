//! Private per-folder records: what `ls` reads, one record per folder, with
//! names that only holders of the folder key can read.
//!
//! A name is a path (`photos/2024/a.jpg`); each folder on it has a 32-byte
//! [`FolderKey`]. The root's comes from the user's secret key
//! ([`UserKey::folder_root_key`]); a child folder's is a keyed BLAKE3 of its
//! parent's key and its name. A folder's record lives under its *locator*
//! (keyed BLAKE3 of the folder key), and each child has an opaque *slot*
//! (keyed BLAKE3 of the folder key and the child's name), so a node can
//! neither read a name nor test a guess. Each entry is owner-signed and
//! carries its child's name, kind, size, chunk count and readers sealed
//! with AES-256-GCM under a key derived from the folder key. Whoever holds
//! a folder key can list that folder and every folder below it.
//!
//! Per slot the record is a last-writer-wins map ranked like the directory
//! record: (version, deleted, content hash). Deletion markers older than
//! [`DELETE_GRACE_MS`] are dropped by [`FolderRecord::compact`], which the
//! owner runs before every write and nodes run after every merge.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use rand::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::crdt::{Crdt, RecordError, lww};
use crate::ids::UserId;
use crate::keys::{Sig, UserKey, domain, verify};
use crate::wire::{MAX_READERS, WireError, ensure, from_cbor, sig_err, to_cbor, wire_codec};

const WHAT: &str = "folder entry";

/// The newest folder record format this build writes and reads. Format 2
/// added the entry's [`FolderEntry::rev`] (dead properties on a child,
/// changed without a new version); a record none of whose entries has a
/// revision is still written as format 1, which builds that predate
/// format 2 read, and format-1 records already stored read as they are.
pub const FORMAT: u32 = 2;

/// The oldest folder record format this build reads.
pub const OLDEST_FORMAT: u32 = 1;

/// Most dead properties one child carries.
pub const MAX_PROPS: usize = 32;

/// Most bytes of dead properties (names, namespaces, prefixes and values
/// together) one child carries. The whole sealed child must still fit in
/// [`MAX_SEALED`].
pub const MAX_PROPS_BYTES: usize = 4096;

/// How long a deletion marker is kept: 30 days. A copy of a live entry
/// older than the marker that reaches a node within this window is beaten
/// by the marker; one that stays offline longer (a node back after a
/// month away) can bring the deleted name back into `ls`. The file record
/// keeps its own delete, so such a ghost cannot be read, and `rm` removes it
/// again.
pub const DELETE_GRACE_MS: u64 = 30 * 24 * 3600 * 1000;

/// Largest sealed child description: a name, up to [`MAX_READERS`] reader
/// ids, sizes, plus nonce and tag.
pub const MAX_SEALED: usize = 12 * 1024;

/// What a folder's child is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChildKind {
    /// A file: the entry mirrors its live manifest.
    File,
    /// A folder: its record lives under the child folder key's locator.
    Folder,
}

/// A folder's secret: derives the folder's locator, its children's slots,
/// its sealing key and its subfolders' keys. Never leaves the client.
#[derive(Clone, PartialEq, Eq)]
pub struct FolderKey([u8; 32]);

impl fmt::Debug for FolderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "FolderKey({}…)", &hex::encode(&self.locator()[..4]))
    }
}

impl FolderKey {
    /// The key from its 32 bytes (e.g. unwrapped from a share).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        FolderKey(bytes)
    }

    /// The 32 secret bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The user's root folder key.
    pub fn root(user: &UserKey) -> Self {
        FolderKey(user.folder_root_key())
    }

    /// The key of the folder of `path`'s parent segments, from the root:
    /// `a/b/c.txt` gives the key of `a/b`.
    pub fn of_parent(root: &FolderKey, path: &str) -> FolderKey {
        split_path(path)
            .0
            .iter()
            .fold(root.clone(), |k, seg| k.child(seg))
    }

    /// The key of the folder at `dirs` (segments) below `root`.
    pub fn of_dirs<'a>(root: &FolderKey, dirs: impl IntoIterator<Item = &'a str>) -> FolderKey {
        dirs.into_iter().fold(root.clone(), |k, seg| k.child(seg))
    }

    /// The key of the subfolder `name` (one segment).
    pub fn child(&self, name: &str) -> FolderKey {
        FolderKey(self.keyed(b"folder\0", name.as_bytes()))
    }

    /// Where this folder's record lives in the DHT.
    pub fn locator(&self) -> [u8; 32] {
        self.keyed(b"locator", &[])
    }

    /// The slot of child `name` of `kind`. A folder's slot hashes its name
    /// with a trailing `/`, which no file name segment has, so a file `a`
    /// and a folder `a/` never share a slot.
    pub fn slot(&self, name: &str, kind: ChildKind) -> [u8; 32] {
        match kind {
            ChildKind::File => self.keyed(b"slot\0", name.as_bytes()),
            ChildKind::Folder => self.keyed(b"slot\0", format!("{name}/").as_bytes()),
        }
    }

    fn seal_key(&self) -> [u8; 32] {
        self.keyed(b"seal", &[])
    }

    fn keyed(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(label);
        h.update(data);
        *h.finalize().as_bytes()
    }
}

/// `a/b/c.txt` → (`["a", "b"]`, `"c.txt"`).
pub fn split_path(path: &str) -> (Vec<&str>, &str) {
    let mut segs: Vec<&str> = path.split('/').collect();
    let leaf = segs.pop().unwrap_or("");
    (segs, leaf)
}

/// A child as its owner (or a holder of the folder key) reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    /// The child's name in its folder (one segment).
    pub name: String,
    /// File or folder.
    pub kind: ChildKind,
    /// Plaintext size in bytes (0 for a folder or a deletion).
    pub size: u64,
    /// Number of chunks (0 for a folder or a deletion).
    pub chunks: u64,
    /// Users besides the owner the file is shared with.
    pub readers: Vec<UserId>,
    /// The file's handle (see [`UserKey::file_handle`]), in the folders an
    /// owner shares with a reader, who cannot derive it; `None` in the
    /// owner's own folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Where the bytes of a small file are when they were packed with
    /// other small files into one pack file; `None` for a file with a
    /// record of its own. Entries written before packs lack the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<PackSlice>,
    /// Properties a client set on the child (WebDAV's dead properties),
    /// sealed like the name. Entries written before format 2 lack the field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<DeadProp>,
}

/// One property a client set on a file or folder and reads back as it
/// was set: WebDAV's dead property, keyed by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeadProp {
    /// The XML namespace URI (`None`: no namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The prefix the client used for the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The local name.
    pub name: String,
    /// The value, as the XML element the client sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml: Option<serde_bytes::ByteBuf>,
}

impl DeadProp {
    /// What the property counts against [`MAX_PROPS_BYTES`].
    pub fn weight(&self) -> usize {
        self.namespace.as_ref().map_or(0, String::len)
            + self.prefix.as_ref().map_or(0, String::len)
            + self.name.len()
            + self.xml.as_ref().map_or(0, |x| x.len())
    }
}

/// Whether `props` are within [`MAX_PROPS`] and [`MAX_PROPS_BYTES`] and
/// name each (namespace, name) once.
pub fn props_fit(props: &[DeadProp]) -> bool {
    let mut keys: Vec<(&Option<String>, &String)> =
        props.iter().map(|p| (&p.namespace, &p.name)).collect();
    keys.sort();
    keys.dedup();
    props.len() <= MAX_PROPS
        && keys.len() == props.len()
        && props.iter().map(DeadProp::weight).sum::<usize>() <= MAX_PROPS_BYTES
}

/// A packed file's bytes: `len` plaintext bytes at `offset` of version
/// `version` of the owner's pack file whose handle is `handle`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PackSlice {
    /// The pack file's handle (64 hex digits).
    pub handle: String,
    /// The pack's manifest version the slice was written into.
    pub version: u64,
    /// Where the file starts in the pack's plaintext.
    pub offset: u64,
    /// The file's size (equal to the child's `size`).
    pub len: u64,
    /// BLAKE3 of the file's bytes: checked by whole-file reads, and what
    /// a sync compares a local file with.
    #[serde(with = "serde_bytes")]
    pub hash: [u8; 32],
}

impl PackSlice {
    /// The byte range `[offset, offset + len)`, `None` when it overflows.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.len)
    }
}

impl Child {
    /// A subfolder entry named `name` (one segment).
    pub fn folder(name: impl Into<String>) -> Self {
        Child {
            name: name.into(),
            kind: ChildKind::Folder,
            size: 0,
            chunks: 0,
            readers: vec![],
            handle: None,
            pack: None,
            props: vec![],
        }
    }
}

/// Why a sealed entry cannot be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Not sealed under this folder's key, or altered.
    #[error("folder entry does not decrypt under this folder key")]
    Decrypt,
    /// Decrypted, but not a child description.
    #[error("folder entry holds no child description")]
    Malformed,
    /// The sealed name does not hash to the entry's slot.
    #[error("folder entry's name does not match its slot")]
    WrongSlot,
}

/// One child of a folder, signed by the owner.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FolderEntry {
    /// The owner; the signer.
    pub owner: UserId,
    /// The folder's locator: an entry cannot be moved to another folder.
    #[serde(with = "serde_bytes")]
    pub locator: [u8; 32],
    /// The child's opaque slot.
    #[serde(with = "serde_bytes")]
    pub slot: [u8; 32],
    /// The version this entry describes (a file's manifest version).
    pub version: u64,
    /// Whether the owner deleted the child at this version.
    pub deleted: bool,
    /// When written, ms since the Unix epoch (client's clock).
    pub updated_at_ms: u64,
    /// Revision of the child's properties at this version: a change of
    /// its dead properties alone is written as the same version with the
    /// next revision, which outranks the last. 0 (and absent from the
    /// encoding and the signed bytes) until a property is set, so entries
    /// written before format 2 keep their encoding and signature.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rev: u64,
    /// Nonce ‖ AES-256-GCM of the CBOR [`Child`].
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
    /// The owner's signature.
    pub sig: Sig,
}

wire_codec!(FolderEntry, WHAT, 16 * 1024);

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What [`FolderEntry::seal`] writes.
pub struct EntryFields {
    /// Version.
    pub version: u64,
    /// Deleted or live.
    pub deleted: bool,
    /// Client clock, ms.
    pub at_ms: u64,
    /// Properties revision ([`FolderEntry::rev`]); 0 for a new version.
    pub rev: u64,
}

impl FolderEntry {
    /// Seal `child` into `folder`'s record and sign it.
    pub fn seal(
        owner: &UserKey,
        folder: &FolderKey,
        child: &Child,
        f: EntryFields,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let locator = folder.locator();
        let slot = folder.slot(&child.name, child.kind);
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let aad = aad(&locator, &slot, f.version, f.deleted);
        let cipher = Aes256Gcm::new(&folder.seal_key().into());
        // Encryption into memory fails only on absurd lengths, which the
        // caps on names and readers rule out.
        let ct = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &to_cbor(child),
                    aad: &aad,
                },
            )
            .expect("AES-GCM of a bounded child description");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ct);
        let mut e = FolderEntry {
            owner: owner.user_id(),
            locator,
            slot,
            version: f.version,
            deleted: f.deleted,
            updated_at_ms: f.at_ms,
            rev: f.rev,
            sealed,
            sig: Sig([0; 64]),
        };
        e.sig = owner.sign(domain::FOLDER_ENTRY, &e.signed_bytes());
        e
    }

    /// Decrypt with `folder`'s key and check the name matches the slot.
    pub fn open(&self, folder: &FolderKey) -> Result<Child, OpenError> {
        if self.sealed.len() < 12 {
            return Err(OpenError::Decrypt);
        }
        let (nonce, ct) = self.sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| OpenError::Decrypt)?;
        let aad = aad(&self.locator, &self.slot, self.version, self.deleted);
        let plain = Aes256Gcm::new(&folder.seal_key().into())
            .decrypt(&nonce.into(), Payload { msg: ct, aad: &aad })
            .map_err(|_| OpenError::Decrypt)?;
        let child: Child =
            from_cbor(&plain, MAX_SEALED, "folder child").map_err(|_| OpenError::Malformed)?;
        if child.name.is_empty()
            || child.name.contains('/')
            || child.readers.len() > MAX_READERS
            || child.handle.as_ref().is_some_and(|h| h.len() > 64)
            || child.pack.as_ref().is_some_and(|p| {
                p.handle.len() > 64
                    || p.len != child.size
                    || p.end().is_none()
                    || child.kind != ChildKind::File
            })
            || folder.slot(&child.name, child.kind) != self.slot
        {
            return Err(OpenError::WrongSlot);
        }
        if !props_fit(&child.props) {
            return Err(OpenError::Malformed);
        }
        Ok(child)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let fields = (
            &self.owner,
            &self.locator,
            &self.slot,
            self.version,
            self.deleted,
            self.updated_at_ms,
            serde_bytes::Bytes::new(&self.sealed),
        );
        if self.rev == 0 {
            // Format 1's signed bytes, unchanged.
            to_cbor(&fields)
        } else {
            to_cbor(&(fields, self.rev))
        }
    }

    /// Check structure and the owner's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.check()?;
        verify(
            self.owner.as_bytes(),
            domain::FOLDER_ENTRY,
            &self.signed_bytes(),
            &self.sig,
        )
        .map_err(sig_err(WHAT))
    }

    fn check(&self) -> Result<(), WireError> {
        ensure(
            self.sealed.len() >= 12 + 16 && self.sealed.len() <= MAX_SEALED,
            WHAT,
            "sealed child of a bad length",
        )
    }
}

fn aad(locator: &[u8; 32], slot: &[u8; 32], version: u64, deleted: bool) -> Vec<u8> {
    to_cbor(&(
        serde_bytes::Bytes::new(locator),
        serde_bytes::Bytes::new(slot),
        version,
        deleted,
    ))
}

/// Higher version wins; at equal versions a delete beats the live entry it
/// deletes, and then the higher properties revision wins; then the content
/// hash, so merges commute.
fn rank(e: &FolderEntry) -> (u64, bool, u64, [u8; 32]) {
    (
        e.version,
        e.deleted,
        e.rev,
        *blake3::hash(&e.encode()).as_bytes(),
    )
}

/// One folder: the newest signed entry per slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderRecord {
    owner: UserId,
    locator: [u8; 32],
    entries: BTreeMap<[u8; 32], FolderEntry>,
}

#[derive(Serialize, Deserialize)]
struct FolderRecordWire {
    format: u32,
    owner: UserId,
    #[serde(with = "serde_bytes")]
    locator: [u8; 32],
    entries: Vec<FolderEntry>,
}

impl FolderRecord {
    /// Largest accepted encoding, in bytes: what one DHT record carries.
    pub const MAX_BYTES: usize = 2 << 20;
    /// Most entries (children and deletion markers) one folder holds.
    pub const MAX_ENTRIES: usize = 8192;

    /// An empty folder of `owner` at `locator`.
    pub fn new(owner: UserId, locator: [u8; 32]) -> Self {
        FolderRecord {
            owner,
            locator,
            entries: BTreeMap::new(),
        }
    }

    /// The owner.
    pub fn owner(&self) -> &UserId {
        &self.owner
    }

    /// Where the record lives (its DHT key body).
    pub fn locator(&self) -> &[u8; 32] {
        &self.locator
    }

    /// Verify `entry` and keep it if it is the newest for its slot.
    pub fn insert(&mut self, entry: FolderEntry) -> Result<(), RecordError> {
        entry.verify()?;
        self.keep(entry)
    }

    /// Keep `entry`, which this process has just sealed with the owner's
    /// key (so its signature is known good), if it is the newest for its
    /// slot: [`Self::insert`] without checking the signature again. Owner,
    /// folder and caps are still checked.
    pub fn insert_sealed(&mut self, entry: FolderEntry) -> Result<(), RecordError> {
        entry.check()?;
        self.keep(entry)
    }

    fn keep(&mut self, entry: FolderEntry) -> Result<(), RecordError> {
        self.admit(&entry)?;
        if !self.entries.contains_key(&entry.slot) && self.entries.len() >= Self::MAX_ENTRIES {
            return Err(RecordError::OverLimit("too many entries in one folder"));
        }
        let mut slot = self.entries.remove(&entry.slot);
        let key = entry.slot;
        lww(&mut slot, Some(&entry), rank);
        if let Some(e) = slot {
            self.entries.insert(key, e);
        }
        Ok(())
    }

    fn admit(&self, e: &FolderEntry) -> Result<(), RecordError> {
        if e.owner != self.owner {
            return Err(RecordError::ForeignOwner { what: WHAT });
        }
        if e.locator != self.locator {
            return Err(RecordError::ForeignRecord { what: WHAT });
        }
        Ok(())
    }

    /// The entry in `slot`, deleted or not.
    pub fn get(&self, slot: &[u8; 32]) -> Option<&FolderEntry> {
        self.entries.get(slot)
    }

    /// Every entry, by slot, including deletion markers.
    pub fn entries(&self) -> impl Iterator<Item = &FolderEntry> {
        self.entries.values()
    }

    /// How many entries the record holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the record holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop deletion markers written more than [`DELETE_GRACE_MS`] before
    /// `now_ms`. Returns how many were dropped.
    pub fn compact(&mut self, now_ms: u64) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| !e.deleted || e.updated_at_ms.saturating_add(DELETE_GRACE_MS) > now_ms);
        before - self.entries.len()
    }

    /// Re-check every entry's signature, owner and folder, and the caps.
    pub fn validate(&self) -> Result<(), RecordError> {
        self.check_caps()?;
        for e in self.entries.values() {
            e.verify()?;
            self.admit(e)?;
        }
        Ok(())
    }

    /// The caps a merge of two valid copies may still pass.
    pub fn check_caps(&self) -> Result<(), RecordError> {
        if self.entries.len() > Self::MAX_ENTRIES {
            return Err(RecordError::OverLimit("too many entries in one folder"));
        }
        Ok(())
    }

    /// The encoding, for the DHT and for disk.
    pub fn encode(&self) -> Vec<u8> {
        // Format 1 while no entry needs format 2, so builds that read only
        // format 1 still read folders without properties.
        let format = if self.entries.values().any(|e| e.rev > 0) {
            FORMAT
        } else {
            OLDEST_FORMAT
        };
        to_cbor(&FolderRecordWire {
            format,
            owner: self.owner,
            locator: self.locator,
            entries: self.entries.values().cloned().collect(),
        })
    }

    /// Decode and verify every entry; refuses more than [`Self::MAX_BYTES`]
    /// before parsing, another format, and more than [`Self::MAX_ENTRIES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        Self::decode_checking(bytes, |_| true)
    }

    /// [`Self::decode`] for a copy arriving where `known` (a copy already
    /// verified here) is held: an entry equal to the one `known` holds in
    /// its slot was verified when `known` was, and is not verified again;
    /// every other entry is. A merge of a record with the copy it came
    /// from then costs what is new in it, not the whole folder.
    pub fn decode_against(bytes: &[u8], known: &FolderRecord) -> Result<Self, RecordError> {
        Self::decode_checking(bytes, |e| known.entries.get(&e.slot) != Some(e))
    }

    /// [`Self::decode`] of bytes this process verified before (a node's
    /// own copy, whose hash it remembers from the last time it checked or
    /// wrote it): structure, owner, folder and caps are checked, the
    /// entries' signatures are not.
    pub fn decode_validated(bytes: &[u8]) -> Result<Self, RecordError> {
        Self::decode_checking(bytes, |_| false)
    }

    fn decode_checking(
        bytes: &[u8],
        verify: impl Fn(&FolderEntry) -> bool,
    ) -> Result<Self, RecordError> {
        let w: FolderRecordWire = from_cbor(bytes, Self::MAX_BYTES, "folder record")?;
        if !(OLDEST_FORMAT..=FORMAT).contains(&w.format) {
            return Err(RecordError::Format {
                found: w.format,
                supported: FORMAT,
            });
        }
        if w.entries.len() > Self::MAX_ENTRIES {
            return Err(RecordError::OverLimit("too many entries in one folder"));
        }
        // The entries to check are checked together (one batch), and one
        // by one only when the batch fails, to name the bad entry.
        let check: Vec<&FolderEntry> = w.entries.iter().filter(|e| verify(e)).collect();
        if !check.is_empty() {
            let msgs: Vec<Vec<u8>> = check.iter().map(|e| e.signed_bytes()).collect();
            let sigs: Vec<Sig> = check.iter().map(|e| e.sig).collect();
            let batch =
                crate::keys::verify_all(w.owner.as_bytes(), domain::FOLDER_ENTRY, &msgs, &sigs);
            if batch.is_err() {
                for e in &check {
                    e.verify()?;
                }
            }
        }
        let mut rec = FolderRecord::new(w.owner, w.locator);
        for e in w.entries {
            rec.insert_sealed(e)?;
        }
        Ok(rec)
    }
}

impl Crdt for FolderRecord {
    /// Per slot, the higher-ranked entry. Another owner's or another
    /// folder's record is ignored. The entry cap is checked after a merge
    /// (see [`FolderRecord::check_caps`]), so merging stays a join.
    fn merge(&mut self, other: &Self) {
        if other.owner != self.owner || other.locator != self.locator {
            return;
        }
        for (slot, e) in &other.entries {
            let mut mine = self.entries.remove(slot);
            lww(&mut mine, Some(e), rank);
            if let Some(v) = mine {
                self.entries.insert(*slot, v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
