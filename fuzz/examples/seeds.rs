//! Writes the seed corpora: a few valid encodings per fuzz target, made with
//! fixed keys so that every run writes the same files.
//!
//! `scripts/fuzz.sh seeds` runs it: `cargo run --example seeds -- fuzz/corpus`.
//! It replaces each target's `seed-N` files and leaves every other file in
//! the corpus directories alone.

use std::path::Path;

use ifs_core::ChunkId;
use ifs_core::admin::{AdminOp, AdminRequest, DonationCap, DonationStatus};
use ifs_core::audit::{AuditChallenge, AuditOutcome};
use ifs_core::codec::NoncePrefix;
use ifs_core::crdt::merged;
use ifs_core::dir_record::{DirEntry, DirRecord};
use ifs_core::file_record::FileRecord;
use ifs_core::folder_record::{
    Child, ChildKind, EntryFields, FolderEntry, FolderKey, FolderRecord,
};
use ifs_core::ids::UserId;
use ifs_core::keys::{NodeKey, UserKey};
use ifs_core::node_table::NodeTable;
use ifs_core::proto::{
    self, CtlError, CtlRequest, CtlResponse, FetchOutcome, FetchReply, RecordKey, StoreReply,
    StreamOpen,
};
use ifs_core::reputation::ReputationRecord;
use ifs_core::wire::{
    CapacityReport, CapacityStats, ChainHop, ChunkRef, ChunkRelease, FetchRequest, FileDelete,
    HeaderChain, Manifest, ManifestFields, Receipt, ReservationGrant, Tombstone,
};
use serde::Serialize;

const CHUNK_LEN: u64 = 50;

fn user(seed: u8) -> UserKey {
    let mut bytes = b"IFSU\x01".to_vec();
    bytes.extend_from_slice(&[seed; 32]);
    bytes.extend_from_slice(&[seed.wrapping_add(100); 32]);
    let sum = blake3::hash(&bytes);
    bytes.extend_from_slice(&sum.as_bytes()[..4]);
    UserKey::from_bytes(&bytes).expect("a well-formed user key")
}

fn node(seed: u8) -> NodeKey {
    NodeKey::from_bytes(&[seed; 32]).expect("a 32-byte node key")
}

fn chunk(i: u8) -> ChunkId {
    ChunkId::of(&[i])
}

fn manifest(owner: &UserKey, name: &str, version: u64, chunks: &[u8]) -> Manifest {
    Manifest::new(
        owner,
        ManifestFields {
            name: name.into(),
            version,
            size: CHUNK_LEN * chunks.len() as u64,
            created_at_ms: 1_000 + version,
            segment_size: 1 << 20,
            nonce_prefix: NoncePrefix([7; 7]),
            chunks: chunks
                .iter()
                .map(|&i| ChunkRef {
                    id: chunk(i),
                    len: CHUNK_LEN,
                })
                .collect(),
            key_wraps: vec![],
            readers: vec![user(9).user_id()],
            replicas: 3,
            pages: vec![],
        },
    )
    .expect("a well-formed manifest")
}

fn receipt(holder: &NodeKey, owner: &UserKey, i: u8, at: u64) -> Receipt {
    let record = FileRecord::key(&owner.user_id(), "photos/a.jpg");
    Receipt::new(holder, chunk(i), CHUNK_LEN, (owner.user_id(), record), at)
}

fn report(key: &NodeKey, seq: u64) -> CapacityReport {
    CapacityReport::new(
        key,
        seq,
        vec!["/ip4/127.0.0.1/tcp/4100".into()],
        CapacityStats {
            donated_bytes: 1 << 30,
            used_bytes: 1 << 20,
            reserved_bytes: 4096,
            free_bytes: (1 << 30) - (1 << 20) - 4096,
            owner_need_pct: 40,
            bandwidth_bps: 100_000_000,
            uptime_s: 3600,
        },
        "0.1.0".into(),
        5_000 + seq,
    )
}

struct Seeds<'a> {
    dir: &'a Path,
}

impl Seeds<'_> {
    fn write(&self, target: &str, seeds: &[Vec<u8>]) {
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).expect("write a seed");
        }
        println!("{target}: {} seeds", seeds.len());
    }
}

fn msg<T: Serialize>(m: &T) -> Vec<u8> {
    proto::encode(m)
}

