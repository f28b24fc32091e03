//! Attacks by a peer that holds no key but its own (and as many fresh keys
//! as it likes): each is refused or harmless, the victim's files read back
//! bit-identical, and every node's accounting still matches what it holds.
//! Waits have generous deadlines; nothing asserts on timing.

use std::io::Cursor;
use std::time::Duration;

use ifs_client::{GetOptions, PutOptions, Session, get, put, rm};
use ifs_core::ChunkId;
use ifs_core::codec::CodecParams;
use ifs_core::file_record::FileRecord;
use ifs_core::keys::{NodeKey, UserKey};
use ifs_core::proto::{CtlError, CtlRequest, CtlResponse, MAX_CTL_RESPONSE, decode, encode};
use ifs_core::quota::QuotaPolicy;
use ifs_core::wire::{
    ChainHop, HeaderChain, Manifest, Receipt, ReserveRequest, SettleRequest, Tombstone,
};
use ifs_net::PeerId;
use ifs_testkit::{Cluster, ClusterOptions, Intruder, wait_until, wait_until_async};

const PATIENCE: Duration = Duration::from_secs(120);

async fn cluster(n: usize, opts: ClusterOptions) -> Cluster {
    let net = Cluster::start(n, opts).await.unwrap();
    let all = net.running();
    wait_until("the cluster to converge", PATIENCE, || {
        all.iter().all(|&i| net.sees_alive(i, &all))
    })
    .await
    .unwrap();
    net
}

/// A cluster of `n` whose nodes run a durability pass every 500 ms.
async fn repairing_cluster(n: usize) -> Cluster {
    let durability = ifs_node::DurabilityConfig {
        repair_interval: Duration::from_millis(500),
        ..ifs_node::DurabilityConfig::default()
    };
    cluster(
        n,
        ClusterOptions {
            durability,
            ..ClusterOptions::default()
        },
    )
    .await
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::fill(&mut v[..]);
    v
}

fn opts(name: &str, size: usize) -> PutOptions {
    let mut o = PutOptions::new(name);
    o.codec = CodecParams::with_segment_size(256 << 10);
    o.size_hint = Some(size as u64);
    o
}

async fn session(net: &Cluster, i: usize) -> Session {
    Session::connect(net.node(i).unwrap().addrs()[0].clone())
        .await
        .unwrap()
}

async fn put_bytes(s: &Session, user: &UserKey, name: &str, data: &[u8]) {
    put(s, user, Cursor::new(data.to_vec()), opts(name, data.len()))
        .await
        .unwrap_or_else(|e| panic!("put {name}: {e}"));
}

async fn get_bytes(s: &Session, user: &UserKey, name: &str) -> Vec<u8> {
    get(s, user, name, Vec::new(), GetOptions::default())
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e}"))
        .1
}

/// Every node's used bytes equal the chunks it lists, and what it reserves
/// is what its open grants hold (no bytes lost to or from the books).
async fn accounting_holds(net: &Cluster) {
    for i in net.running() {
        let store = net.node(i).unwrap().store();
        let cap = store.stats().await.unwrap();
        let listed: u64 = store
            .list_chunks()
            .await
            .unwrap()
            .iter()
            .map(|c| c.len)
            .sum();
        assert_eq!(cap.used, listed, "node {i}: used bytes match its chunks");
        assert!(
            cap.used + cap.reserved <= cap.donated,
            "node {i}: used + reserved within the donation"
        );
    }
}

/// An intruder connected to every node of `net`.
async fn intruder(net: &Cluster) -> Intruder {
    let (intruder, _) = Intruder::join(&net.node(0).unwrap().addrs()[0], 4 << 20)
        .await
        .unwrap();
    for i in net.running() {
        intruder
            .net()
            .dial(net.node(i).unwrap().addrs()[0].clone())
            .await
            .unwrap();
    }
    intruder
}

async fn raw(intruder: &Intruder, peer: PeerId, req: &CtlRequest) -> CtlResponse {
    let bytes = intruder.net().request(peer, encode(req)).await.unwrap();
    decode(&bytes, MAX_CTL_RESPONSE).unwrap()
}

/// Send record `value` under `key` to every node of `net`, each of which
/// must refuse it as invalid.
async fn refused_by_every_node(
    net: &Cluster,
    intruder: &Intruder,
    what: &str,
    key: &[u8],
    value: &[u8],
) {
    for i in net.running() {
        let answer = raw(
            intruder,
            net.node(i).unwrap().peer_id(),
            &CtlRequest::PutRecord {
                key: key.to_vec(),
                value: value.to_vec(),
            },
        )
        .await;
        assert!(
            matches!(answer, CtlResponse::Error(CtlError::Invalid(_))),
            "{what} at node {i}: {answer:?}"
        );
    }
}

async fn record_of(s: &Session, owner: &UserKey, name: &str) -> FileRecord {
    ifs_client::records::get_file_record(s, &owner.user_id(), &owner.file_handle(name))
        .await
        .unwrap()
        .unwrap()
}

