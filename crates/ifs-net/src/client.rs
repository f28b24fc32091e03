//! [`Client`]: the cheap, cloneable handle the rest of the program uses. Each
//! method sends a [`Command`] to the swarm task and awaits a oneshot reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId, Stream};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::CHUNK_PROTOCOL;
use crate::error::NetError;
use crate::event::{Acceptance, MessageId, ResponseToken};

/// A value found by [`Client::get_records`]: who returned it (`None` for the
/// local store) and the raw value.
pub type FoundRecord = (Option<PeerId>, Vec<u8>);

/// Caps the client checks before handing anything to the swarm task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_request_bytes: usize,
    pub(crate) max_response_bytes: usize,
    pub(crate) max_record_bytes: usize,
    pub(crate) stream_open_timeout: Duration,
    pub(crate) stream_open_min: Duration,
}

/// The last ping round trip to each connected peer, kept by the swarm task
/// and read when a stream is opened.
pub(crate) type Rtts = Arc<Mutex<HashMap<PeerId, Duration>>>;

/// Round trips a stream open is given on a live connection: the protocol
/// negotiation takes one or two, the rest absorbs a busy peer or a queue.
const OPEN_RTTS: u32 = 10;

/// Time allowed to open a bulk stream to a peer whose last measured round
/// trip is `rtt` (`None`: not connected, or not measured yet).
///
/// With a live connection the open needs a round trip or two, so it gets
/// `min + 10 × rtt`, capped at `max`: a connection that went dead (a cut
/// link, a paused peer) is given up on in seconds, not after the full
/// `max`, and the caller moves on to another node. A peer that may need a
/// dial first gets `max`.
pub fn stream_open_deadline(rtt: Option<Duration>, min: Duration, max: Duration) -> Duration {
    match rtt {
        Some(rtt) => min.saturating_add(rtt.saturating_mul(OPEN_RTTS)).min(max),
        None => max,
    }
}

/// A request from a [`Client`] to the swarm task.
pub(crate) enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    /// Address, and whether to open a new connection even when one is up.
    Dial(Multiaddr, bool, oneshot::Sender<Result<PeerId, NetError>>),
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
    Subscribe(String, oneshot::Sender<Result<bool, NetError>>),
    Unsubscribe(String, oneshot::Sender<bool>),
    Publish(
        String,
        Vec<u8>,
        oneshot::Sender<Result<MessageId, NetError>>,
    ),
    ReportValidation(MessageId, PeerId, Acceptance, oneshot::Sender<bool>),
    Request(PeerId, Vec<u8>, oneshot::Sender<Result<Vec<u8>, NetError>>),
    Respond(
        ResponseToken,
        Vec<u8>,
        oneshot::Sender<Result<(), NetError>>,
    ),
    PutRecord(Vec<u8>, Vec<u8>, oneshot::Sender<Result<bool, NetError>>),
    GetRecords(Vec<u8>, oneshot::Sender<Result<Vec<FoundRecord>, NetError>>),
    StoreLocal(Vec<u8>, Vec<u8>, oneshot::Sender<Result<(), NetError>>),
    GetLocal(Vec<u8>, oneshot::Sender<Option<Vec<u8>>>),
    RemoveLocal(Vec<u8>, oneshot::Sender<()>),
    AddAddress(PeerId, Multiaddr, oneshot::Sender<()>),
    RemovePeer(PeerId, oneshot::Sender<()>),
    Bootstrap(oneshot::Sender<bool>),
    Reachability(oneshot::Sender<crate::reachability::ReachabilityReport>),
    /// A chunk stream is about to be opened to this peer: dial its TCP
    /// address if it is reached over QUIC only (no reply).
    PreferTcp(PeerId),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to a running swarm task. Clone it freely; the task stops on
/// [`Client::shutdown`] or when every clone is dropped.
#[derive(Clone)]
pub struct Client {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) peer_id: PeerId,
    pub(crate) streams: libp2p_stream::Control,
    pub(crate) limits: Limits,
    pub(crate) rtts: Rtts,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer_id", &self.peer_id)
            .finish()
    }
}

