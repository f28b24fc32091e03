//! Reservations a put holds: asked from the preliminary table, drawn down
//! chunk by chunk, topped up when a node's grants run out, settled at the end.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use ifs_core::NodeId;
use ifs_core::keys::UserKey;
use ifs_core::proto::{CtlRequest, CtlResponse};
use ifs_core::wire::{ReservationGrant, ReserveRequest, SettleRequest};
use ifs_net::PeerId;
use tracing::{debug, warn};

use crate::session::Session;

/// Lifetime asked for every reservation: uncommitted space lapses after it.
pub const RESERVATION_TTL: Duration = Duration::from_secs(600);

/// One grant and what is left of it.
#[derive(Clone, Debug)]
struct Slot {
    grant: ReservationGrant,
    left: u64,
}

/// Every grant of one put, per node.
#[derive(Debug, Default)]
pub struct Book {
    slots: HashMap<NodeId, Vec<Slot>>,
}

impl Book {
    /// Add a grant (its signature checked by the caller).
    pub fn add(&mut self, grant: ReservationGrant) {
        let left = grant.bytes;
        self.slots
            .entry(grant.node)
            .or_default()
            .push(Slot { grant, left });
    }

    /// Charge `len` bytes to one of `node`'s grants with room for them;
    /// the reservation id, or `None` when none has room.
    pub fn take(&mut self, node: &NodeId, len: u64) -> Option<[u8; 16]> {
        let slot = self
            .slots
            .get_mut(node)?
            .iter_mut()
            .find(|s| s.left >= len)?;
        slot.left -= len;
        Some(slot.grant.reservation_id)
    }

    /// Give back `len` bytes charged to reservation `id` on `node` (the
    /// node did not store the chunk).
    pub fn give_back(&mut self, node: &NodeId, id: &[u8; 16], len: u64) {
        if let Some(s) = self
            .slots
            .get_mut(node)
            .and_then(|v| v.iter_mut().find(|s| s.grant.reservation_id == *id))
        {
            s.left = (s.left + len).min(s.grant.bytes);
        }
    }

    /// Bytes granted on `node` by the grants held.
    pub fn granted(&self, node: &NodeId) -> u64 {
        self.slots
            .get(node)
            .map_or(0, |v| v.iter().map(|s| s.grant.bytes).sum())
    }

    /// Every grant held: (node, reservation id).
    pub fn all(&self) -> Vec<(NodeId, [u8; 16])> {
        self.slots
            .iter()
            .flat_map(|(n, v)| v.iter().map(move |s| (*n, s.grant.reservation_id)))
            .collect()
    }
}

/// Ask `peer` for `bytes` with a request signed by `key`; a grant that
/// verifies and matches the ask, or why not.
pub async fn reserve(
    session: &Session,
    peer: PeerId,
    node: &NodeId,
    key: &UserKey,
    bytes: u64,
) -> Result<ReservationGrant, String> {
    let client = key.user_id();
    let req = CtlRequest::Reserve(ReserveRequest::new(
        key,
        *node,
        bytes,
        RESERVATION_TTL.as_millis() as u64,
        crate::put::now_ms(),
    ));
    match session.request_to(peer, &req).await {
        Ok(CtlResponse::Granted(g)) => {
            g.verify().map_err(|e| format!("bad grant: {e}"))?;
            if g.node != *node || g.client != client || g.bytes < bytes {
                return Err("grant does not match the request".into());
            }
            Ok(g)
        }
        Ok(CtlResponse::Error(e)) => Err(e.to_string()),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Settle every reservation of `book` with a settle signed by `key`: nodes
/// keep what was stored and free the rest at once. Failures are logged; the
/// grants lapse by themselves later.
pub async fn settle_all(session: &Session, key: &UserKey, book: &Book) {
    let settles = book.all().into_iter().map(|(node, id)| async move {
        let Ok(peer) = ifs_net::node_id_to_peer_id(&node) else {
            return;
        };
        let req = CtlRequest::Settle(SettleRequest::new(key, node, id, crate::put::now_ms()));
        match session.request_to(peer, &req).await {
            Ok(_) => debug!(%peer, "reservation settled"),
            Err(e) => warn!(%peer, "reservation not settled (it lapses by TTL): {e}"),
        }
    });
    // Bounded: a long put of small chunks holds thousands of top-ups, and a
    // connection carries a limited number of streams at once.
    futures::stream::iter(settles)
        .buffer_unordered(SETTLES_IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
}

/// Settle requests sent at once.
const SETTLES_IN_FLIGHT: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use ifs_core::UserId;
    use ifs_core::keys::NodeKey;

    #[test]
    fn grants_are_drawn_down_and_given_back() {
        let key = NodeKey::generate(&mut rand::rng());
        let node = key.node_id();
        let mut book = Book::default();
        assert_eq!(book.take(&node, 1), None);
        book.add(ReservationGrant::new(&key, [1; 16], UserId([0; 32]), 10, 1));
        book.add(ReservationGrant::new(&key, [2; 16], UserId([0; 32]), 30, 1));
        assert_eq!(book.take(&node, 8), Some([1; 16]));
        assert_eq!(book.take(&node, 8), Some([2; 16]), "the first has 2 left");
        book.give_back(&node, &[1; 16], 8);
        assert_eq!(book.take(&node, 10), Some([1; 16]));
        assert_eq!(book.take(&node, 23), None);
        assert_eq!(book.all().len(), 2);
    }
}
