//! Sharing and revoking: a grantee reads, a stranger does not; a tampered
//! grant is refused; after a revoke the grantee can neither open the new
//! version nor fetch its chunks, while the owner and other readers still read.

use ifs_client::transfer::fetch_chunk;
use ifs_client::{
    FetchError, GetError, PlacedChunk, RevokeOptions, Session, records, revoke, share, table,
};
use ifs_core::UserId;
use ifs_core::file_record::FileRecord;
use ifs_core::keys::UserKey;
use ifs_core::proto::CtlError;
use ifs_core::wire::FetchRequest;

use crate::support::*;

async fn get_as(
    net: &Net,
    entry: usize,
    reader: &UserKey,
    owner: &UserKey,
    name: &str,
) -> Result<Vec<u8>, GetError> {
    let s = net.session(entry).await;
    let r = ifs_client::get_from(
        &s,
        reader,
        &owner.public(),
        name,
        Vec::new(),
        Default::default(),
    )
    .await
    .map(|(_, out)| out);
    s.close().await;
    r
}

/// Ask the first holder of `c` directly for it, signed by `who`, naming
/// `owner`'s `name` as the file that grants access.
async fn fetch_as(
    s: &Session,
    who: &UserKey,
    owner: &UserKey,
    name: &str,
    c: &PlacedChunk,
) -> Result<Vec<u8>, FetchError> {
    let _ = table::known_nodes(s).await.unwrap();
    let node = c.receipts[0].node;
    let req = FetchRequest::new(
        who,
        c.id,
        FileRecord::key(&owner.user_id(), &owner.file_handle(name)),
        node,
        now(),
        rand::random(),
    );
    let peer = ifs_net::node_id_to_peer_id(&node).unwrap();
    fetch_chunk(s.net(), peer, &req, &c.id, c.len, Vec::new())
        .await
        .map(ifs_core::CheckedChunk::into_bytes)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn denied(r: &Result<Vec<u8>, FetchError>) -> bool {
    matches!(r, Err(FetchError::Refused(CtlError::Denied(_))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn share_lets_a_reader_in_and_revoke_shuts_it_out() {
    let net = start(4, |_, _| {}).await;
    let (owner, reader, other, stranger) = (user_key(), user_key(), user_key(), user_key());
    let data = random_bytes(700 << 10);
    let put = put_file(&net, 0, &owner, "shared.bin", &data, 2).await;
    let first = &put.chunks[0];

    // Not shared yet: no wrap for the reader, and no node serves it.
    assert!(matches!(
        get_as(&net, 3, &reader, &owner, "shared.bin").await,
        Err(GetError::NotShared { .. })
    ));
    let s = net.session(3).await;
    let r = fetch_as(&s, &reader, &owner, "shared.bin", first).await;
    assert!(denied(&r), "{r:?}");

    // Share with two readers: both read it, bit-identical, through another node.
    let entry = net.session(1).await;
    let sh = share(&entry, &owner, "shared.bin", &reader.public())
        .await
        .unwrap();
    assert!(!sh.already);
    share(&entry, &owner, "shared.bin", &other.public())
        .await
        .unwrap();
    let again = share(&entry, &owner, "shared.bin", &reader.public())
        .await
        .unwrap();
    assert!(again.already, "sharing twice changes nothing");
    assert_eq!(
        get_as(&net, 3, &reader, &owner, "shared.bin")
            .await
            .unwrap(),
        data
    );
    assert_eq!(
        get_as(&net, 2, &other, &owner, "shared.bin").await.unwrap(),
        data
    );
    let r = fetch_as(&s, &reader, &owner, "shared.bin", first).await;
    assert!(r.is_ok(), "a reader fetches the chunk: {r:?}");
    // The stranger is still shut out, even naming the shared file.
    let r = fetch_as(&s, &stranger, &owner, "shared.bin", first).await;
    assert!(denied(&r), "{r:?}");
    // A grant covers one file: naming another of the owner's files fails.
    let private = put_file(&net, 0, &owner, "private.bin", &data[..1000], 2).await;
    let p = &private.chunks[0];
    let r = fetch_as(&s, &reader, &owner, "shared.bin", p).await;
    assert!(denied(&r), "a chunk of another file: {r:?}");

    // A reader cannot grant itself more: a record whose manifest it edited
    // (here: the stranger added as a reader) is refused by the node.
    let mut rec = records::get_file_record(&s, &owner.user_id(), &owner.file_handle("shared.bin"))
        .await
        .unwrap()
        .unwrap();
    let mut m = rec.manifest().unwrap().clone();
    m.version += 1;
    m.readers.push(stranger.user_id());
    assert!(
        rec.add_manifest(m.clone()).is_err(),
        "the client API refuses it too"
    );
    let forged = forge_record(&rec, m);
    let put_forged = s
        .request(&ifs_core::proto::CtlRequest::PutRecord {
            key: records::file_key(&owner.user_id(), &owner.file_handle("shared.bin")),
            value: forged,
        })
        .await;
    assert!(
        !matches!(put_forged, Ok(ifs_core::proto::CtlResponse::Done)),
        "a forged manifest must not be stored: {put_forged:?}"
    );
    let r = fetch_as(&s, &stranger, &owner, "shared.bin", first).await;
    assert!(denied(&r), "{r:?}");

    // Revoke the first reader: the file is re-keyed onto new chunks.
    let rv = revoke(
        &entry,
        &owner,
        "shared.bin",
        &reader.public(),
        RevokeOptions {
            replicas: 2,
            progress: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(rv.readers, 1, "the other reader stays");
    assert_eq!(rv.old_chunks, put.chunks.len());
    assert!(
        rv.put
            .chunks
            .iter()
            .all(|c| put.chunks.iter().all(|o| o.id != c.id))
    );
    assert!(matches!(
        get_as(&net, 3, &reader, &owner, "shared.bin").await,
        Err(GetError::NotShared { .. })
    ));
    let new = &rv.put.chunks[0];
    let r = fetch_as(&s, &reader, &owner, "shared.bin", new).await;
    assert!(denied(&r), "revoked reader fetches a new chunk: {r:?}");
    let r = fetch_as(&s, &reader, &owner, "shared.bin", first).await;
    assert!(r.is_err(), "revoked reader fetches an old chunk: {r:?}");
    // Owner and the remaining reader still read it.
    assert_eq!(get_file(&net, 2, &owner, "shared.bin").await, data);
    assert_eq!(
        get_as(&net, 1, &other, &owner, "shared.bin").await.unwrap(),
        data
    );
    // The old chunks are freed and the accounting stays exact.
    net.wait_until(|| async {
        for i in 0..4 {
            if !net.accounting_exact(i).await {
                return false;
            }
        }
        true
    })
    .await;
    for (i, v) in net.vols.iter().enumerate() {
        let names: Vec<String> = pieces(v)
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        for c in &put.chunks {
            let hex = c.id.to_hex();
            assert!(
                names.iter().all(|n| !n.contains(&hex)),
                "node {i} still holds old chunk {hex}"
            );
        }
    }
    s.close().await;
    entry.close().await;
    net.shutdown().await;
}

/// `rec` with `m` put in as its manifest without any signature check, as
/// an attacker would send it.
fn forge_record(rec: &FileRecord, m: ifs_core::wire::Manifest) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Wire<'a> {
        owner: &'a UserId,
        name: &'a str,
        manifest: Option<ifs_core::wire::Manifest>,
        delete: Option<ifs_core::wire::FileDelete>,
        receipts: Vec<ifs_core::wire::Receipt>,
        releases: Vec<ifs_core::wire::ChunkRelease>,
    }
    let w = Wire {
        owner: rec.owner(),
        name: rec.name(),
        manifest: Some(m),
        delete: None,
        receipts: rec.receipts().cloned().collect(),
        releases: Vec::new(),
    };
    cbor4ii::serde::to_vec(Vec::new(), &w).unwrap()
}
