//! Reading and writing the FAT's records through the entry node: a file's
//! record and the owner's legacy directory record (folder records are in
//! `folders`). Everything read is verified.

use ifs_core::UserId;
use ifs_core::dir_record::DirRecord;
use ifs_core::file_record::FileRecord;
use ifs_core::keys::{UserKey, UserPublic};
use ifs_core::proto::{CtlRequest, CtlResponse, RecordKey};

use crate::error::{ClientError, GetError};
use crate::folders;
use crate::session::Session;

/// The DHT key of `owner`'s file `name`.
pub fn file_key(owner: &UserId, name: &str) -> Vec<u8> {
    RecordKey::File(FileRecord::key(owner, name)).to_bytes()
}

/// The DHT key of `owner`'s directory record.
pub fn dir_key(owner: &UserId) -> Vec<u8> {
    RecordKey::Dir(*owner).to_bytes()
}

pub(crate) async fn get_raw(
    session: &Session,
    key: Vec<u8>,
) -> Result<Option<Vec<u8>>, ClientError> {
    match session.request(&CtlRequest::GetRecord { key }).await? {
        CtlResponse::Record(v) => Ok(v),
        other => Err(ClientError::Unexpected {
            peer: session.entry().to_string(),
            what: format!("{other:?}"),
        }),
    }
}

pub(crate) async fn put_raw(
    session: &Session,
    key: Vec<u8>,
    value: Vec<u8>,
) -> Result<(), ClientError> {
    match session
        .request(&CtlRequest::PutRecord { key, value })
        .await?
    {
        CtlResponse::Done => Ok(()),
        other => Err(ClientError::Unexpected {
            peer: session.entry().to_string(),
            what: format!("{other:?}"),
        }),
    }
}

/// Check a record's bytes: every signature verifies (owner's manifest and
/// tombstones, holders' receipts) and it is `owner`'s record of `name`.
pub fn verify_file_record(
    bytes: &[u8],
    owner: &UserId,
    name: &str,
) -> Result<FileRecord, GetError> {
    let rec = FileRecord::decode(bytes).map_err(|source| GetError::BadRecord {
        name: name.to_string(),
        source,
    })?;
    if rec.owner() != owner || rec.name() != name {
        return Err(GetError::ForeignRecord(name.to_string()));
    }
    Ok(rec)
}

/// `owner`'s record of `name`, verified; `None` when there is none.
pub async fn get_file_record(
    session: &Session,
    owner: &UserId,
    name: &str,
) -> Result<Option<FileRecord>, GetError> {
    match get_raw(session, file_key(owner, name)).await? {
        Some(bytes) => verify_file_record(&bytes, owner, name).map(Some),
        None => Ok(None),
    }
}

/// `key`'s own record of the file at `path`: under the path's handle (see
/// `UserKey::file_handle`), else under the path itself, where files put
/// before names were private keep theirs. Errors name the path.
pub async fn get_own_file_record(
    session: &Session,
    key: &UserKey,
    path: &str,
) -> Result<Option<FileRecord>, GetError> {
    let owner = key.user_id();
    let found = match get_file_record(session, &owner, &key.file_handle(path)).await {
        Ok(None) => get_file_record(session, &owner, path).await,
        other => other,
    };
    found.map_err(|e| match e {
        GetError::BadRecord { source, .. } => GetError::BadRecord {
            name: path.to_string(),
            source,
        },
        GetError::ForeignRecord(_) => GetError::ForeignRecord(path.to_string()),
        other => other,
    })
}

/// The live record of `owner`'s file at `path` as `key` reads it: its own
/// file when `owner` is `None` or `key` itself; else the file the owner
/// shared with `key`, whose handle the owner left in the folders only the
/// two of them can read.
pub async fn find_file(
    session: &Session,
    key: &UserKey,
    owner: Option<&UserPublic>,
    path: &str,
) -> Result<FileRecord, GetError> {
    let not_found = || GetError::NotFound(path.to_string());
    match owner.filter(|o| o.user != key.user_id()) {
        None => get_own_file_record(session, key, path)
            .await?
            .ok_or_else(not_found),
        Some(o) => {
            let handle = folders::shared_handle(session, key, o, path)
                .await?
                .ok_or_else(|| GetError::NotShared {
                    name: path.to_string(),
                    owner: o.user.to_hex(),
                })?;
            get_file_record(session, &o.user, &handle)
                .await
                .map_err(|e| match e {
                    GetError::BadRecord { source, .. } => GetError::BadRecord {
                        name: path.to_string(),
                        source,
                    },
                    GetError::ForeignRecord(_) => GetError::ForeignRecord(path.to_string()),
                    other => other,
                })?
                .ok_or_else(not_found)
        }
    }
}

