//! Placing one chunk: send it once along a header chain of R nodes, verify
//! the receipts that come back, and resend to alternates until R distinct
//! nodes hold it or the preliminary table is exhausted.
//!
//! The chunks of one put share what goes wrong: a node the client cannot
//! reach, or that refuses a reservation, is dropped for the rest of the put;
//! a link a chain broke on (a cut subnet) is not chained across again; a
//! node charged with failures goes to the end of later chains.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ifs_core::NodeId;
use ifs_core::codec::EncodedChunk;
use ifs_core::keys::UserKey;
use ifs_core::wire::{ChainHop, ChunkRef, HeaderChain, Receipt};
use ifs_net::PeerId;
use tracing::{debug, info, warn};

use crate::error::{PutError, ReceiptError};
use crate::plan::{Hazards, accept_receipts, blame, node_name, resend_targets};
use crate::put::{PlacedChunk, TableAsk, open_table};
use crate::reserve::{Book, reserve, settle_all};
use crate::session::Session;
use crate::transfer::send_chunk;

/// Attempts per node and chunk before the node is passed over for it.
const MAX_TRIES_PER_NODE: usize = 2;

/// A placer's table, shared: every part of an upload in flight at once
/// places through one table (one probe, one set of reservations, one set
/// of dropped nodes), as the chunks of one put do, instead of each part
/// probing and reserving for itself.
#[derive(Clone, Debug)]
pub struct WarmTable {
    ranked: Vec<NodeId>,
    peers: HashMap<NodeId, PeerId>,
    /// Nodes that list a relay circuit: behind NAT, reachable for chunks
    /// only once a hole punch worked, or over connections they opened.
    behind_nat: HashSet<NodeId>,
    replicas: usize,
    topup: u64,
    book: Arc<Mutex<Book>>,
    /// Held per node while a top-up is asked for: chunks that find no
    /// room on a node at once wait for one top-up instead of each asking
    /// for one (a slow node holds up only its own).
    topping_up: TopUps,
    /// Nodes dropped for the rest of this put: the client could not open a
    /// stream to them, or they refused a reservation.
    dropped: Arc<Mutex<HashSet<NodeId>>>,
    /// Broken links and failures seen so far in this put.
    hazards: Arc<Mutex<Hazards>>,
}

/// One lock per node, held while a top-up from it is asked for.
type TopUps = Arc<Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>>>;

impl WarmTable {
    /// Whether enough nodes not dropped are left to place `replicas` copies.
    pub fn usable(&self, replicas: usize) -> bool {
        let dropped = lock(&self.dropped);
        self.ranked.iter().filter(|n| !dropped.contains(n)).count() >= replicas
    }

    /// Take every reservation held out of the table, to settle them; the
    /// table holds none afterwards.
    pub fn take_book(&self) -> Book {
        std::mem::take(&mut *lock(&self.book))
    }
}

/// How long a warm table is used for the next part or batch: well inside
/// the reservations' lifetime ([`crate::RESERVATION_TTL`]).
const WARM_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// A table kept warm across the parts of one upload, or across a
/// gateway's batches of small files: each starts from it instead of
/// probing and reserving again. A table older than [`WARM_FOR`], or with
/// fewer than R nodes left, is retired and a new one opened; a retired
/// table keeps its reservations until [`WarmSlot::settle`] (parts still
/// in flight may place through it).
#[derive(Default)]
pub(crate) struct WarmSlot {
    warm: Mutex<Option<(std::time::Instant, WarmTable)>>,
    /// Held while a table is opened: parts that start together wait for
    /// one table instead of each probing and reserving.
    opening: tokio::sync::Mutex<()>,
    retired: Mutex<Vec<WarmTable>>,
}

impl WarmSlot {
    /// The warm table, or a new one for `ask` when there is none usable.
    pub(crate) async fn table(
        &self,
        session: &Session,
        key: &UserKey,
        ask: &TableAsk,
        max_chunk: u64,
    ) -> Result<WarmTable, PutError> {
        let replicas = ask.replicas.max(1);
        let current = || {
            lock(&self.warm)
                .as_ref()
                .filter(|(at, t)| at.elapsed() < WARM_FOR && t.usable(replicas))
                .map(|(_, t)| t.clone())
        };
        if let Some(t) = current() {
            return Ok(t);
        }
        let _opening = self.opening.lock().await;
        // Another part may have opened one while this one waited.
        if let Some(t) = current() {
            return Ok(t);
        }
        let fresh = open_table(session, key, ask, max_chunk).await?.table();
        let old = lock(&self.warm).replace((std::time::Instant::now(), fresh.clone()));
        if let Some((_, old)) = old {
            lock(&self.retired).push(old);
        }
        Ok(fresh)
    }