impl Client {
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| NetError::Shutdown)?;
        rx.await.map_err(|_| NetError::Shutdown)
    }

    /// This node's `PeerId`.
    pub fn local_peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The bound listen addresses, each ending in `/p2p/<local peer id>`.
    /// Waits until at least one listener is up; empty for an ephemeral client
    /// or when every listener failed.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.call(Command::ListenAddrs).await
    }

    /// Connect to `addr` and return the peer's id once the connection is up.
    /// With a `/p2p/` suffix the peer also joins the Kademlia routing table.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.call(|r| Command::Dial(addr, false, r)).await?
    }

    /// Open a new connection to `addr` (which must end in `/p2p/`) even when
    /// one to that peer is up, proving that the peer answers at `addr`
    /// under its key. The connection closes again when idle.
    pub async fn dial_fresh(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.call(|r| Command::Dial(addr, true, r)).await?
    }

    /// Peers with at least one open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.call(Command::ConnectedPeers).await
    }

    /// Join a gossip topic; `Ok(false)` if already subscribed.
    pub async fn subscribe(&self, topic: &str) -> Result<bool, NetError> {
        self.call(|r| Command::Subscribe(topic.to_string(), r))
            .await?
    }

    /// Leave a gossip topic; `false` if not subscribed.
    pub async fn unsubscribe(&self, topic: &str) -> Result<bool, NetError> {
        self.call(|r| Command::Unsubscribe(topic.to_string(), r))
            .await
    }

    /// Publish a signed gossip message. Fails with
    /// [`crate::PublishFailure::NoPeers`] while no peer is subscribed.
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<MessageId, NetError> {
        self.call(|r| Command::Publish(topic.to_string(), data, r))
            .await?
    }

    /// Report the verdict on a [`crate::NetEvent::Gossip`] message. Returns
    /// `false` when the message was no longer in the cache.
    pub async fn report_validation(
        &self,
        id: MessageId,
        propagated_by: PeerId,
        acceptance: Acceptance,
    ) -> Result<bool, NetError> {
        self.call(|r| Command::ReportValidation(id, propagated_by, acceptance, r))
            .await
    }

    /// Send a `/ifs/ctl/1` request and await the response (size-capped both
    /// ways, bounded by the request timeout).
    pub async fn request(&self, peer: PeerId, data: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let max = self.limits.max_request_bytes;
        if data.len() > max {
            return Err(NetError::RequestTooLarge {
                size: data.len(),
                max,
            });
        }
        self.call(|r| Command::Request(peer, data, r)).await?
    }

    /// Answer an inbound request.
    pub async fn respond(&self, token: ResponseToken, data: Vec<u8>) -> Result<(), NetError> {
        let max = self.limits.max_response_bytes;
        if data.len() > max {
            return Err(NetError::ResponseTooLarge {
                size: data.len(),
                max,
            });
        }
        self.call(|r| Command::Respond(token, data, r)).await?
    }

    /// Store a record locally and at the closest peers (quorum one). Succeeds
    /// once stored locally and the replication query has ended, even when no
    /// peer took it (a lone node); Kademlia republishes it later.
    pub async fn put_record(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), NetError> {
        self.put_record_replicated(key, value).await.map(|_| ())
    }

    /// Like [`Client::put_record`], returning whether at least one remote
    /// peer acknowledged the record.
    pub async fn put_record_replicated(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<bool, NetError> {
        self.check_record(&value)?;
        self.call(|r| Command::PutRecord(key, value, r)).await?
    }

    /// Every value for `key` found in the DHT, including the local store's
    /// copy (peer `None`), for the caller to validate and merge. Empty when
    /// none exists; [`NetError::QueryTimeout`] only when nothing was found in time.
    pub async fn get_records(&self, key: Vec<u8>) -> Result<Vec<FoundRecord>, NetError> {
        self.call(|r| Command::GetRecords(key, r)).await?
    }

    /// Put a validated (merged) record into the local Kademlia store, from
    /// where it is served to peers and replicated.
    pub async fn store_local(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), NetError> {
        self.check_record(&value)?;
        self.call(|r| Command::StoreLocal(key, value, r)).await?
    }

    /// The local store's value for `key`, if any.
    pub async fn get_local(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, NetError> {
        self.call(|r| Command::GetLocal(key, r)).await
    }

    /// Drop `key` from the local store.
    pub async fn remove_local(&self, key: Vec<u8>) -> Result<(), NetError> {
        self.call(|r| Command::RemoveLocal(key, r)).await
    }

    /// Tell Kademlia (and so every protocol dialing by peer id) about an address.
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) -> Result<(), NetError> {
        self.call(|r| Command::AddAddress(peer, addr, r)).await
    }

    /// Drop `peer` from Kademlia's routing table (it is known dead): DHT
    /// queries stop dialling it until it is added again.
    pub async fn remove_peer(&self, peer: PeerId) -> Result<(), NetError> {
        self.call(|r| Command::RemovePeer(peer, r)).await
    }

    /// Start a Kademlia bootstrap; `false` when no peer is known yet.
    pub async fn bootstrap(&self) -> Result<bool, NetError> {
        self.call(Command::Bootstrap).await
    }

    /// The last ping round trip to `peer`, if it is connected and was pinged.
    pub fn rtt(&self, peer: &PeerId) -> Option<Duration> {
        self.rtts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
            .copied()
    }

    /// Open a bulk `/ifs/chunk/1` stream to `peer`, dialing it if needed,
    /// within [`stream_open_deadline`] of its last round trip.
    ///
    /// A stream can land on a connection that is closing just then (e.g. the
    /// loser of a simultaneous dial), so an open that fails other than by
    /// timeout is tried again a few times on a fresh connection.
    pub async fn open_stream(&self, peer: PeerId) -> Result<Stream, NetError> {
        const ATTEMPTS: u32 = 3;
        let allowed = stream_open_deadline(
            self.rtt(&peer),
            self.limits.stream_open_min,
            self.limits.stream_open_timeout,
        );
        let deadline = tokio::time::Instant::now() + allowed;
        // A link whose TCP connection idled out while its QUIC one stayed
        // up dials TCP again, for the streams after this one. Best effort:
        // a full command queue skips it.
        let _ = self.tx.try_send(Command::PreferTcp(peer));
        let mut attempt = 1;
        loop {
            let mut control = self.streams.clone();
            let open = control.open_stream(peer, CHUNK_PROTOCOL);
            match tokio::time::timeout_at(deadline, open).await {
                Err(_) => return Err(NetError::StreamTimeout(peer, allowed)),
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) if attempt >= ATTEMPTS => {
                    return Err(NetError::Stream {
                        peer,
                        reason: e.to_string(),
                    });
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, attempt, "stream open failed, retrying: {e}");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt)))
                        .await;
                }
            }
        }
    }

    /// What this node knows of its own reachability (AutoNAT verdicts,
    /// relay slots, hole punches, UPnP).
    pub async fn reachability(&self) -> Result<crate::reachability::ReachabilityReport, NetError> {
        self.call(Command::Reachability).await
    }

    /// Stop the swarm task and close every connection. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.call(Command::Shutdown).await;
    }

    fn check_record(&self, value: &[u8]) -> Result<(), NetError> {
        let max = self.limits.max_record_bytes;
        if value.len() > max {
            return Err(NetError::RecordTooLarge {
                size: value.len(),
                max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_connection_gets_a_stream_open_deadline_fit_to_its_round_trip() {
        let (min, max) = (Duration::from_secs(5), Duration::from_secs(20));
        // A LAN peer: a dead connection is given up on after 5 s, not 20.
        let lan = stream_open_deadline(Some(Duration::from_micros(300)), min, max);
        assert_eq!(lan, Duration::from_millis(5_003));
        // A slow link gets ten round trips on top.
        let slow = stream_open_deadline(Some(Duration::from_millis(400)), min, max);
        assert_eq!(slow, Duration::from_secs(9));
        // Never more than the cap, whatever the round trip.
        assert_eq!(stream_open_deadline(Some(Duration::MAX), min, max), max);
        // No round trip known (not connected: a dial comes first): the cap.
        assert_eq!(stream_open_deadline(None, min, max), max);
    }
}
