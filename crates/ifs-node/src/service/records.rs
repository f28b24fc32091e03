//! DHT records (the FAT): every inbound or client-submitted record is
//! validated (every signature) and merged with the local copy, never blindly
//! overwritten; merged records persist in the local table and are
//! republished.

use ifs_core::crdt::Crdt;
use ifs_core::dir_record::DirRecord;
use ifs_core::file_record::FileRecord;
use ifs_core::folder_record::FolderRecord;
use ifs_core::proto::{CtlError, RecordKey};
use ifs_net::PeerId;
use ifs_store::MetaTable;
use tracing::{debug, info, warn};

use super::Shared;

/// Local copies whose validation is remembered (see `Shared::record_merge`);
/// past this many the memory is dropped and copies are verified afresh.
const VALIDATED_KEPT: usize = 4096;

/// A validated record of any kind.
enum Record {
    File(Box<FileRecord>),
    Dir(DirRecord),
    Folder(FolderRecord),
}

impl Record {
    /// Decode and validate `value` as the record `key` names, beside
    /// `known`, the local copy (validated when it was stored): a folder
    /// entry the local copy holds as it is is not verified again.
    fn parse_against(key: &[u8], value: &[u8], known: Option<&Record>) -> Result<Record, String> {
        Self::parse_with(key, value, known, false)
    }

    /// [`Record::parse_against`]; with `validated` (a folder record's local
    /// copy whose bytes this node validated before), its entries'
    /// signatures are not checked again, everything else is.
    fn parse_with(
        key: &[u8],
        value: &[u8],
        known: Option<&Record>,
        validated: bool,
    ) -> Result<Record, String> {
        match RecordKey::from_bytes(key) {
            Some(RecordKey::File(k)) => {
                let r = FileRecord::decode(value).map_err(|e| e.to_string())?;
                if r.record_key() != k {
                    return Err("file record stored under a key that is not its own".into());
                }
                Ok(Record::File(Box::new(r)))
            }
            Some(RecordKey::Dir(owner)) => {
                let r = DirRecord::decode(value).map_err(|e| e.to_string())?;
                if *r.owner() != owner {
                    return Err("directory record stored under another owner's key".into());
                }
                Ok(Record::Dir(r))
            }
            Some(RecordKey::Folder(locator)) => {
                let r = match known {
                    _ if validated => FolderRecord::decode_validated(value),
                    Some(Record::Folder(k)) => FolderRecord::decode_against(value, k),
                    _ => FolderRecord::decode(value),
                }
                .map_err(|e| e.to_string())?;
                if *r.locator() != locator {
                    return Err("folder record stored under a key that is not its own".into());
                }
                Ok(Record::Folder(r))
            }
            None => Err("not an IFS record key".into()),
        }
    }

    fn merge(&mut self, other: &Record) {
        match (self, other) {
            (Record::File(a), Record::File(b)) => a.merge(&**b),
            (Record::Dir(a), Record::Dir(b)) => a.merge(b),
            (Record::Folder(a), Record::Folder(b)) => a.merge(b),
            // Both were parsed under the same key, so kinds always match.
            _ => {}
        }
    }

    /// Caps a merge of two valid copies may still pass.
    fn check_limits(&self, encoded_len: usize) -> Result<(), String> {
        let max = match self {
            Record::File(r) => {
                r.check_caps()
                    .map_err(|e| format!("merged record refused: {e}"))?;
                FileRecord::MAX_BYTES
            }
            Record::Dir(_) => DirRecord::MAX_BYTES,
            Record::Folder(r) => {
                r.check_caps()
                    .map_err(|e| format!("merged record refused: {e}"))?;
                FolderRecord::MAX_BYTES
            }
        };
        if encoded_len > max {
            return Err(format!(
                "merged record refused: {encoded_len} bytes exceeds the limit of {max}"
            ));
        }
        Ok(())
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Record::File(r) => r.encode(),
            Record::Dir(r) => r.encode(),
            Record::Folder(r) => r.encode(),
        }
    }

    /// Drop what has outlived its keep time (a folder's old deletion
    /// markers), so every copy forgets them, not only the owner's.
    fn compact(&mut self, now_ms: u64) {
        if let Record::Folder(r) = self {
            r.compact(now_ms);
        }
    }
}