    /// Settle the reservations of the retired tables, and of the warm one
    /// too when `all` (nothing places through them any more).
    pub(crate) async fn settle(&self, session: &Session, key: &UserKey, all: bool) {
        let mut tables: Vec<WarmTable> = std::mem::take(&mut *lock(&self.retired));
        if all {
            tables.extend(lock(&self.warm).take().map(|(_, t)| t));
        }
        for t in tables {
            settle_all(session, key, &t.take_book()).await;
        }
    }
}

/// Shared state of the chunks of one put (or of every part of an upload
/// in flight at once: see [`WarmTable`]).
pub struct Placer<'a> {
    session: &'a Session,
    key: &'a UserKey,
    t: WarmTable,
}

/// A top-up asks for what the node has granted this table so far when that
/// is more than the table's top-up (so the reservations of a put of
/// unknown length double as it goes on and it asks O(log n) times), up to
/// this many times the table's top-up.
const MAX_TOPUP_GROWTH: u64 = 8;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps half-updated in a harmful way.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<'a> Placer<'a> {
    /// A placer over the preliminary table `ranked` (best first).
    pub fn new(
        session: &'a Session,
        key: &'a UserKey,
        ranked: Vec<NodeId>,
        peers: HashMap<NodeId, PeerId>,
        book: Book,
        (replicas, topup): (usize, u64),
    ) -> Self {
        let t = WarmTable {
            ranked,
            peers,
            behind_nat: HashSet::new(),
            replicas,
            topup,
            book: Arc::new(Mutex::new(book)),
            topping_up: TopUps::default(),
            dropped: Arc::default(),
            hazards: Arc::default(),
        };
        Placer { session, key, t }
    }

    /// Mark the nodes behind NAT; see [`interleave_behind_nat`].
    pub fn with_behind_nat(mut self, nodes: HashSet<NodeId>) -> Self {
        self.t.behind_nat = nodes;
        self
    }

    /// A placer over `t`, sharing its reservations, dropped nodes and
    /// hazards with every other placer over it.
    pub fn warm(session: &'a Session, key: &'a UserKey, t: &WarmTable) -> Self {
        let t = t.clone();
        Placer { session, key, t }
    }

    /// This placer's table, to share with the next parts of the same
    /// upload ([`Self::warm`]).
    pub fn table(&self) -> WarmTable {
        self.t.clone()
    }

    /// The reservations held, to settle them (taken out of the table).
    pub fn into_book(self) -> Book {
        self.t.take_book()
    }

    /// A reservation on `node` with room for `len`, topping up if needed.
    async fn slot(&self, node: &NodeId, len: u64) -> Result<[u8; 16], String> {
        if let Some(id) = lock(&self.t.book).take(node, len) {
            return Ok(id);
        }
        let peer = *self.t.peers.get(node).ok_or("unknown node")?;
        let node_lock = lock(&self.t.topping_up).entry(*node).or_default().clone();
        let _one_at_a_time = node_lock.lock().await;
        // A top-up that ran while this chunk waited may have made room.
        if let Some(id) = lock(&self.t.book).take(node, len) {
            return Ok(id);
        }
        // A node that is nearly full, or that caps what one user may hold
        // unwritten, may refuse a full top-up but still take this chunk.
        let topup = {
            let granted = lock(&self.t.book).granted(node);
            self.t
                .topup
                .max(granted.min(self.t.topup.saturating_mul(MAX_TOPUP_GROWTH)))
        };
        let grant = match reserve(self.session, peer, node, self.key, topup.max(len)).await {
            Ok(g) => g,
            Err(e) if topup > len => {
                debug!(%peer, "top-up refused ({e}), asking for this chunk only");
                reserve(self.session, peer, node, self.key, len).await?
            }
            Err(e) => return Err(e),
        };
        debug!(%peer, bytes = grant.bytes, "reservation topped up");
        let mut book = lock(&self.t.book);
        book.add(grant);
        book.take(node, len)
            .ok_or_else(|| "top-up too small".into())
    }

    /// Place `chunk` on R distinct nodes, bound to `binding`: the file
    /// record and version it belongs to (signed into each header chain).
    /// The chunks of many files may share one placer (one table, one set
    /// of reservations), each with its own binding.
    pub async fn place(
        &self,
        chunk: EncodedChunk,
        binding: ([u8; 32], u64),
    ) -> Result<PlacedChunk, PutError> {
        let cref = ChunkRef {
            id: chunk.id,
            len: chunk.data.len() as u64,
        };
        let owner = self.key.user_id();
        let mut held: Vec<Receipt> = Vec::new();
        let mut failed: Vec<(NodeId, String)> = Vec::new();
        let mut first_chain = Vec::new();
        while held.len() < self.t.replicas {
            let holders: Vec<NodeId> = held.iter().map(|r| r.node).collect();
            // A node gets a second chance per chunk: a chain can fail at it
            // through no fault of its own (a stream closed under a hop before
            // it), and with R nodes in all there is no alternate to try.
            let mut excluded: Vec<NodeId> = failed
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| failed.iter().filter(|(m, _)| m == n).count() >= MAX_TRIES_PER_NODE)
                .collect();
            excluded.extend(lock(&self.t.dropped).iter().copied());
            let missing = self.t.replicas - held.len();
            let targets = {
                let hz = lock(&self.t.hazards);
                resend_targets(
                    chunk.index,
                    &self.t.ranked,
                    missing,
                    &holders,
                    &excluded,
                    &hz,
                )
            };
            if targets.is_empty() {
                return Err(self.exhausted(&chunk, &held, &failed));
            }
            let mut hops = Vec::new();
            for node in targets {
                match self.slot(&node, cref.len).await {
                    Ok(reservation_id) => hops.push(ChainHop {
                        node,
                        reservation_id,
                    }),
                    Err(e) => {
                        warn!(index = chunk.index, node = %node_name(&node),
                              "reservation failed, node dropped for this put: {e}");
                        lock(&self.t.dropped).insert(node);
                        failed.push((node, format!("no reservation: {e}")));
                    }
                }
            }
            if hops.is_empty() {
                continue;
            }
            let hops = interleave_behind_nat(hops, |h| self.t.behind_nat.contains(&h.node));
            let nodes: Vec<NodeId> = hops.iter().map(|h| h.node).collect();
            if first_chain.is_empty() {
                first_chain = nodes.clone();
            } else {
                info!(index = chunk.index, to = ?nodes.iter().map(node_name).collect::<Vec<_>>(),
                      "resending chunk to alternates");
            }
            let chain = HeaderChain::new(self.key, chunk.id, cref.len, binding, hops.clone())?;
            let first = self.t.peers[&nodes[0]];
            match send_chunk(self.session.net(), first, &chain, &chunk.data).await {
                Ok(reply) => {
                    let (bound, foreign): (Vec<_>, Vec<_>) = reply
                        .receipts
                        .into_iter()
                        .partition(|r| r.record == binding.0);
                    let (ok, mut bad) = accept_receipts(bound, &cref, &owner, &nodes, &holders);
                    bad.extend(foreign.iter().map(|r| ReceiptError::WrongRecord {
                        node: node_name(&r.node),
                    }));
                    for e in bad {
                        warn!(index = chunk.index, "refused receipt: {e}");
                    }
                    held.extend(ok);
                    let now_held: Vec<NodeId> = held.iter().map(|r| r.node).collect();
                    let named = reply.failure.as_ref().map(|(n, _)| n);
                    let b = blame(&nodes, &now_held, named);
                    if let Some((from, to)) = b.broken_link {
                        let why = reply.failure.as_ref().map_or("", |(_, w)| w.as_str());
                        warn!(index = chunk.index, from = %node_name(&from), to = %node_name(&to),
                              "chain broke between two nodes; later chains avoid that link: {why}");
                    }
                    {
                        let mut hz = lock(&self.t.hazards);
                        if let Some((from, to)) = b.broken_link {
                            hz.broken_link(from, to);
                        }
                        for n in &b.charged {
                            hz.strike(*n);
                        }
                    }
                    for hop in &hops {
                        if !now_held.contains(&hop.node) {
                            lock(&self.t.book).give_back(&hop.node, &hop.reservation_id, cref.len);
                        }
                    }
                    for node in b.charged {
                        let why = match &reply.failure {
                            Some((n, why)) if *n == node => why.clone(),
                            Some((n, why)) => {
                                format!("no receipt ({} failed: {why})", node_name(n))
                            }
                            None => "no valid receipt".into(),
                        };
                        failed.push((node, why));
                    }
                }
                Err(why) => {
                    warn!(index = chunk.index, node = %first,
                          "chain failed at its first hop, node dropped for this put: {why}");
                    lock(&self.t.dropped).insert(nodes[0]);
                    lock(&self.t.hazards).strike(nodes[0]);
                    failed.push((nodes[0], why));
                    let mut book = lock(&self.t.book);
                    for hop in &hops {
                        book.give_back(&hop.node, &hop.reservation_id, cref.len);
                    }
                }
            }
        }
        Ok(PlacedChunk {
            index: chunk.index,
            id: chunk.id,
            len: cref.len,
            plain_len: chunk.plain_len,
            receipts: held,
            chain: first_chain,
            last: chunk.last,
            placed_ms: crate::put::now_ms(),
        })
    }

    fn exhausted(
        &self,
        chunk: &EncodedChunk,
        held: &[Receipt],
        failed: &[(NodeId, String)],
    ) -> PutError {
        let dropped = lock(&self.t.dropped);
        let mut failed: Vec<String> = failed
            .iter()
            .map(|(n, why)| format!("{}: {why}", node_name(n)))
            .collect();
        failed.extend(
            dropped
                .iter()
                .filter(|n| !held.iter().any(|r| r.node == **n))
                .map(|n| format!("{}: dropped earlier in this put", node_name(n))),
        );
        failed.dedup();
        PutError::Replicas {
            index: chunk.index,
            chunk: chunk.id.to_hex(),
            have: held.len(),
            replicas: self.t.replicas,
            holders: held
                .iter()
                .map(|r| node_name(&r.node))
                .collect::<Vec<_>>()
                .join(", "),
            failed: failed.join("; "),
        }
    }
}

