//! The data path in one process: five real nodes on loopback, a client that
//! puts through one and gets through another.

use std::io::Cursor;
use std::time::Duration;

use ifs_client::{
    GetOptions, LsOptions, PutError, PutOptions, Segments, Session, SmallFiles, TreeOptions,
    Upload, get, ls, put, rm,
};
use ifs_core::codec::CodecParams;
use ifs_core::keys::{NodeKey, UserKey};
use ifs_net::Multiaddr;
use ifs_node::{Node, NodeConfig, NodeHandle};
use ifs_store::{Cap, StoreConfig, VolumeSpec};

struct Net {
    nodes: Vec<NodeHandle>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start(n: usize) -> Net {
    start_with(n, |_| {}).await
}

async fn start_with(n: usize, tune: impl Fn(&mut NodeConfig)) -> Net {
    let mut nodes: Vec<NodeHandle> = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        let store = StoreConfig::new(
            dir.path(),
            vec![VolumeSpec {
                path: vol,
                cap: Cap::Bytes(512 << 20),
            }],
        );
        let key = NodeKey::generate(&mut rand::rng());
        let mut cfg = NodeConfig::new(key, dir.path().to_path_buf(), store);
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        cfg.capacity_interval = Duration::from_millis(300);
        if let Some(first) = nodes.first() {
            cfg.bootstrap = first.addrs();
        }
        tune(&mut cfg);
        nodes.push(Node::spawn(cfg).await.unwrap());
        dirs.push(dir);
    }
    // Wait until every node sees every node alive (no timing assertion:
    // the test only needs the tables to converge).
    for _ in 0..600 {
        let ready = nodes
            .iter()
            .all(|h| h.peers().iter().filter(|r| r.state == "alive").count() == n);
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Net { nodes, _dirs: dirs }
}

fn addr(h: &NodeHandle) -> Multiaddr {
    h.addrs()
        .into_iter()
        .find(|a| a.to_string().contains("/tcp/"))
        .unwrap()
}

fn opts(name: &str, size: usize) -> PutOptions {
    let mut o = PutOptions::new(name);
    o.codec = CodecParams::with_segment_size(256 << 10);
    o.size_hint = Some(size as u64);
    o
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::fill(&mut v[..]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_through_one_node_get_through_another_then_rm() {
    let net = start(5).await;
    let user = UserKey::generate(&mut rand::rng());
    let data = random_bytes(3 << 20);

    let s1 = Session::connect(addr(&net.nodes[0])).await.unwrap();
    let report = put(
        &s1,
        &user,
        Cursor::new(data.clone()),
        opts("a.bin", data.len()),
    )
    .await
    .unwrap();
    assert_eq!(report.size, data.len() as u64);
    assert!(report.chunks.len() >= 12);
    for c in &report.chunks {
        let mut nodes: Vec<_> = c.receipts.iter().map(|r| r.node).collect();
        nodes.sort();
        nodes.dedup();
        assert_eq!(nodes.len(), 3, "chunk {} has 3 distinct holders", c.index);
    }

    let s5 = Session::connect(addr(&net.nodes[4])).await.unwrap();
    let (got, out) = get(&s5, &user, "a.bin", Vec::new(), GetOptions::default())
        .await
        .unwrap();
    assert_eq!(got.size, data.len() as u64);
    assert!(out == data, "bytes differ");

    let with_replicas = LsOptions {
        replicas: true,
        ..LsOptions::default()
    };
    let files = ls(&s5, &user, &with_replicas).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "a.bin");
    assert_eq!(files[0].min_live_replicas, Some(3));

    rm(&s1, &user, "a.bin").await.unwrap();
    assert!(
        ls(&s5, &user, &LsOptions::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        get(&s5, &user, "a.bin", Vec::new(), GetOptions::default()).await,
        Err(ifs_client::GetError::NotFound(_))
    ));
    for h in net.nodes {
        assert_eq!(h.status().await.chunks, 0, "rm freed every copy");
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_forged_chunks_and_foreign_fetches_are_refused_with_typed_errors() {
    use ifs_client::transfer::{fetch_chunk, send_chunk};
    use ifs_client::{FetchError, GetError};
    use ifs_core::proto::CtlError;
    use ifs_core::wire::{ChainHop, FetchRequest, HeaderChain};

    let net = start(3).await;
    let owner = UserKey::generate(&mut rand::rng());
    let stranger = UserKey::generate(&mut rand::rng());
    let data = random_bytes(100_000);
    let s = Session::connect(addr(&net.nodes[0])).await.unwrap();
    let mut o = opts("mine", data.len());
    o.replicas = 1;
    let report = put(&s, &owner, Cursor::new(data), o).await.unwrap();
    let chunk = &report.chunks[0];
    let holder = chunk.receipts[0].node;
    let peer = ifs_net::node_id_to_peer_id(&holder).unwrap();
    let record =
        ifs_core::file_record::FileRecord::key(&owner.user_id(), &owner.file_handle("mine"));

    // A fetch signed by a stranger: the holder refuses it.
    let req = FetchRequest::new(&stranger, chunk.id, record, holder, now(), [1; 16]);
    let got = fetch_chunk(s.net(), peer, &req, &chunk.id, chunk.len, Vec::new()).await;
    assert!(
        matches!(got, Err(FetchError::Refused(CtlError::Denied(_)))),
        "{got:?}"
    );
    // The owner's own fetch works and is checked against the id.
    let req = FetchRequest::new(&owner, chunk.id, record, holder, now(), [2; 16]);
    let bytes = fetch_chunk(s.net(), peer, &req, &chunk.id, chunk.len, Vec::new())
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(ifs_core::ChunkId::of(&bytes), chunk.id);

    // The stranger's namespace has no such file.
    assert!(matches!(
        get(&s, &stranger, "mine", Vec::new(), GetOptions::default()).await,
        Err(GetError::NotFound(_))
    ));

    // Bytes that do not match the chain's chunk id: no receipt, a failure named.
    let fake = vec![7u8; 1000];
    let node = net.nodes[1].node_id();
    let grant = match s
        .request_to(
            net.nodes[1].peer_id(),
            &ifs_core::proto::CtlRequest::Reserve(ifs_core::wire::ReserveRequest::new(
                &owner,
                node,
                4096,
                60_000,
                now(),
            )),
        )
        .await
        .unwrap()
    {
        ifs_core::proto::CtlResponse::Granted(g) => g,
        other => panic!("{other:?}"),
    };
    let chain = HeaderChain::new(
        &owner,
        ifs_core::ChunkId::of(b"something else"),
        fake.len() as u64,
        (
            ifs_core::file_record::FileRecord::key(&owner.user_id(), &owner.file_handle("fake")),
            1,
        ),
        vec![ChainHop {
            node,
            reservation_id: grant.reservation_id,
        }],
    )
    .unwrap();
    let reply = send_chunk(s.net(), net.nodes[1].peer_id(), &chain, &fake)
        .await
        .unwrap();
    assert!(reply.receipts.is_empty());
    assert_eq!(reply.failure.map(|(n, _)| n), Some(node));
    for h in net.nodes {
        h.shutdown().await;
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_put_is_replaced_by_resends_to_alternates() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let mut net = start(5).await;
    let user = UserKey::generate(&mut rand::rng());
    let data = random_bytes(8 << 20);
    let s = Session::connect(addr(&net.nodes[0])).await.unwrap();
    let victim = net.nodes.remove(2);
    let victim_id = victim.node_id();
    let progress = Arc::new(AtomicU64::new(0));
    let watched = progress.clone();
    // Kill the node once a quarter of the file is placed (progress, not time).
    let killer = tokio::spawn(async move {
        while watched.load(Ordering::Relaxed) < (2 << 20) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        victim.shutdown().await;
    });
    let mut o = opts("big.bin", data.len());
    o.in_flight = 1;
    o.progress = Some(progress);
    let report = put(&s, &user, Cursor::new(data.clone()), o).await.unwrap();
    killer.await.unwrap();
    let mut after_kill = 0;
    for c in &report.chunks {
        let nodes: std::collections::BTreeSet<_> = c.receipts.iter().map(|r| r.node).collect();
        assert_eq!(nodes.len(), 3, "chunk {} has 3 distinct holders", c.index);
        if c.chain.contains(&victim_id) && !nodes.contains(&victim_id) {
            after_kill += 1;
        }
    }
    assert!(
        after_kill > 0,
        "some chunk was resent around the killed node"
    );
    let s5 = Session::connect(addr(&net.nodes[3])).await.unwrap();
    let (_, out) = get(&s5, &user, "big.bin", Vec::new(), GetOptions::default())
        .await
        .unwrap();
    assert!(out == data);
    for h in net.nodes {
        h.shutdown().await;
    }
}

/// The segments `range` of `data` at `seg` bytes each, as one part.
fn part(
    data: &[u8],
    seg: usize,
    range: std::ops::Range<usize>,
    last: bool,
) -> Segments<Cursor<Vec<u8>>> {
    let bytes = data[range.start * seg..(range.end * seg).min(data.len())].to_vec();
    Segments {
        first_index: range.start as u32,
        size_hint: Some(bytes.len() as u64),
        exact_size: true,
        data: Cursor::new(bytes),
        last,
        keep_placed: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_placed_out_of_order_and_at_once_commit_with_the_last_sealed_again() {
    let net = start(4).await;
    let user = UserKey::generate(&mut rand::rng());
    let seg = 64 << 10;
    // Six whole segments: the final part is full-sized, so nothing told
    // the upload it ends the file until the commit.
    let data = random_bytes(6 * seg);
    let mut o = opts("parts.bin", data.len());
    o.codec = CodecParams::with_segment_size(seg);
    let s1 = Session::connect(addr(&net.nodes[0])).await.unwrap();
    let up = Upload::begin(&s1, &user, o.clone()).await.unwrap();

    // The last part and the first at once, none marked as ending the file.
    let (c, a) = tokio::join!(
        up.put_segments(&s1, &user, part(&data, seg, 4..6, false)),
        up.put_segments(&s1, &user, part(&data, seg, 0..2, false)),
    );
    assert_eq!(c.unwrap().len(), 2);
    assert_eq!(a.unwrap().len(), 2);
    match up.commit(&s1, &user, data.len() as u64).await {
        Err(PutError::Incomplete { missing }) => assert_eq!(missing, vec![2, 3]),
        other => panic!("a commit with a hole: {other:?}"),
    }
    // A part that does not end the file must hold whole segments.
    let short = Segments {
        first_index: 2,
        size_hint: None,
        exact_size: false,
        data: Cursor::new(data[2 * seg..3 * seg - 1].to_vec()),
        last: false,
        keep_placed: false,
    };
    assert!(matches!(
        up.put_segments(&s1, &user, short).await,
        Err(PutError::NotWholeSegments { index: 2, .. })
    ));
    // A part that is not the exact size it declared fails, whether it
    // holds a byte more or a byte less.
    for (declared, held) in [(seg, seg - 1), (seg - 1, seg)] {
        let wrong = Segments {
            first_index: 2,
            size_hint: Some(declared as u64),
            exact_size: true,
            data: Cursor::new(data[2 * seg..2 * seg + held].to_vec()),
            last: false,
            keep_placed: false,
        };
        let got = up.put_segments(&s1, &user, wrong).await;
        assert!(
            matches!(got, Err(PutError::Codec(_))),
            "{declared} {held}: {got:?}"
        );
    }

    // Saved, loaded by another process, finished there.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("parts.put");
    up.save(&state).unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&state).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the state holds the file key");
    let stranger = UserKey::generate(&mut rand::rng());
    assert!(matches!(
        Upload::load(&state, &stranger, o.clone()),
        Err(PutError::StateMismatch { .. })
    ));
    let up = Upload::load(&state, &user, o).unwrap();
    assert_eq!(up.placed().len(), 4);
    up.put_segments(&s1, &user, part(&data, seg, 2..4, false))
        .await
        .unwrap();
    let report = up.commit(&s1, &user, data.len() as u64).await.unwrap();
    assert_eq!(report.chunks.len(), 6);
    assert!(
        report.chunks[5].last,
        "the top chunk was sealed again as last"
    );

    let s4 = Session::connect(addr(&net.nodes[3])).await.unwrap();
    let (got, out) = get(&s4, &user, "parts.bin", Vec::new(), GetOptions::default())
        .await
        .unwrap();
    assert_eq!(got.size, data.len() as u64);
    assert!(out == data, "bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_put_sends_again_the_chunks_nodes_collected_meanwhile() {
    // Nodes that collect an uncommitted chunk after three seconds.
    let net = start_with(4, |cfg| {
        cfg.durability.repair_interval = Duration::from_millis(300);
        cfg.durability.collect_after = Duration::from_secs(3);
    })
    .await;
    let user = UserKey::generate(&mut rand::rng());
    let seg = 64 << 10;
    let data = random_bytes(5 * seg + 1000);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let state = dir.path().join("src.put");
    let mut o = opts("collected.bin", data.len());
    o.codec = CodecParams::with_segment_size(seg);
    o.resume_window = Duration::from_secs(1);
    let s1 = Session::connect(addr(&net.nodes[0])).await.unwrap();

    // A first run places three segments, then stops.
    let mut up = Upload::begin(&s1, &user, o.clone()).await.unwrap();
    up.persist_to(&state);
    let first = up
        .put_segments(&s1, &user, part(&data, seg, 0..3, false))
        .await
        .unwrap();
    drop(up);
    let held = |id| {
        let nodes = &net.nodes;
        async move {
            let mut n = 0;
            for h in nodes {
                n += usize::from(h.store().contains(id).await.unwrap());
            }
            n
        }
    };
    for _ in 0..300 {
        if held(first[0].id).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        held(first[0].id).await,
        0,
        "the nodes never collected the chunk"
    );

    // The resumed put trusts none of them any more and sends them again.
    let mut heard = None;
    let file = std::fs::File::open(&src).unwrap();
    let report = ifs_client::put_file(&s1, &user, file, data.len() as u64, o, &state, |r| {
        heard = Some(r)
    })
    .await
    .unwrap();
    assert_eq!(heard, None, "stale chunks are not reported as stored");
    assert!(!state.exists(), "the state is removed once committed");
    for c in &report.chunks {
        assert!(held(c.id).await >= 3, "chunk {} is on 3 nodes", c.index);
    }
    let s4 = Session::connect(addr(&net.nodes[3])).await.unwrap();
    let (_, out) = get(
        &s4,
        &user,
        "collected.bin",
        Vec::new(),
        GetOptions::default(),
    )
    .await
    .unwrap();
    assert!(out == data, "bytes differ");
}

/// Chunks every node has served to fetches so far (its
/// `ifs_chunk_operations_total{op="fetch",result="ok"}`), summed.
async fn fetches_served(net: &Net) -> u64 {
    metric_sum(net, r#"ifs_chunk_operations_total{op="fetch",result="ok"}"#).await
}

/// The counter `series` summed over every node.
async fn metric_sum(net: &Net, series: &str) -> u64 {
    let mut total = 0.0;
    for h in &net.nodes {
        let text = h.observer().metrics_text(false).await;
        total += text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    total as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reads_fetch_only_the_chunks_and_pages_that_hold_the_range() {
    use futures::StreamExt;
    use ifs_client::{GetError, RangeReader};
    use ifs_core::wire::PAGE_CHUNKS;

    let net = start(3).await;
    let user = UserKey::generate(&mut rand::rng());
    // 1 KiB segments: the root lists 112 chunks, pages 1 and 2 the rest;
    // the last chunk is short.
    let seg = 1024u64;
    let chunks = 2 * PAGE_CHUNKS as u64 + 40;
    let data = random_bytes((chunks * seg - 300) as usize);
    let size = data.len() as u64;
    let s1 = Session::connect(addr(&net.nodes[0])).await.unwrap();
    let mut o = PutOptions::new("paged.bin");
    o.codec = CodecParams::with_segment_size(seg as usize);
    o.size_hint = Some(size);
    o.replicas = 2;
    let put_report = put(&s1, &user, Cursor::new(data.clone()), o).await.unwrap();
    assert_eq!(put_report.chunks.len() as u64, chunks);

    let s2 = Session::connect(addr(&net.nodes[1])).await.unwrap();
    let page1 = PAGE_CHUNKS as u64 * seg;
    let page2 = 2 * page1;
    // (what, offset, length asked, chunks that hold it)
    let cases: &[(&str, u64, u64, u64)] = &[
        ("the first chunk exactly", 0, seg, 1),
        ("two whole chunks from a boundary", 5 * seg, 2 * seg, 2),
        ("inside one chunk", 10 * seg + 100, 200, 1),
        ("one byte either side of a boundary", 20 * seg - 1, 2, 2),
        ("from the root into page 1", page1 - 1500, 3000, 4),
        ("from page 1 into page 2", page2 - 10, 20, 2),
        ("the last byte", size - 1, 1, 1),
        ("past the end, cut there", size - 1000, 1 << 20, 2),
        ("the whole file", 0, u64::MAX, chunks),
    ];
    for &(what, offset, asked, want_chunks) in cases {
        let reader = RangeReader::open(&s2, &user, None, "paged.bin", &GetOptions::default())
            .await
            .unwrap();
        assert_eq!(reader.size(), size);
        let before = fetches_served(&net).await;
        let (len, stream) = reader.read(offset, asked).unwrap();
        let pieces: Vec<Vec<u8>> = stream.map(|p| p.unwrap()).collect().await;
        let end = (offset + len) as usize;
        assert_eq!(end as u64, size.min(offset.saturating_add(asked)), "{what}");
        assert!(
            pieces.iter().all(|p| p.len() as u64 <= seg),
            "{what}: pieces of at most one segment"
        );
        let got: Vec<u8> = pieces.concat();
        assert!(got == data[offset as usize..end], "{what}: bytes differ");
        let served = fetches_served(&net).await - before;
        assert_eq!(served, want_chunks, "{what}: chunks the nodes served");
        let report = reader.finish().await;
        assert_eq!(report.chunks_fetched, want_chunks, "{what}: chunks fetched");
    }

    // Only the pages listing the range are read.
    let pages_for = async |offset: u64, len: u64| {
        let reader = RangeReader::open(&s2, &user, None, "paged.bin", &GetOptions::default())
            .await
            .unwrap();
        let (_, stream) = reader.read(offset, len).unwrap();
        stream
            .for_each(|p| async move {
                p.unwrap();
            })
            .await;
        reader.finish().await.pages_loaded
    };
    assert_eq!(pages_for(0, 100).await, 0, "the root alone");
    assert_eq!(pages_for(page2 + 5, 100).await, 1, "page 2 alone");
    assert_eq!(pages_for(page1 - 1, 2).await, 1, "the root and page 1");
    assert_eq!(pages_for(0, size).await, 2, "every page");

    // A stream nobody reads fetches no further than the chunks in flight.
    let reader = RangeReader::open(&s2, &user, None, "paged.bin", &GetOptions::default())
        .await
        .unwrap();
    let before = fetches_served(&net).await;
    let (_, stream) = reader.read(0, size).unwrap();
    let mut stream = Box::pin(stream);
    let first = stream.next().await.unwrap().unwrap();
    assert!(first == data[..seg as usize]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ahead = fetches_served(&net).await - before;
    let in_flight = GetOptions::default().in_flight as u64;
    assert!(
        ahead <= in_flight,
        "{ahead} chunks fetched while one was read ({in_flight} in flight)"
    );
    drop(stream);

    // Ranges from the end on are refused with a typed error; an empty one
    // at the end is served, empty.
    assert!(matches!(
        reader.read(size, 1).err(),
        Some(GetError::RangeNotSatisfiable { offset, size: s, .. }) if offset == size && s == size
    ));
    assert!(matches!(
        reader.read(size + 7, 0).err(),
        Some(GetError::RangeNotSatisfiable { .. })
    ));
    let (len, stream) = reader.read(size, 0).unwrap();
    assert_eq!(len, 0);
    assert_eq!(stream.count().await, 0);
    for h in net.nodes {
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_upload_of_a_new_name_frees_its_chunks_at_once() {
    let net = start(4).await;
    let user = UserKey::generate(&mut rand::rng());
    let seg = 64 << 10;
    let data = random_bytes(3 * seg);
    let mut o = opts("aborted.bin", data.len());
    o.codec = CodecParams::with_segment_size(seg);
    let s1 = Session::connect(addr(&net.nodes[0])).await.unwrap();
    let up = Upload::begin(&s1, &user, o).await.unwrap();
    let placed = up
        .put_segments(&s1, &user, part(&data, seg, 0..2, false))
        .await
        .unwrap();
    let report = up.abort(&s1, &user).await.unwrap();
    assert_eq!(report.chunks, 2);
    assert!(report.holders_told >= 3, "{report:?}");
    for c in &placed {
        for h in &net.nodes {
            assert!(
                !h.store().contains(c.id).await.unwrap(),
                "chunk {} kept",
                c.index
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_in_flight_at_once_share_one_table_and_its_reservations() {
    // An S3 client sends parts many at a time. Had each part probed and
    // reserved on its own, as many as there are parts at once would each
    // ask R nodes for a reservation, and settle it after.
    let net = start(4).await;
    let user = UserKey::generate(&mut rand::rng());
    let seg = 64 << 10;
    let parts = 8;
    let data = random_bytes(2 * parts * seg);
    let mut o = opts("shared.bin", data.len());
    o.codec = CodecParams::with_segment_size(seg);
    let s1 = Session::connect(addr(&net.nodes[0])).await.unwrap();
    let granted = r#"ifs_reservations_total{result="granted"}"#;
    let before = metric_sum(&net, granted).await;
    let up = Upload::begin(&s1, &user, o).await.unwrap();
    // Two waves of eight parts at once, one segment each.
    for wave in 0..2 {
        let all = (0..parts).map(|i| {
            let at = wave * parts + i;
            up.put_segments(&s1, &user, part(&data, seg, at..at + 1, false))
        });
        for placed in futures::future::join_all(all).await {
            assert_eq!(placed.unwrap().len(), 1);
        }
    }
    up.commit(&s1, &user, data.len() as u64).await.unwrap();
    let asked = metric_sum(&net, granted).await - before;
    // One table: a reservation per node, then top-ups that double.
    assert!(
        asked < (parts * 3) as u64,
        "{asked} reservations for {} parts of R=3",
        2 * parts
    );
    let (_, out) = get(&s1, &user, "shared.bin", Vec::new(), GetOptions::default())
        .await
        .unwrap();
    assert!(out == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_of_small_files_share_one_warm_table() {
    // A gateway sends the small objects that arrive while it is busy as
    // one pack, batch after batch. Had each batch probed and reserved on
    // its own, every batch would ask R nodes for a reservation.
    let net = start(4).await;
    let user = UserKey::generate(&mut rand::rng());
    let s1 = Session::connect(addr(&net.nodes[0])).await.unwrap();
    let granted = r#"ifs_reservations_total{result="granted"}"#;
    let before = metric_sum(&net, granted).await;
    let sender = SmallFiles::default();
    let batches = 6;
    let mut written = Vec::new();
    for b in 0..batches {
        let files: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| (format!("small/b{b}/f{i}"), random_bytes(3000 + 100 * i)))
            .collect();
        let outcome = sender
            .put(&s1, &user, files.clone(), &TreeOptions::default())
            .await
            .unwrap();
        assert!(outcome.iter().all(|o| o.is_ok()), "{outcome:?}");
        written.extend(files);
    }
    sender.close(&s1, &user).await;
    let asked = metric_sum(&net, granted).await - before;
    assert!(
        asked < (batches * 3) as u64,
        "{asked} reservations for {batches} batches of R=3"
    );
    // Every file reads back through another node.
    let s2 = Session::connect(addr(&net.nodes[2])).await.unwrap();
    for (name, data) in &written {
        let (_, out) = get(&s2, &user, name, Vec::new(), GetOptions::default())
            .await
            .unwrap();
        assert!(out == *data, "{name}");
    }
}