impl Shared {
    /// Merge `value` into the local copy of `key`; returns the merged bytes
    /// and whether they changed.
    async fn merge_local(&self, key: &[u8], value: &[u8]) -> Result<(Vec<u8>, bool), String> {
        let mut validated = self.record_merge.lock().await;
        if validated.len() > VALIDATED_KEPT {
            validated.clear();
        }
        let local = self
            .store
            .meta_get(MetaTable::Records, key.to_vec())
            .await
            .map_err(|e| e.to_string())?;
        let before = local.clone();
        let mut mine = None;
        if let Some(bytes) = local {
            let known_good = validated.get(key) == Some(blake3::hash(&bytes).as_bytes());
            match Record::parse_with(key, &bytes, None, known_good) {
                Ok(r) => mine = Some(r),
                Err(e) => {
                    // Kept aside, never silently lost: an operator (or a
                    // later version that reads it) can still recover it.
                    warn!("setting aside an unreadable local record: {e}");
                    let mut aside = b"unreadable/".to_vec();
                    aside.extend_from_slice(key);
                    self.store
                        .meta_put(MetaTable::Records, aside, bytes)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        let mut incoming = Record::parse_against(key, value, mine.as_ref())?;
        if let Some(mine) = &mine {
            incoming.merge(mine);
        }
        incoming.compact(crate::now_ms());
        let merged = incoming.encode();
        // The merge of two valid copies may still pass a cap (receipts per
        // chunk, total size): then the local copy stays as it is.
        incoming.check_limits(merged.len())?;
        let changed = before.as_deref() != Some(merged.as_slice());
        validated.insert(key.to_vec(), *blake3::hash(&merged).as_bytes());
        if changed {
            self.store
                .meta_put(MetaTable::Records, key.to_vec(), merged.clone())
                .await
                .map_err(|e| e.to_string())?;
            if let Err(e) = self.net.store_local(key.to_vec(), merged.clone()).await {
                warn!("cannot hand a merged record to the DHT: {e}");
            }
        }
        Ok((merged, changed))
    }

    /// A record a peer asked us to store (Kademlia, filtered).
    pub async fn on_inbound_record(&self, peer: Option<PeerId>, key: Vec<u8>, value: Vec<u8>) {
        let merged = self.merge_local(&key, &value).await;
        self.telemetry.record_merge(&merged);
        match merged {
            Ok((_, changed)) => debug!(?peer, changed, "merged inbound record"),
            Err(e) => warn!(?peer, "rejected inbound record: {e}"),
        }
    }

    /// Every copy of a record in the DHT, validated and merged (invalid
    /// copies are dropped and logged).
    pub async fn get_record(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, CtlError> {
        if RecordKey::from_bytes(&key).is_none() {
            return Err(CtlError::Invalid("not an IFS record key".into()));
        }
        let found = match self.net.get_records(key.clone()).await {
            Ok(f) => f,
            Err(e) => {
                debug!("DHT lookup found nothing: {e}");
                Vec::new()
            }
        };
        for (peer, value) in found {
            if let Err(e) = self.merge_local(&key, &value).await {
                warn!(?peer, "dropped an invalid copy of a record: {e}");
            }
        }
        self.store
            .meta_get(MetaTable::Records, key)
            .await
            .map_err(|e| CtlError::Internal(e.to_string()))
    }

    /// A client's new or updated record: validate, merge, publish.
    pub async fn put_record(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), CtlError> {
        let merged = self.merge_local(&key, &value).await;
        self.telemetry.record_merge(&merged);
        let (merged, _) = merged.map_err(CtlError::Invalid)?;
        if let Err(e) = self.net.put_record(key, merged).await {
            warn!("record stored locally but not replicated yet: {e}");
        }
        Ok(())
    }

    /// Put every record this node holds back into the DHT.
    pub async fn republish_records(&self) {
        let records = match self.store.meta_list(MetaTable::Records, Vec::new()).await {
            Ok(r) => r,
            Err(e) => {
                warn!("cannot list records to republish: {e}");
                return;
            }
        };
        let records: Vec<_> = records
            .into_iter()
            .filter(|(k, _)| RecordKey::from_bytes(k).is_some())
            .collect();
        let n = records.len();
        for (key, value) in records {
            if let Err(e) = self.net.put_record(key, value).await {
                debug!("republish failed: {e}");
            }
        }
        if n > 0 {
            info!(records = n, "republished records");
        }
    }

    /// Load persisted records into the DHT's local store at start.
    pub async fn restore_records(&self) {
        let Ok(records) = self.store.meta_list(MetaTable::Records, Vec::new()).await else {
            return;
        };
        for (key, value) in records {
            if RecordKey::from_bytes(&key).is_none() {
                continue; // set aside, not a record to serve
            }
            if let Err(e) = self.net.store_local(key, value).await {
                warn!("cannot restore a record: {e}");
            }
        }
    }
}