fn chunk_ids(m: &Manifest) -> Vec<ChunkId> {
    m.chunks.iter().map(|c| c.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_delete_frees_nothing_of_a_live_file() {
    let net = cluster(4, ClusterOptions::default()).await;
    let victim = UserKey::generate(&mut rand::rng());
    let s = session(&net, 0).await;
    let live = random_bytes(700 << 10);
    put_bytes(&s, &victim, "live.bin", &live).await;
    put_bytes(&s, &victim, "old.bin", &random_bytes(10 << 10)).await;
    rm(&s, &victim, "old.bin").await.unwrap();

    // The delete of old.bin is public: it sits in that file's record.
    let old = record_of(&s, &victim, "old.bin").await;
    let tombstone = Tombstone::Delete(old.delete().unwrap().clone()).encode();
    let live_rec = record_of(&s, &victim, "live.bin").await;
    let chunks = chunk_ids(live_rec.live_manifest().unwrap());

    let intruder = intruder(&net).await;
    for i in net.running() {
        let answer = raw(
            &intruder,
            net.node(i).unwrap().peer_id(),
            &CtlRequest::Forget {
                tombstone: tombstone.clone(),
                chunks: chunks.clone(),
            },
        )
        .await;
        let held = net.node(i).unwrap().store().list_chunks().await.unwrap();
        if held.iter().any(|c| chunks.contains(&c.id)) {
            assert!(
                matches!(answer, CtlResponse::Error(CtlError::Denied(_))),
                "node {i} must refuse: {answer:?}"
            );
        }
    }
    // Every copy is still held, and the file reads back through another node.
    for c in &chunks {
        let mut holders = 0;
        for i in net.running() {
            if net.node(i).unwrap().store().contains(*c).await.unwrap() {
                holders += 1;
            }
        }
        assert_eq!(holders, 3, "chunk {c} keeps its three copies");
    }
    let s3 = session(&net, 3).await;
    assert_eq!(get_bytes(&s3, &victim, "live.bin").await, live);

    // Audits cost a chunk read: a stranger that holds no copy is refused.
    let c = live_rec.live_manifest().unwrap().chunks[0];
    let holder = live_rec.live_holders(&c.id)[0];
    let peer = ifs_net::node_id_to_peer_id(&holder).unwrap();
    let mut random = [0u8; 48];
    rand::fill(&mut random[..]);
    let challenge = ifs_core::audit::AuditChallenge::new(c.id, c.len, random);
    assert!(matches!(
        raw(&intruder, peer, &CtlRequest::Audit(challenge)).await,
        CtlResponse::Error(CtlError::Denied(_))
    ));
    accounting_holds(&net).await;
    intruder.shutdown().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hoarder_with_many_keys_cannot_keep_space_from_honest_puts() {
    let quota = QuotaPolicy {
        preempt_after_ms: 500,
        ..QuotaPolicy::default()
    };
    let net = cluster(
        4,
        ClusterOptions {
            volume_bytes: 16 << 20,
            quota,
            ..ClusterOptions::default()
        },
    )
    .await;
    let intruder = intruder(&net).await;
    let keys: Vec<UserKey> = (0..8)
        .map(|_| UserKey::generate(&mut rand::rng()))
        .collect();

    for i in net.running() {
        let node = net.node(i).unwrap();
        let (peer, id) = (node.peer_id(), node.node_id());
        // One key cannot take more than its share.
        let greedy = ReserveRequest::new(&keys[0], id, 15 << 20, 600_000, now_ms());
        let answer = raw(&intruder, peer, &CtlRequest::Reserve(greedy)).await;
        assert!(
            matches!(answer, CtlResponse::Error(CtlError::Denied(ref why)) if why.contains("quota")),
            "node {i}: {answer:?}"
        );
        // A request whose signature does not match its client is refused.
        let mut forged = ReserveRequest::new(&keys[0], id, 1 << 20, 600_000, now_ms());
        forged.client = keys[1].user_id();
        let answer = raw(&intruder, peer, &CtlRequest::Reserve(forged)).await;
        assert!(
            matches!(answer, CtlResponse::Error(CtlError::Invalid(_))),
            "node {i}: {answer:?}"
        );
        // Many keys together take every free byte.
        for key in &keys {
            let mut ask = 8u64 << 20;
            while ask >= 64 << 10 {
                let req = ReserveRequest::new(key, id, ask, 600_000, now_ms());
                if !matches!(
                    raw(&intruder, peer, &CtlRequest::Reserve(req)).await,
                    CtlResponse::Granted(_)
                ) {
                    ask /= 2;
                }
            }
        }
        let cap = node.store().stats().await.unwrap();
        assert!(
            cap.free < 1 << 20,
            "node {i}: the hoarder holds nearly everything ({} free)",
            cap.free
        );
    }

    // The hoarder sends no data; an honest put still finds space.
    // (A few report intervals: the entry node's table must show the space
    // that can be taken back.)
    tokio::time::sleep(Duration::from_millis(quota.preempt_after_ms + 3000)).await;
    let honest = UserKey::generate(&mut rand::rng());
    let s = session(&net, 0).await;
    let data = random_bytes(1 << 20);
    put_bytes(&s, &honest, "honest.bin", &data).await;
    let s2 = session(&net, 2).await;
    assert_eq!(get_bytes(&s2, &honest, "honest.bin").await, data);
    accounting_holds(&net).await;
    intruder.shutdown().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_reservation_can_be_neither_settled_nor_used() {
    let net = cluster(4, ClusterOptions::default()).await;
    let honest = UserKey::generate(&mut rand::rng());
    let thief = UserKey::generate(&mut rand::rng());
    let intruder = intruder(&net).await;
    let node = net.node(1).unwrap();
    let (peer, id) = (node.peer_id(), node.node_id());
    let reservation_id = grant_on(&intruder, &net, 1, &honest, 1 << 20).await;
    // The thief saw the reservation id (it travels in chains) and settles it.
    let settle = SettleRequest::new(&thief, id, reservation_id, now_ms());
    assert!(matches!(
        raw(&intruder, peer, &CtlRequest::Settle(settle)).await,
        CtlResponse::Error(CtlError::Denied(_))
    ));
    // Or stores its own chunk against it, or against made-up ids along a
    // chain of several nodes: refused at the first hop, before any byte is
    // forwarded or stored.
    let data = random_bytes(512 << 10);
    let chunk = ChunkId::of(&data);
    let binding = (
        FileRecord::key(&thief.user_id(), &thief.file_handle("free-ride")),
        1,
    );
    let hops: Vec<ChainHop> = [1usize, 2, 3]
        .iter()
        .map(|&i| ChainHop {
            node: net.node(i).unwrap().node_id(),
            reservation_id: if i == 1 {
                reservation_id
            } else {
                [i as u8; 16]
            },
        })
        .collect();
    let chain = HeaderChain::new(&thief, chunk, data.len() as u64, binding, hops).unwrap();
    let reply = ifs_client::transfer::send_chunk(intruder.net(), peer, &chain, &data)
        .await
        .unwrap();
    assert!(reply.receipts.is_empty());
    assert_eq!(reply.failure.as_ref().map(|(n, _)| *n), Some(id));
    for i in net.running() {
        assert!(!net.node(i).unwrap().store().contains(chunk).await.unwrap());
    }
    // The honest user's grant still works for the honest user.
    let own = random_bytes(100 << 10);
    let own_chunk = ChunkId::of(&own);
    let chain = HeaderChain::new(
        &honest,
        own_chunk,
        own.len() as u64,
        (
            FileRecord::key(&honest.user_id(), &honest.file_handle("mine")),
            1,
        ),
        vec![ChainHop {
            node: id,
            reservation_id,
        }],
    )
    .unwrap();
    let reply = ifs_client::transfer::send_chunk(intruder.net(), peer, &chain, &own)
        .await
        .unwrap();
    assert_eq!(reply.receipts.len(), 1, "{:?}", reply.failure);
    let settle = SettleRequest::new(&honest, id, reservation_id, now_ms());
    assert!(matches!(
        raw(&intruder, peer, &CtlRequest::Settle(settle)).await,
        CtlResponse::Done
    ));
    accounting_holds(&net).await;
    intruder.shutdown().await;
    net.shutdown().await;
}

/// Chunks that lie about their size or their bytes: one declared past the
/// cap, one longer than the grant it names, one whose bytes are not the
/// chunk its id names. Each is refused by the node it is sent to, nothing of
/// it is stored, and its grant is not charged: the same grant then takes a
/// true chunk of its full size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_that_lie_about_their_size_or_bytes_cost_nothing() {
    let net = cluster(3, ClusterOptions::default()).await;
    let liar = UserKey::generate(&mut rand::rng());
    let intruder = intruder(&net).await;
    let node = net.node(1).unwrap();
    let (peer, id) = (node.peer_id(), node.node_id());
    let grant: u64 = 1 << 20;
    let reservation_id = grant_on(&intruder, &net, 1, &liar, grant).await;
    let binding = (
        FileRecord::key(&liar.user_id(), &liar.file_handle("lies")),
        1,
    );
    let hop = vec![ChainHop {
        node: id,
        reservation_id,
    }];
    let send = |chunk: ChunkId, len: u64, data: Vec<u8>| {
        let chain = HeaderChain::new(&liar, chunk, len, binding, hop.clone()).unwrap();
        let net = intruder.net().clone();
        async move {
            ifs_client::transfer::send_chunk(&net, peer, &chain, &data)
                .await
                .unwrap()
        }
    };

    // 1. Declared past the cap: refused before a byte is read.
    let small = random_bytes(4 << 10);
    let over = ifs_core::proto::MAX_CHUNK_BYTES + 1;
    let reply = send(ChunkId::of(&small), over, small.clone()).await;
    assert!(reply.receipts.is_empty());
    let why = reply.failure.as_ref().map(|(n, w)| (*n, w.clone()));
    assert!(
        why.as_ref()
            .is_some_and(|(n, w)| *n == id && w.contains("cap")),
        "{why:?}"
    );

    // 2. Longer than the grant: refused before it is read; what the sender
    // already wrote is read and dropped.
    let long = random_bytes(2 << 20);
    let reply = send(ChunkId::of(&long), long.len() as u64, long.clone()).await;
    assert!(reply.receipts.is_empty());
    assert_eq!(reply.failure.as_ref().map(|(n, _)| *n), Some(id));

    // 3. Bytes that are not the chunk the id names (one bit flipped after
    // hashing): read in full, then refused.
    let true_bytes = random_bytes(grant as usize - 4096);
    let mut flipped = true_bytes.clone();
    flipped[1234] ^= 1;
    let named = ChunkId::of(&true_bytes);
    let reply = send(named, flipped.len() as u64, flipped).await;
    assert!(
        reply.receipts.is_empty(),
        "a receipt for bytes that are not the chunk"
    );
    assert_eq!(reply.failure.as_ref().map(|(n, _)| *n), Some(id));

    for c in [ChunkId::of(&small), ChunkId::of(&long), named] {
        assert!(holders_of(&net, c).await.is_empty(), "{c} stored");
    }
    accounting_holds(&net).await;

    // None of it was charged: the grant takes a true chunk of its full size.
    let whole = random_bytes(grant as usize);
    let reply = send(ChunkId::of(&whole), grant, whole.clone()).await;
    assert_eq!(reply.receipts.len(), 1, "{:?}", reply.failure);
    assert_eq!(holders_of(&net, ChunkId::of(&whole)).await, vec![1]);
    accounting_holds(&net).await;
    intruder.shutdown().await;
    net.shutdown().await;
}

/// The wire layout of a file record, as an attacker would write it by hand.
#[derive(serde::Serialize)]
struct HandWrittenRecord {
    format: u32,
    owner: ifs_core::UserId,
    name: String,
    manifest: Option<Manifest>,
    delete: Option<ifs_core::wire::FileDelete>,
    receipts: Vec<Receipt>,
    releases: Vec<ifs_core::wire::ChunkRelease>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_cannot_be_moved_and_records_cannot_be_stuffed() {
    let net = cluster(4, ClusterOptions::default()).await;
    let victim = UserKey::generate(&mut rand::rng());
    let s = session(&net, 0).await;
    let a = random_bytes(300 << 10);
    let b = random_bytes(300 << 10);
    put_bytes(&s, &victim, "a.bin", &a).await;
    put_bytes(&s, &victim, "b.bin", &b).await;
    let rec_a = record_of(&s, &victim, "a.bin").await;
    let rec_b = record_of(&s, &victim, "b.bin").await;
    let intruder = intruder(&net).await;
    let key_a = ifs_core::proto::RecordKey::File(rec_a.record_key()).to_bytes();

    // a.bin's record with b.bin's holders' receipts in it: whoever then
    // sees a.bin's live manifest not listing those chunks would free them.
    let moved = HandWrittenRecord {
        format: FileRecord::FORMAT,
        owner: victim.user_id(),
        name: rec_a.name().into(),
        manifest: rec_a.manifest().cloned(),
        delete: None,
        receipts: rec_a.receipts().chain(rec_b.receipts()).cloned().collect(),
        releases: vec![],
    };
    // Fake holders by the hundred for one chunk of a.bin.
    let chunk = rec_a.manifest().unwrap().chunks[0];
    let mut fakes: Vec<Receipt> = rec_a.receipts().cloned().collect();
    for _ in 0..(FileRecord::MAX_RECEIPTS_PER_CHUNK + 1) {
        let fake = NodeKey::generate(&mut rand::rng());
        fakes.push(Receipt::new(
            &fake,
            chunk.id,
            chunk.len,
            (victim.user_id(), rec_a.record_key()),
            now_ms(),
        ));
    }
    let stuffed = HandWrittenRecord {
        receipts: fakes,
        ..moved_clone(&moved)
    };
    // Receipts alone, no owner-signed part: nothing to keep.
    let unsigned = HandWrittenRecord {
        manifest: None,
        ..moved_clone(&moved)
    };
    // The old format (no format field) and an over-long name.
    let long_name = HandWrittenRecord {
        name: "x".repeat(2000),
        ..moved_clone(&moved)
    };
    for (what, rec) in [
        ("moved receipts", &moved),
        ("stuffed receipts", &stuffed),
        ("unsigned record", &unsigned),
        ("over-long name", &long_name),
    ] {
        let value = cbor4ii::serde::to_vec(Vec::new(), rec).unwrap();
        refused_by_every_node(&net, &intruder, what, &key_a, &value).await;
    }
    // Let durability passes run over whatever they hold, then read both.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s3 = session(&net, 3).await;
    assert_eq!(get_bytes(&s3, &victim, "a.bin").await, a);
    assert_eq!(get_bytes(&s3, &victim, "b.bin").await, b);
    for c in chunk_ids(rec_b.live_manifest().unwrap()) {
        let mut holders = 0;
        for i in net.running() {
            holders += usize::from(net.node(i).unwrap().store().contains(c).await.unwrap());
        }
        assert_eq!(holders, 3, "b.bin's chunk {c} keeps its copies");
    }
    accounting_holds(&net).await;
    intruder.shutdown().await;
    net.shutdown().await;
}

fn moved_clone(r: &HandWrittenRecord) -> HandWrittenRecord {
    HandWrittenRecord {
        format: r.format,
        owner: r.owner,
        name: r.name.clone(),
        manifest: r.manifest.clone(),
        delete: r.delete.clone(),
        receipts: r.receipts.clone(),
        releases: r.releases.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_put_costs_space_for_a_bounded_time_only() {
    let durability = ifs_node::DurabilityConfig {
        repair_interval: Duration::from_millis(500),
        collect_after: Duration::from_secs(3),
        ..ifs_node::DurabilityConfig::default()
    };
    let net = cluster(
        4,
        ClusterOptions {
            durability,
            ..ClusterOptions::default()
        },
    )
    .await;
    let user = UserKey::generate(&mut rand::rng());
    let s = session(&net, 0).await;
    let kept = random_bytes(200 << 10);
    put_bytes(&s, &user, "kept.bin", &kept).await;

    // A put that stored its chunk and then died before any record was
    // written: the chunk is bound to a record nobody committed.
    let intruder = intruder(&net).await;
    let node = net.node(1).unwrap();
    let (peer, id) = (node.peer_id(), node.node_id());
    let reservation_id = grant_on(&intruder, &net, 1, &user, 1 << 20).await;
    let data = random_bytes(300 << 10);
    let chunk = ChunkId::of(&data);
    let chain = HeaderChain::new(
        &user,
        chunk,
        data.len() as u64,
        (
            FileRecord::key(&user.user_id(), &user.file_handle("abandoned.bin")),
            1,
        ),
        vec![ChainHop {
            node: id,
            reservation_id,
        }],
    )
    .unwrap();
    let reply = ifs_client::transfer::send_chunk(intruder.net(), peer, &chain, &data)
        .await
        .unwrap();
    assert_eq!(reply.receipts.len(), 1, "{:?}", reply.failure);
    let settle = SettleRequest::new(&user, id, reservation_id, now_ms());
    raw(&intruder, peer, &CtlRequest::Settle(settle)).await;

    // Counted as awaiting collection, then freed once the grace has passed.
    wait_until_async(
        "the orphan to show as awaiting collection",
        PATIENCE,
        || async {
            net.node(1)
                .unwrap()
                .status()
                .await
                .awaiting_collection_bytes
                >= data.len() as u64
        },
    )
    .await
    .unwrap();
    wait_until_async("the orphan to be collected", PATIENCE, || async {
        !net.node(1).unwrap().store().contains(chunk).await.unwrap()
    })
    .await
    .unwrap();
    // The committed file is untouched.
    let s2 = session(&net, 2).await;
    assert_eq!(get_bytes(&s2, &user, "kept.bin").await, kept);
    accounting_holds(&net).await;
    intruder.shutdown().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_holders_do_not_block_a_repair_copy() {
    let mut net = repairing_cluster(5).await;
    let victim = UserKey::generate(&mut rand::rng());
    let s = session(&net, 0).await;
    let data = random_bytes(200 << 10);
    put_bytes(&s, &victim, "f.bin", &data).await;
    let rec = record_of(&s, &victim, "f.bin").await;
    let chunk = rec.live_manifest().unwrap().chunks[0];

    // Twenty holders nobody runs, validly signed by keys the attacker
    // made, bound to the right record: within the record's caps, so the
    // record takes them.
    let mut receipts: Vec<Receipt> = rec.receipts().cloned().collect();
    for _ in 0..20 {
        let fake = NodeKey::generate(&mut rand::rng());
        receipts.push(Receipt::new(
            &fake,
            chunk.id,
            chunk.len,
            (victim.user_id(), rec.record_key()),
            now_ms(),
        ));
    }
    let stuffed = HandWrittenRecord {
        format: FileRecord::FORMAT,
        owner: victim.user_id(),
        name: rec.name().into(),
        manifest: rec.manifest().cloned(),
        delete: None,
        receipts,
        releases: vec![],
    };
    let value = cbor4ii::serde::to_vec(Vec::new(), &stuffed).unwrap();
    let key = ifs_core::proto::RecordKey::File(rec.record_key()).to_bytes();
    let intruder = intruder(&net).await;
    for i in net.running() {
        let answer = raw(
            &intruder,
            net.node(i).unwrap().peer_id(),
            &CtlRequest::PutRecord {
                key: key.clone(),
                value: value.clone(),
            },
        )
        .await;
        assert!(matches!(answer, CtlResponse::Done), "node {i}: {answer:?}");
    }
    intruder.shutdown().await;

    // One real holder (not the entry node) goes away for good.
    let holders = holders_of(&net, chunk.id).await;
    assert_eq!(holders.len(), 3);
    let gone = *holders.iter().find(|&&i| i != 0).unwrap();
    net.stop(gone).await.unwrap();

    // Repair still finds a node that takes the copy: three live copies again.
    wait_until_async("a repair copy on a new node", PATIENCE, || async {
        holders_of(&net, chunk.id).await.len() >= 3
    })
    .await
    .unwrap();
    let other = *net.running().iter().find(|&&i| i != 0).unwrap();
    let s2 = session(&net, other).await;
    assert_eq!(get_bytes(&s2, &victim, "f.bin").await, data);
    accounting_holds(&net).await;
    net.shutdown().await;
}

/// A grant of `bytes` on node `i` for `user`, asked for by the intruder.
async fn grant_on(
    intruder: &Intruder,
    net: &Cluster,
    i: usize,
    user: &UserKey,
    bytes: u64,
) -> [u8; 16] {
    let node = net.node(i).unwrap();
    let req = ReserveRequest::new(user, node.node_id(), bytes, 600_000, now_ms());
    match raw(intruder, node.peer_id(), &CtlRequest::Reserve(req)).await {
        CtlResponse::Granted(g) => g.reservation_id,
        other => panic!("node {i}: {other:?}"),
    }
}

/// Indices of the running nodes that hold `chunk`.
async fn holders_of(net: &Cluster, chunk: ChunkId) -> Vec<usize> {
    let mut v = Vec::new();
    for i in net.running() {
        if net.node(i).unwrap().store().contains(chunk).await.unwrap() {
            v.push(i);
        }
    }
    v
}

/// A peer that looks like a node with a terabyte free (its signed reports
/// keep arriving) but never reads a stream opened to it. Dropped with the
/// returned task.
async fn sink(net: &Cluster) -> (Intruder, tokio::task::JoinHandle<()>) {
    let s = intruder(net).await;
    let (client, key) = (s.net().clone(), s.key().clone());
    client.subscribe(ifs_node::CAPACITY_TOPIC).await.unwrap();
    let reports = tokio::spawn(async move {
        let addrs: Vec<String> = client
            .listen_addrs()
            .await
            .unwrap_or_default()
            .iter()
            .map(|a| a.to_string())
            .collect();
        for seq in 1.. {
            let stats = ifs_core::wire::CapacityStats {
                donated_bytes: 1 << 40,
                free_bytes: 1 << 40,
                ..Default::default()
            };
            let r = ifs_core::wire::CapacityReport::new(
                &key,
                seq,
                addrs.clone(),
                stats,
                "0.1.0".into(),
                now_ms(),
            );
            let _ = client.publish(ifs_node::CAPACITY_TOPIC, r.encode()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    (s, reports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_never_read_do_not_stall_repair() {
    let logs = ifs_testkit::LogCapture::install("warn").unwrap();
    let mut net = repairing_cluster(4).await;
    let victim = UserKey::generate(&mut rand::rng());
    let s = session(&net, 0).await;
    let files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("f{i}.bin"), random_bytes(200 << 10)))
        .collect();
    let mut chunks = Vec::new();
    for (name, data) in &files {
        put_bytes(&s, &victim, name, data).await;
        let rec = record_of(&s, &victim, name).await;
        chunks.push(rec.live_manifest().unwrap().chunks[0].id);
    }
    s.close().await;

    // Four sinks every node sees alive, with far more free space than any
    // real node: the first targets a repair ranks.
    let mut sinks = Vec::new();
    for _ in 0..4 {
        sinks.push(sink(&net).await);
    }
    let sink_ids: Vec<String> = sinks
        .iter()
        .map(|(s, _)| s.key().node_id().to_string())
        .collect();
    wait_until("every node to see the sinks", PATIENCE, || {
        net.running().iter().all(|&i| {
            let t = net.table(i);
            sinks
                .iter()
                .all(|(s, _)| t.contains_key(&s.key().node_id()))
        })
    })
    .await
    .unwrap();

    // A holder of the first file (not node 0) goes away for good.
    let gone = *holders_of(&net, chunks[0])
        .await
        .iter()
        .find(|&&i| i != 0)
        .unwrap();
    net.stop(gone).await.unwrap();

    // Every chunk is back at three copies on real nodes. Generous: each sink
    // costs one timeout before it sits out.
    wait_until_async("three copies of every chunk", PATIENCE * 2, || async {
        for &c in &chunks {
            if holders_of(&net, c).await.len() < 3 {
                return false;
            }
        }
        true
    })
    .await
    .unwrap();
    let tried: Vec<&String> = sink_ids
        .iter()
        .filter(|id| {
            !logs
                .lines_with(&["replica not stored", &id[..12]])
                .is_empty()
        })
        .collect();
    // The sinks were in the way (each repairing node tries one at most once
    // per ten minutes, see `FailedTargets`), and repair got past them.
    assert!(!tried.is_empty(), "no sink was ever chosen as a target");
    let s2 = session(&net, *net.running().last().unwrap()).await;
    for (name, data) in &files {
        assert_eq!(&get_bytes(&s2, &victim, name).await, data);
    }
    accounting_holds(&net).await;
    for (s, reports) in sinks {
        reports.abort();
        s.shutdown().await;
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_client_never_settled_is_still_repaired() {
    let mut net = repairing_cluster(5).await;
    let user = UserKey::generate(&mut rand::rng());
    let intruder = intruder(&net).await;

    // A client stores one chunk along a chain of three nodes and commits the
    // record, then dies before it settles any grant.
    let data = random_bytes(300 << 10);
    let chunk = ChunkId::of(&data);
    let len = data.len() as u64;
    let name = "unsettled.bin";
    let mut hops = Vec::new();
    for i in [1usize, 2, 3] {
        hops.push(ChainHop {
            node: net.node(i).unwrap().node_id(),
            reservation_id: grant_on(&intruder, &net, i, &user, 1 << 20).await,
        });
    }
    let binding = (FileRecord::key(&user.user_id(), name), 1);
    let chain = HeaderChain::new(&user, chunk, len, binding, hops).unwrap();
    let first = net.node(1).unwrap().peer_id();
    let reply = ifs_client::transfer::send_chunk(intruder.net(), first, &chain, &data)
        .await
        .unwrap();
    assert_eq!(reply.receipts.len(), 3, "{:?}", reply.failure);
    let manifest = Manifest::new(
        &user,
        ifs_core::wire::ManifestFields {
            name: name.into(),
            version: 1,
            size: len,
            created_at_ms: now_ms(),
            segment_size: 256 << 10,
            nonce_prefix: ifs_core::codec::NoncePrefix([7; 7]),
            chunks: vec![ifs_core::wire::ChunkRef { id: chunk, len }],
            key_wraps: vec![],
            readers: vec![],
            replicas: 3,
            pages: vec![],
        },
    )
    .unwrap();
    let rec = FileRecord::from_manifest(manifest, reply.receipts).unwrap();
    let s = session(&net, 0).await;
    ifs_client::records::put_file_record(&s, &rec)
        .await
        .unwrap();
    intruder.shutdown().await;

    // A holder goes away: the others still know the chunk is theirs to
    // keep, audit and repair (the binding came with the chain, not a settle).
    net.stop(2).await.unwrap();
    wait_until_async(
        "a repair copy on a node outside the chain",
        PATIENCE,
        || async { holders_of(&net, chunk).await.len() >= 3 },
    )
    .await
    .unwrap();
    let now = holders_of(&net, chunk).await;
    assert!(now.iter().any(|i| ![1, 2, 3].contains(i)), "{now:?}");
    let merged = ifs_client::records::get_file_record(&s, &user.user_id(), name)
        .await
        .unwrap()
        .unwrap();
    assert!(merged.live_holders(&chunk).len() >= 3);
    for i in now {
        let store = net.node(i).unwrap().store();
        assert_eq!(store.get_chunk(chunk).await.unwrap(), data, "node {i}");
    }
    accounting_holds(&net).await;
    s.close().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_nodes_in_a_table_exchange_are_never_alive() {
    use ifs_core::node_table::NodeTable;
    use ifs_core::wire::{CapacityReport, CapacityStats};

    let net = cluster(3, ClusterOptions::default()).await;
    let intruder = intruder(&net).await;
    // Sixty-four identities nobody runs, each with a validly self-signed
    // report of a terabyte free at an address where nothing answers.
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let keys: Vec<NodeKey> = (0..64)
        .map(|_| NodeKey::generate(&mut rand::rng()))
        .collect();
    let fake_ids: Vec<String> = keys
        .iter()
        .map(|k| {
            ifs_net::node_id_to_peer_id(&k.node_id())
                .unwrap()
                .to_string()
        })
        .collect();
    let sybils = move || {
        let mut t = NodeTable::new();
        for key in &keys {
            let stats = CapacityStats {
                donated_bytes: 1 << 40,
                free_bytes: 1 << 40,
                ..Default::default()
            };
            let addr = format!("/ip4/127.0.0.1/tcp/{closed_port}");
            let r = CapacityReport::new(key, now_ms(), vec![addr], stats, "0.1.0".into(), now_ms());
            t.insert(r, now_ms()).unwrap();
        }
        t.encode()
    };
    // Fresh reports of them, to every node, every 300 ms: they never look
    // silent.
    let peers: Vec<PeerId> = net
        .running()
        .iter()
        .map(|&i| net.node(i).unwrap().peer_id())
        .collect();
    let client = intruder.net().clone();
    let pusher = tokio::spawn(async move {
        loop {
            let table = sybils();
            for &peer in &peers {
                let req = encode(&CtlRequest::TableExchange {
                    table: table.clone(),
                });
                let answer = client.request(peer, req).await.unwrap();
                assert!(matches!(
                    decode::<CtlResponse>(&answer, MAX_CTL_RESPONSE),
                    Ok(CtlResponse::Table { .. })
                ));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    // Every node lists them (the reports are genuine)...
    wait_until("every node lists the made-up nodes", PATIENCE, || {
        net.running().iter().all(|&i| net.table(i).len() >= 3 + 64)
    })
    .await
    .unwrap();
    // ...and has tried to reach a good part of them by now.
    tokio::time::sleep(Duration::from_secs(5)).await;

    // But none counts as alive, while the real nodes still do.
    let all = net.running();
    for &i in &all {
        for row in net.node(i).unwrap().peers() {
            if fake_ids.contains(&row.peer_id) {
                assert_eq!(row.state, "unverified", "node {i}: {}", row.peer_id);
            }
        }
        assert!(
            net.sees_alive(i, &all),
            "node {i} still sees the real nodes"
        );
        assert_eq!(net.node(i).unwrap().status().await.alive_peers, 2);
    }

    // An honest put lands on real nodes only and reads back.
    let honest = UserKey::generate(&mut rand::rng());
    let s = session(&net, 0).await;
    let data = random_bytes(600 << 10);
    put_bytes(&s, &honest, "honest.bin", &data).await;
    let real: Vec<_> = all.iter().map(|&i| net.node_id(i).unwrap()).collect();
    let rec = record_of(&s, &honest, "honest.bin").await;
    for r in rec.receipts() {
        assert!(real.contains(&r.node), "a receipt from a made-up node");
    }
    let s2 = session(&net, 2).await;
    assert_eq!(get_bytes(&s2, &honest, "honest.bin").await, data);
    assert!(!pusher.is_finished(), "the intruder kept pushing");
    pusher.abort();
    accounting_holds(&net).await;
    intruder.shutdown().await;
    net.shutdown().await;
}

/// The wire layout of a folder record, as an attacker would write it by
/// hand (entries copied, altered or signed with the wrong key).
#[derive(serde::Serialize)]
struct HandWrittenFolder {
    format: u32,
    owner: ifs_core::UserId,
    #[serde(with = "serde_bytes")]
    locator: [u8; 32],
    entries: Vec<ifs_core::folder_record::FolderEntry>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_folder_entries_neither_hide_nor_replace_packed_files() {
    use ifs_core::folder_record::{Child, EntryFields, FolderEntry, FolderKey, PackSlice};
    let net = cluster(4, ClusterOptions::default()).await;
    let victim = UserKey::generate(&mut rand::rng());
    let s = session(&net, 0).await;
    // Small files travel in one pack; each has a signed, sealed entry
    // naming its slice of the pack.
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("f{i}.txt"), random_bytes(3000 + i * 100)))
        .collect();
    let opts = ifs_client::TreeOptions {
        replicas: 3,
        ..Default::default()
    };
    let placed = ifs_client::put_small_files(&s, &victim, files.clone(), &opts)
        .await
        .unwrap();
    assert!(placed.iter().all(|r| r.is_ok()), "{placed:?}");
    let root = FolderKey::root(&victim);
    let honest = ifs_client::folders::get_folder(&s, &victim.user_id(), &root)
        .await
        .unwrap()
        .expect("the folder record");
    let entries: Vec<FolderEntry> = honest.entries().cloned().collect();
    assert!(entries.len() >= files.len());

    // 1. Every entry replayed at a higher version, marked deleted, its
    //    signature kept: if taken it would hide every file.
    let bumped: Vec<FolderEntry> = entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.version += 100;
            e.deleted = true;
            e
        })
        .collect();
    // 2. The honest copy plus one entry sealed under the victim's folder
    //    key (the attacker is assumed to know it) but signed by another
    //    user: a file pointing at another slice of the victim's pack.
    let thief = UserKey::generate(&mut rand::rng());
    let slice = entries
        .iter()
        .find_map(|e| e.open(&root).ok()?.pack)
        .expect("a packed entry");
    let stolen = Child {
        name: "f0.txt".into(),
        kind: ifs_client::ChildKind::File,
        size: files[1].1.len() as u64,
        chunks: 1,
        readers: vec![],
        handle: None,
        pack: Some(PackSlice {
            len: files[1].1.len() as u64,
            ..slice
        }),
        props: vec![],
    };
    let mut signed_by_thief = FolderEntry::seal(
        &thief,
        &root,
        &stolen,
        EntryFields {
            version: 1_000,
            deleted: false,
            at_ms: now_ms(),
            rev: 0,
        },
        &mut rand::rng(),
    );
    signed_by_thief.owner = victim.user_id();
    let mut with_thief = entries.clone();
    with_thief.retain(|e| e.slot != signed_by_thief.slot);
    with_thief.push(signed_by_thief);
    // 3. An entry moved in from another folder of the victim.
    let other = root.child("elsewhere");
    let mut moved = entries[0].clone();
    moved.locator = other.locator();
    let copies = [
        ("replayed entries at a higher version", bumped),
        ("one entry signed by another key", with_thief),
    ];
    let intruder = intruder(&net).await;
    let key = ifs_client::folders::folder_key(&root);
    for (what, entries) in &copies {
        let value = cbor4ii::serde::to_vec(
            Vec::new(),
            &HandWrittenFolder {
                format: ifs_core::folder_record::FORMAT,
                owner: victim.user_id(),
                locator: root.locator(),
                entries: entries.clone(),
            },
        )
        .unwrap();
        refused_by_every_node(&net, &intruder, what, &key, &value).await;
    }
    let value = cbor4ii::serde::to_vec(
        Vec::new(),
        &HandWrittenFolder {
            format: ifs_core::folder_record::FORMAT,
            owner: victim.user_id(),
            locator: other.locator(),
            entries: vec![moved],
        },
    )
    .unwrap();
    let other_key = ifs_client::folders::folder_key(&other);
    refused_by_every_node(&net, &intruder, "a moved entry", &other_key, &value).await;
    // Through another node, after durability passes: the folder is the
    // owner's, every file is listed at its version and reads back whole.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s3 = session(&net, 3).await;
    let after = ifs_client::folders::get_folder(&s3, &victim.user_id(), &root)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.entries().cloned().collect::<Vec<_>>(),
        entries,
        "no forged entry was merged"
    );
    assert!(
        ifs_client::folders::get_folder(&s3, &victim.user_id(), &other)
            .await
            .unwrap()
            .is_none(),
        "no record for the folder the entry was moved to"
    );
    for (name, data) in &files {
        assert_eq!(&get_bytes(&s3, &victim, name).await, data, "{name}");
    }
    accounting_holds(&net).await;
    intruder.shutdown().await;
    net.shutdown().await;
}