/// Order a chain so that each node behind NAT sits right after a node that
/// is not: public, other, NAT, other, NAT, …, the rest in rank order. A
/// public node reaches a node behind NAT (even a symmetric one) over the
/// connection that node opened to it, and a node behind NAT sends on to a
/// public one by dialling out; two nodes behind NAT in a row need a hole
/// punch, so they follow each other only when there are too few others.
/// The first hop is the client's, so it is a node not behind NAT when the
/// chain has one.
pub fn interleave_behind_nat<T>(hops: Vec<T>, behind_nat: impl Fn(&T) -> bool) -> Vec<T> {
    let (mut nat, mut open): (std::collections::VecDeque<T>, std::collections::VecDeque<T>) =
        (Default::default(), Default::default());
    for h in hops {
        if behind_nat(&h) {
            nat.push_back(h);
        } else {
            open.push_back(h);
        }
    }
    let mut out = Vec::with_capacity(nat.len() + open.len());
    while let Some(o) = open.pop_front() {
        out.push(o);
        // Save later open nodes for later NAT nodes: one NAT node per open one.
        if let Some(n) = nat.pop_front() {
            out.push(n);
        }
    }
    out.extend(nat);
    out
}

#[cfg(test)]
mod interleave_tests {
    use super::interleave_behind_nat;

    #[test]
    fn every_node_behind_nat_follows_an_open_one_while_there_are_enough() {
        // Upper case: open (public or LAN); lower case: behind NAT.
        let nat = |c: &char| c.is_lowercase();
        let order = |s: &str| -> String {
            interleave_behind_nat(s.chars().collect(), nat)
                .into_iter()
                .collect()
        };
        assert_eq!(order("abAB"), "AaBb");
        assert_eq!(order("ABab"), "AaBb");
        assert_eq!(
            order("aAbcB"),
            "AaBbc",
            "more NAT nodes than open ones: the rest last"
        );
        assert_eq!(order("abc"), "abc", "all behind NAT: rank order");
        assert_eq!(order("ABC"), "ABC", "none behind NAT: rank order");
        assert_eq!(order("AaBC"), "AaBC");
        assert_eq!(order(""), "");
    }
}
