//! [`Intruder`]: a libp2p peer with its own identity that joins a cluster
//! and sends whatever a test hands it (forged or replayed reports, malformed
//! or oversized requests, records with bad signatures) without any of the
//! node's checks on its own output. Chunk streams opened to it are held
//! open and never read.

use std::time::Duration;

use ifs_core::keys::NodeKey;
use ifs_net::{Client, Multiaddr, NetConfig, NetEvent, PeerId};
use tokio::sync::mpsc;

use crate::TestkitError;

/// A misbehaving peer.
pub struct Intruder {
    net: Client,
    key: NodeKey,
    _drain: tokio::task::JoinHandle<()>,
}

impl Intruder {
    /// Start a swarm that listens on loopback, lets requests up to
    /// `max_request_bytes` out, and connects to `entry`.
    pub async fn join(
        entry: &Multiaddr,
        max_request_bytes: usize,
    ) -> Result<(Intruder, PeerId), TestkitError> {
        let key = NodeKey::generate(&mut rand::rng());
        let mut cfg = NetConfig::listening_on(
            ["/ip4/127.0.0.1/tcp/0"]
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
        );
        cfg.keypair = ifs_net::keypair_from_ed25519_secret(key.to_bytes());
        cfg.agent_version = "intruder/0".into();
        cfg.max_request_bytes = max_request_bytes;
        cfg.max_record_bytes = max_request_bytes.max(cfg.max_record_bytes);
        let (net, events) = ifs_net::spawn(cfg).await?;
        let drain = tokio::spawn(drain(events));
        let entry_peer = net.dial(entry.clone()).await?;
        Ok((
            Intruder {
                net,
                key,
                _drain: drain,
            },
            entry_peer,
        ))
    }

    /// The swarm client, for raw requests and DHT puts.
    pub fn net(&self) -> &Client {
        &self.net
    }

    /// The intruder's own identity (it can sign things as itself).
    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    /// Join `topic` and publish `data` as soon as some peer shares the topic.
    pub async fn publish(
        &self,
        topic: &str,
        data: Vec<u8>,
        deadline: Duration,
    ) -> Result<(), TestkitError> {
        self.net.subscribe(topic).await?;
        let start = tokio::time::Instant::now();
        loop {
            match self.net.publish(topic, data.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() >= deadline => return Err(e.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Stop the swarm.
    pub async fn shutdown(self) {
        self.net.shutdown().await;
    }
}

/// Most inbound streams an intruder keeps open at once.
const MAX_HELD_STREAMS: usize = 1024;

/// Drop every event but inbound streams: those are held open and never read
/// (a peer that takes a stream and stalls it), up to [`MAX_HELD_STREAMS`].
async fn drain(mut events: mpsc::Receiver<NetEvent>) {
    let mut held = std::collections::VecDeque::new();
    while let Some(e) = events.recv().await {
        if let NetEvent::InboundStream { stream, .. } = e {
            if held.len() >= MAX_HELD_STREAMS {
                held.pop_front();
            }
            held.push_back(stream);
        }
    }
}