/// Hand a file record to the entry node (it validates, merges, publishes).
pub async fn put_file_record(session: &Session, rec: &FileRecord) -> Result<(), ClientError> {
    put_raw(session, file_key(rec.owner(), rec.name()), rec.encode()).await
}

/// `owner`'s directory record, verified; empty when there is none.
pub async fn get_dir_record(session: &Session, owner: &UserId) -> Result<DirRecord, GetError> {
    match get_raw(session, dir_key(owner)).await? {
        Some(bytes) => {
            let rec = DirRecord::decode(&bytes).map_err(|source| GetError::BadRecord {
                name: "(directory)".into(),
                source,
            })?;
            if rec.owner() != owner {
                return Err(GetError::ForeignRecord("(directory)".into()));
            }
            Ok(rec)
        }
        None => Ok(DirRecord::new(*owner)),
    }
}

/// Hand a directory record to the entry node.
pub async fn put_dir_record(session: &Session, rec: &DirRecord) -> Result<(), ClientError> {
    put_raw(session, dir_key(rec.owner()), rec.encode()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ifs_core::codec::NoncePrefix;
    use ifs_core::keys::UserKey;
    use ifs_core::wire::{Manifest, ManifestFields};

    fn manifest(key: &UserKey, name: &str) -> Manifest {
        Manifest::new(
            key,
            ManifestFields {
                name: name.into(),
                version: 1,
                size: 0,
                created_at_ms: 1,
                segment_size: 8,
                nonce_prefix: NoncePrefix([0; 7]),
                chunks: vec![],
                key_wraps: vec![],
                readers: vec![],
                replicas: 3,
                pages: vec![],
            },
        )
        .unwrap()
    }

    #[test]
    fn a_record_with_a_bad_owner_signature_is_rejected() {
        let key = UserKey::generate(&mut rand::rng());
        let mut m = manifest(&key, "a");
        let good = FileRecord::from_manifest(m.clone(), vec![])
            .unwrap()
            .encode();
        assert!(verify_file_record(&good, &key.user_id(), "a").is_ok());
        // Same bytes with the size changed: the owner's signature no longer covers them.
        m.size = 99;
        let forged = forge(&key, m);
        assert!(matches!(
            verify_file_record(&forged, &key.user_id(), "a"),
            Err(GetError::BadRecord { .. })
        ));
    }

    #[test]
    fn a_record_of_another_owner_or_name_is_rejected() {
        let key = UserKey::generate(&mut rand::rng());
        let other = UserKey::generate(&mut rand::rng());
        let bytes = FileRecord::from_manifest(manifest(&key, "a"), vec![])
            .unwrap()
            .encode();
        assert!(matches!(
            verify_file_record(&bytes, &other.user_id(), "a"),
            Err(GetError::ForeignRecord(_))
        ));
        assert!(matches!(
            verify_file_record(&bytes, &key.user_id(), "b"),
            Err(GetError::ForeignRecord(_))
        ));
    }

    /// The encoding of a record carrying `m` as is (its signature unchecked).
    fn forge(key: &UserKey, m: Manifest) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Wire {
            owner: UserId,
            name: String,
            manifest: Option<Manifest>,
            delete: Option<()>,
            receipts: Vec<()>,
            releases: Vec<()>,
        }
        cbor4ii::serde::to_vec(
            Vec::new(),
            &Wire {
                owner: key.user_id(),
                name: m.name.clone(),
                manifest: Some(m),
                delete: None,
                receipts: vec![],
                releases: vec![],
            },
        )
        .unwrap()
    }
}
