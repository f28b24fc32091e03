//! A [`Session`]: a short-lived libp2p peer connected to one IFS node, the
//! entry point of every client operation.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ifs_core::crdt::RecordError;
use ifs_core::folder_record::FolderRecord;
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
    /// Folder records this session verified or wrote (see
    /// [`VerifiedFolders`]).
    folders: std::sync::Mutex<VerifiedFolders>,
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
            folders: std::sync::Mutex::new(VerifiedFolders::default()),
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

    /// Decode folder record `bytes`, verifying only the entries this
    /// session has not verified (or written) in that folder before, and
    /// remember the result. A tree put reads a folder back on every flush
    /// and a gateway on every small write: without this, each read checks
    /// every entry's signature again, a cost that grows with the folder.
    pub(crate) fn decode_folder(
        &self,
        bytes: &[u8],
        locator: &[u8; 32],
    ) -> Result<FolderRecord, RecordError> {
        let mut known = self.folders.lock().unwrap_or_else(|e| e.into_inner());
        let rec = match known.get(locator) {
            Some(k) => FolderRecord::decode_against(bytes, k)?,
            None => FolderRecord::decode(bytes)?,
        };
        known.put(rec.clone());
        Ok(rec)
    }

    /// Remember a folder record this session wrote: every entry in it was
    /// verified on the way in or sealed here.
    pub(crate) fn wrote_folder(&self, rec: &FolderRecord) {
        let mut known = self.folders.lock().unwrap_or_else(|e| e.into_inner());
        known.put(rec.clone());
    }

    /// Close the connection.
    pub async fn close(self) {
        self.net.shutdown().await;
    }
}

/// Most folder entries [`VerifiedFolders`] holds (about 300 bytes each);
/// the folders used longest ago are forgotten first.
const VERIFIED_FOLDER_ENTRIES: usize = 1 << 16;

/// Folder records a session has verified, by locator, within
/// [`VERIFIED_FOLDER_ENTRIES`]. Only what equals an entry held here skips
/// its signature check; anything else in a record read is verified.
struct VerifiedFolders {
    by_locator: HashMap<[u8; 32], FolderRecord>,
    /// Locators, least recently stored first.
    order: VecDeque<[u8; 32]>,
    entries: usize,
    budget: usize,
}

impl Default for VerifiedFolders {
    fn default() -> Self {
        VerifiedFolders {
            by_locator: HashMap::new(),
            order: VecDeque::new(),
            entries: 0,
            budget: VERIFIED_FOLDER_ENTRIES,
        }
    }
}

impl VerifiedFolders {
    fn get(&self, locator: &[u8; 32]) -> Option<&FolderRecord> {
        self.by_locator.get(locator)
    }

    fn put(&mut self, rec: FolderRecord) {
        let locator = *rec.locator();
        self.entries += rec.len();
        if let Some(old) = self.by_locator.insert(locator, rec) {
            self.entries -= old.len();
            self.order.retain(|l| *l != locator);
        }
        self.order.push_back(locator);
        while self.entries > self.budget {
            let Some(l) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.by_locator.remove(&l) {
                self.entries -= old.len();
            }
        }
    }
}

async fn drain(mut events: mpsc::Receiver<NetEvent>) {
    while events.recv().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use ifs_core::folder_record::{Child, ChildKind, EntryFields, FolderEntry, FolderKey};
    use ifs_core::keys::UserKey;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// A folder named `name` below the root holding `n` files.
    fn folder(owner: &UserKey, name: &str, n: usize) -> FolderRecord {
        let key = FolderKey::root(owner).child(name);
        let mut rec = FolderRecord::new(owner.user_id(), key.locator());
        let mut rng = StdRng::seed_from_u64(7);
        for i in 0..n {
            let child = Child {
                name: format!("f{i}"),
                kind: ChildKind::File,
                size: 1,
                chunks: 1,
                readers: vec![],
                handle: None,
                pack: None,
                props: vec![],
            };
            let f = EntryFields {
                version: 1,
                deleted: false,
                at_ms: 1,
                rev: 0,
            };
            rec.insert_sealed(FolderEntry::seal(owner, &key, &child, f, &mut rng))
                .unwrap();
        }
        rec
    }

    #[test]
    fn verified_folders_stay_within_their_entry_budget() {
        let owner = UserKey::generate(&mut StdRng::seed_from_u64(1));
        let mut known = VerifiedFolders {
            budget: 100,
            ..VerifiedFolders::default()
        };
        let big = 26;
        let recs: Vec<FolderRecord> = (0..5)
            .map(|i| folder(&owner, &format!("d{i}"), big))
            .collect();
        for r in &recs[..3] {
            known.put(r.clone());
        }
        assert_eq!(known.entries, 3 * big);
        // Storing the first again makes it the most recent, and holds one copy.
        known.put(recs[0].clone());
        assert_eq!(known.entries, 3 * big);
        // A fourth passes the budget: the least recently stored goes.
        known.put(recs[3].clone());
        assert!(known.entries <= 100);
        assert!(known.get(recs[1].locator()).is_none());
        assert!(known.get(recs[0].locator()).is_some());
        known.put(recs[4].clone());
        assert!(known.get(recs[2].locator()).is_none());
        assert_eq!(known.by_locator.len(), 3);
        assert_eq!(known.entries, 3 * big);
    }
}
