//! A [`Session`]: a short-lived libp2p peer connected to one IFS node, the
//! entry point of every client operation.

use std::time::Duration;

use ifs_core::proto::{CtlRequest, CtlResponse, MAX_CTL_RESPONSE, decode, encode};
use ifs_net::{Client, Multiaddr, NetConfig, NetEvent, PeerId};
use tokio::sync::mpsc;

use crate::error::ClientError;

/// The agent version clients announce (nodes exchange tables only with nodes).
pub fn client_agent() -> String {
    format!("ifs-client/{}", env!("CARGO_PKG_VERSION"))
}

/// A connection to one entry node.
pub struct Session {
    net: Client,
    entry: PeerId,
    entry_addr: Multiaddr,
    // Kept so the swarm task never blocks on a full event channel.
    _drain: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Start an ephemeral peer and connect to the node at `addr`.
    pub async fn connect(addr: Multiaddr) -> Result<Session, ClientError> {
        Self::connect_with(addr, Duration::from_secs(10)).await
    }

    /// Like [`Session::connect`] with a connection timeout.
    pub async fn connect_with(addr: Multiaddr, timeout: Duration) -> Result<Session, ClientError> {
        let mut cfg = NetConfig::ephemeral();
        cfg.agent_version = client_agent();
        cfg.max_request_bytes = ifs_core::proto::MAX_CTL_REQUEST;
        cfg.max_response_bytes = MAX_CTL_RESPONSE;
        let (net, events) = ifs_net::spawn(cfg).await.map_err(ClientError::Net)?;
        let drain = tokio::spawn(drain(events));
        let entry = tokio::time::timeout(timeout, net.dial(addr.clone()))
            .await
            .map_err(|_| ClientError::Unreachable {
                addr: addr.to_string(),
                reason: format!("no answer within {timeout:?}"),
            })?
            .map_err(|e| ClientError::Unreachable {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Session {
            net,
            entry,
            entry_addr: addr,
            _drain: drain,
        })
    }

    /// The entry node's peer id.
    pub fn entry(&self) -> PeerId {
        self.entry
    }

    /// The entry node's address.
    pub fn entry_addr(&self) -> &Multiaddr {
        &self.entry_addr
    }

    /// The swarm client (to open streams to other nodes).
    pub fn net(&self) -> &Client {
        &self.net
    }

    /// Send a control request to `peer` and decode the answer; a node's
    /// `CtlResponse::Error` becomes [`ClientError::Node`].
    pub async fn request_to(
        &self,
        peer: PeerId,
        req: &CtlRequest,
    ) -> Result<CtlResponse, ClientError> {
        let bytes =
            self.net
                .request(peer, encode(req))
                .await
                .map_err(|e| ClientError::Request {
                    peer: peer.to_string(),
                    reason: e.to_string(),
                })?;
        match decode::<CtlResponse>(&bytes, MAX_CTL_RESPONSE) {
            Ok(CtlResponse::Error(e)) => Err(ClientError::Node {
                peer: peer.to_string(),
                error: e,
            }),
            Ok(r) => Ok(r),
            Err(e) => Err(ClientError::Request {
                peer: peer.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Send a control request to the entry node.
    pub async fn request(&self, req: &CtlRequest) -> Result<CtlResponse, ClientError> {
        self.request_to(self.entry, req).await
    }

    /// Close the connection.
    pub async fn close(self) {
        self.net.shutdown().await;
    }
}

async fn drain(mut events: mpsc::Receiver<NetEvent>) {
    while events.recv().await.is_some() {}
}