/// `len_a` (u16 LE), `a`, `len_b` (u16 LE), `b`, `c`: the merge target's input.
fn framed(a: &[u8], b: &[u8], c: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [a, b] {
        out.extend_from_slice(
            &u16::try_from(part.len())
                .expect("a small record")
                .to_le_bytes(),
        );
        out.extend_from_slice(part);
    }
    out.extend_from_slice(c);
    out
}

// Mirrors of the store's row layouts (ifs-store keeps its own private).
#[derive(Serialize)]
struct PieceRow {
    volume: u16,
    name: String,
    len: u64,
}
#[derive(Serialize)]
struct ChunkRow {
    len: u64,
    owner: UserId,
    pieces: Vec<PieceRow>,
    stored_ms: u64,
}
#[derive(Serialize)]
struct ReservationRow {
    bytes: u64,
    used: u64,
    expires_ms: u64,
    closed: bool,
}

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "corpus".into());
    let s = Seeds {
        dir: Path::new(&out),
    };
    let owner = user(1);
    let other = user(2);
    let (n1, n2, n3) = (node(11), node(12), node(13));

    // Records of one file as three replicas might hold them.
    let m1 = manifest(&owner, "photos/a.jpg", 1, &[0, 1]);
    let m2 = manifest(&owner, "photos/a.jpg", 2, &[2]);
    let mut r1 = FileRecord::from_manifest(
        m1.clone(),
        vec![
            receipt(&n1, &owner, 0, 2_000),
            receipt(&n2, &owner, 1, 2_001),
        ],
    )
    .expect("valid entries");
    let mut r2 = FileRecord::from_manifest(m2.clone(), vec![receipt(&n3, &owner, 2, 2_002)])
        .expect("valid entries");
    r2.add_receipt(receipt(&n1, &owner, 0, 2_000))
        .expect("a valid receipt");
    r2.add_release(ChunkRelease::new(
        &n1,
        chunk(0),
        owner.user_id(),
        2_000,
        3_000,
    ))
    .expect("a valid release");
    let mut r3 = FileRecord::new(owner.user_id(), "photos/a.jpg".into());
    r3.add_delete(FileDelete::new(&owner, "photos/a.jpg".into(), 2, 4_000))
        .expect("a valid delete");
    r3.add_receipt(receipt(&n2, &owner, 2, 2_500))
        .expect("a valid receipt");
    r1.add_receipt(receipt(&n3, &owner, 1, 2_003))
        .expect("a valid receipt");
    let r4 =
        FileRecord::from_manifest(manifest(&other, "b", 1, &[5]), vec![]).expect("valid entries");
    let r12 = merged(&r1, &r2);
    let files = [&r1, &r2, &r3, &r12, &r4].map(|r| r.encode());
    s.write("file_record", &files);
    s.write(
        "file_record_merge",
        &[
            framed(&files[0], &files[1], &files[2]),
            framed(&files[1], &files[2], &files[0]),
            framed(&files[3], &files[2], b""),
            framed(&files[0], &files[4], &files[1]),
        ],
    );

    let mut dir = DirRecord::new(owner.user_id());
    dir.insert(DirEntry::live(&owner, &m1))
        .expect("valid entry");
    dir.insert(DirEntry::live(
        &owner,
        &manifest(&owner, "notes.txt", 3, &[4]),
    ))
    .expect("valid entry");
    dir.insert(DirEntry::deleted(&owner, "old".into(), 5, 6_000))
        .expect("valid entry");
    let entries: Vec<Vec<u8>> = dir.entries().map(|e| e.encode()).collect();
    s.write(
        "dir_record",
        &[dir.encode(), DirRecord::new(other.user_id()).encode()],
    );
    s.write("dir_entry", &entries);

    let photos = FolderKey::root(&owner).child("photos");
    let mut folder = FolderRecord::new(owner.user_id(), photos.locator());
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    for (name, kind, version, deleted) in [
        ("a.jpg", ChildKind::File, 2, false),
        ("2024", ChildKind::Folder, 1, false),
        ("old.jpg", ChildKind::File, 3, true),
    ] {
        let child = Child {
            name: name.into(),
            kind,
            size: 10,
            chunks: 1,
            readers: vec![other.user_id()],
            handle: (kind == ChildKind::File).then(|| owner.file_handle(name)),
        };
        let at_ms = 6_000;
        let fields = EntryFields {
            version,
            deleted,
            at_ms,
        };
        folder
            .insert(FolderEntry::seal(&owner, &photos, &child, fields, &mut rng))
            .expect("valid entry");
    }
    s.write(
        "folder_record",
        &[
            folder.encode(),
            FolderRecord::new(other.user_id(), [0; 32]).encode(),
        ],
    );

    let mut table = NodeTable::new();
    table.insert(report(&n1, 1), 10_000).expect("valid report");
    table.insert(report(&n2, 7), 11_000).expect("valid report");
    let reports = [report(&n1, 1).encode(), report(&n3, 9).encode()];
    s.write("node_table", &[table.encode(), NodeTable::new().encode()]);
    s.write("capacity_report", &reports);
    s.write("manifest", &[m1.encode(), m2.encode()]);

    let del = FileDelete::new(&owner, "photos/a.jpg".into(), 2, 4_000);
    let rel = ChunkRelease::new(&n1, chunk(0), owner.user_id(), 2_000, 3_000);
    let tomb = Tombstone::Delete(del.clone());
    s.write(
        "tombstone",
        &[
            tomb.encode(),
            Tombstone::Release(rel.clone()).encode(),
            del.encode(),
            rel.encode(),
        ],
    );
    let rc = receipt(&n1, &owner, 0, 2_000);
    s.write(
        "receipt",
        &[rc.encode(), receipt(&n2, &other, 3, 9).encode()],
    );
    let grant = ReservationGrant::new(&n1, [3; 16], owner.user_id(), 1 << 20, 60_000);
    s.write("reservation_grant", &[grant.encode()]);

    let hops = vec![
        ChainHop {
            node: n1.node_id(),
            reservation_id: [1; 16],
        },
        ChainHop {
            node: n2.node_id(),
            reservation_id: [2; 16],
        },
        ChainHop {
            node: n3.node_id(),
            reservation_id: [3; 16],
        },
    ];
    let chain = HeaderChain::new(&owner, chunk(0), CHUNK_LEN, (r1.record_key(), 1), hops)
        .expect("a valid chain");
    let forwarded = chain.forwarded().expect("a next hop");
    s.write("header_chain", &[chain.encode(), forwarded.encode()]);
    let fetch = FetchRequest::new(
        &owner,
        chunk(0),
        r1.record_key(),
        n1.node_id(),
        7_000,
        [4; 16],
    );
    s.write("fetch_request", &[fetch.encode()]);
    let audit = AuditChallenge::new(chunk(0), CHUNK_LEN, [6; 48]);
    s.write(
        "audit_challenge",
        &[msg(&audit), msg(&AuditChallenge::new(chunk(1), 0, [1; 48]))],
    );
    let admin = [
        AdminRequest::new(
            &n1,
            AdminOp::Donate(DonationCap::Percent(20)),
            8_000,
            [5; 16],
        ),
        AdminRequest::new(
            &n1,
            AdminOp::Donate(DonationCap::Bytes(1 << 40)),
            8_000,
            [6; 16],
        ),
        AdminRequest::new(&n2, AdminOp::Leave, 8_000, [7; 16]),
        AdminRequest::new(&n2, AdminOp::Donation, 8_000, [8; 16]),
    ];
    s.write("admin_request", &admin.each_ref().map(|a| a.encode()));
    let mut rep = ReputationRecord::default();
    rep.record_audit(AuditOutcome::Pass, 1_000);
    rep.record_get(FetchOutcome::Slow, 2_000);
    rep.record_liveness(true, 3_000);
    s.write(
        "reputation",
        &[rep.encode(), ReputationRecord::default().encode()],
    );

    let file_key = RecordKey::File(r1.record_key()).to_bytes();
    let dir_key = RecordKey::Dir(owner.user_id()).to_bytes();
    s.write(
        "ctl_request",
        &[
            msg(&CtlRequest::TableExchange {
                table: table.encode(),
            }),
            msg(&CtlRequest::Probe { nonce: 5 }),
            msg(&CtlRequest::Peers),
            msg(&CtlRequest::Status),
            msg(&CtlRequest::Settle(ifs_core::wire::SettleRequest::new(
                &owner,
                n1.node_id(),
                [3; 16],
                6_000,
            ))),
            msg(&CtlRequest::GetRecord {
                key: file_key.clone(),
            }),
            msg(&CtlRequest::PutRecord {
                key: file_key,
                value: files[0].clone(),
            }),
            msg(&CtlRequest::PutRecord {
                key: dir_key,
                value: dir.encode(),
            }),
            msg(&CtlRequest::Forget {
                tombstone: tomb.encode(),
                chunks: vec![chunk(0), chunk(1)],
            }),
            msg(&CtlRequest::ReportResults {
                results: vec![
                    (n1.node_id(), FetchOutcome::Ok),
                    (n2.node_id(), FetchOutcome::Failed),
                ],
            }),
            msg(&CtlRequest::Audit(audit)),
            msg(&CtlRequest::Reserve(ifs_core::wire::ReserveRequest::new(
                &owner,
                n1.node_id(),
                1 << 20,
                600_000,
                6_000,
            ))),
            msg(&CtlRequest::Admin(admin[0].clone())),
        ],
    );
    s.write(
        "ctl_response",
        &[
            msg(&CtlResponse::Table {
                table: table.encode(),
            }),
            msg(&CtlResponse::Pong { nonce: 5, load: 2 }),
            msg(&CtlResponse::Granted(grant)),
            msg(&CtlResponse::Record(Some(files[1].clone()))),
            msg(&CtlResponse::Record(None)),
            msg(&CtlResponse::Done),
            msg(&CtlResponse::Error(CtlError::Full {
                needed: 10,
                free: 2,
            })),
            msg(&CtlResponse::Error(CtlError::Invalid("bad".into()))),
            msg(&CtlResponse::AuditProof([9; 32])),
            msg(&CtlResponse::Donation(DonationStatus {
                donated_bytes: 1 << 30,
                used_bytes: 1 << 20,
                excess_bytes: 0,
                leaving: false,
            })),
        ],
    );
    s.write(
        "stream_open",
        &[
            msg(&StreamOpen::Store {
                chain: chain.clone(),
            }),
            msg(&StreamOpen::Store { chain: forwarded }),
            msg(&StreamOpen::Fetch(fetch)),
            msg(&StreamOpen::Replica {
                record: r1.record_key(),
                chunk: chunk(0),
                len: CHUNK_LEN,
            }),
            msg(&StreamOpen::PeerFetch {
                record: r1.record_key(),
                chunk: chunk(1),
            }),
        ],
    );
    s.write(
        "store_reply",
        &[
            msg(&StoreReply {
                receipts: vec![rc, receipt(&n2, &owner, 0, 2_001)],
                failure: None,
            }),
            msg(&StoreReply {
                receipts: vec![],
                failure: Some((n3.node_id(), "full".into())),
            }),
        ],
    );
    s.write(
        "fetch_reply",
        &[
            msg(&FetchReply::Ok { len: CHUNK_LEN }),
            msg(&FetchReply::Error(CtlError::UnknownReservation)),
        ],
    );
    s.write(
        "store_row",
        &[
            msg(&ChunkRow {
                len: 9_000_000,
                owner: owner.user_id(),
                pieces: vec![
                    PieceRow {
                        volume: 0,
                        name: "ab12.0.1".into(),
                        len: 4 << 20,
                    },
                    PieceRow {
                        volume: 1,
                        name: "ab12.1.1".into(),
                        len: 9_000_000 - (4 << 20),
                    },
                ],
                stored_ms: 12_000,
            }),
            msg(&ReservationRow {
                bytes: 1 << 20,
                used: 4096,
                expires_ms: 60_000,
                closed: false,
            }),
        ],
    );
    s.write(
        "node_config",
        &[
            b"data_dir = \"/var/lib/ifs\"\nvolumes = [\"/var/lib/ifs/v\"]\n".to_vec(),
            b"data_dir = \"/d\"\nowner_reserve_pct = 15\nlisten = [\"/ip4/0.0.0.0/tcp/4100\", \"/ip4/0.0.0.0/udp/4101/quic-v1\"]\nbootstrap = [\"/ip4/10.0.0.1/tcp/4100/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\"]\nmdns = true\nvolumes = [\"/d/a:20%\", \"/mnt/b:500G\", \"/mnt/c:1T\"]\nreservation_ttl_secs = 300\n\n[capacity]\ninterval_secs = 5\nsuspect_after_intervals = 2\ndead_after_intervals = 6\n".to_vec(),
            b"data_dir = \"/d\"\nleaving = true\nvolumes = [\"/d/v:0\"]\n".to_vec(),
        ],
    );
    s.write(
        "node_key",
        &[n1.to_bytes().to_vec(), owner.to_bytes(), other.to_bytes()],
    );
    let mut probe = b"IFSH\x01\x01\x00\x00".to_vec();
    probe.extend_from_slice(&[0x42; 16]);
    let mut reply = b"IFSH\x01\x02\x3c\x00".to_vec();
    reply.extend_from_slice(&[0x42; 16]);
    s.write("hop_probe", &[probe, reply]);
}
