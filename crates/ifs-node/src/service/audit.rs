//! Audits between holders (DESIGN "Durability"): each pass a node picks a
//! few chunks it holds and challenges every other live holder of each; the
//! answer is checked against its own copy. Outcomes feed reputation, and a
//! holder that fails stops counting as live, which triggers repair.

use std::sync::Arc;
use std::time::Duration;

use ifs_core::audit::{AuditChallenge, AuditOutcome};
use ifs_core::file_record::FileRecord;
use ifs_core::proto::{CtlError, CtlRequest, CtlResponse, MAX_CTL_RESPONSE, decode, encode};
use ifs_core::{ChunkId, NodeId};
use ifs_net::PeerId;
use ifs_store::StoreError;
use rand::seq::SliceRandom;
use tracing::{debug, warn};

use super::Shared;
use super::control::store_error;
use super::shared::lock;

/// Time allowed for an audit answer.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(20);

impl Shared {
    /// Answer a co-holder's challenge from our copy.
    /// Audits cost a chunk read; only a node the record names as a live
    /// holder of the same chunk may ask (cheap checks first).
    async fn is_co_holder(&self, peer: PeerId, chunk: &ifs_core::ChunkId) -> Result<(), String> {
        let node = ifs_net::peer_id_to_node_id(&peer).ok_or("the challenger is not a node")?;
        let now = crate::now_ms();
        if !self.node_alive(&node, now) {
            return Err("the challenger is not a live node of this network".into());
        }
        let cached = lock(&self.durability.co_holders).get(chunk, &node, now);
        let admit = match cached {
            Some(admit) => admit,
            None => {
                let admit = self.names_live_holder(chunk, &node).await?;
                lock(&self.durability.co_holders).put(*chunk, node, admit, now);
                admit
            }
        };
        if admit {
            Ok(())
        } else {
            Err("the challenger holds no live copy of this chunk".into())
        }
    }

    /// Whether the chunk's file record names `node` as a live holder.
    async fn names_live_holder(
        &self,
        chunk: &ifs_core::ChunkId,
        node: &NodeId,
    ) -> Result<bool, String> {
        let record = self
            .record_of(*chunk)
            .await
            .ok_or("the chunk's file record is not known here")?;
        // The local copy first; the DHT when it does not name the
        // challenger yet (a repair copy whose receipt has not reached us).
        for from_dht in [false, true] {
            if let Some(rec) = self.file_record(record, from_dht).await
                && rec.live_receipt(chunk, node).is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub async fn answer_audit(self: &Arc<Self>, peer: PeerId, c: AuditChallenge) -> CtlResponse {
        if self.cfg.durability.fault_garbage_audits {
            return CtlResponse::AuditProof(rand::random());
        }
        let info = match self.store.chunk_info(c.chunk).await {
            Ok(Some(i)) => i,
            Ok(None) => return CtlResponse::Error(CtlError::Invalid("chunk not held".into())),
            Err(e) => return CtlResponse::Error(store_error(e)),
        };
        if let Err(why) = self.is_co_holder(peer, &c.chunk).await {
            debug!(%peer, chunk = %c.chunk, "refused an audit: {why}");
            return CtlResponse::Error(CtlError::Denied(why));
        }
        if let Err(e) = c.check(info.len) {
            warn!(%peer, "malformed audit: {e}");
            return CtlResponse::Error(CtlError::Invalid(e.to_string()));
        }
        match self.store.get_chunk(c.chunk).await {
            Ok(data) => match c.answer(&data) {
                Ok(p) => CtlResponse::AuditProof(p),
                Err(e) => CtlResponse::Error(CtlError::Invalid(e.to_string())),
            },
            Err(e @ (StoreError::Corrupt { .. } | StoreError::Missing { .. })) => {
                warn!(chunk = %c.chunk, "audit found our copy damaged: refetching");
                // The challenger will count this as a failure; fixing our
                // copy makes the next audit pass.
                let s = self.clone();
                let chunk = c.chunk;
                tokio::spawn(async move { s.refetch(chunk).await });
                CtlResponse::Error(store_error(e))
            }
            Err(e) => CtlResponse::Error(store_error(e)),
        }
    }

    /// Challenge `node` about `chunk`, checking against `own` (our copy).
    async fn audit_one(&self, node: NodeId, chunk: ChunkId, own: &[u8]) -> AuditOutcome {
        let c = AuditChallenge::new(chunk, own.len() as u64, rand::random());
        let Ok(peer) = ifs_net::node_id_to_peer_id(&node) else {
            return AuditOutcome::NoAnswer;
        };
        self.dial_known(peer, &node).await;
        let req = encode(&CtlRequest::Audit(c));
        let resp = match tokio::time::timeout(AUDIT_TIMEOUT, self.net.request(peer, req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                debug!(%node, "audit got no answer: {e}");
                return AuditOutcome::NoAnswer;
            }
            Err(_) => return AuditOutcome::NoAnswer,
        };
        match decode::<CtlResponse>(&resp, MAX_CTL_RESPONSE) {
            Ok(CtlResponse::AuditProof(p)) if c.verify(own, &p) => AuditOutcome::Pass,
            // A refusal (the auditee does not see us as a co-holder yet) is
            // no evidence about its copy.
            Ok(CtlResponse::Error(CtlError::Internal(_) | CtlError::Denied(_))) => {
                AuditOutcome::NoAnswer
            }
            // A wrong proof, "not held", "corrupt", or a malformed answer.
            _ => AuditOutcome::Fail,
        }
    }

    /// Audit up to `audits_per_pass` random held chunks against their other
    /// live holders.
    pub(crate) async fn audit_some(
        self: Arc<Self>,
        records: &[([u8; 32], FileRecord)],
        now_ms: u64,
    ) {
        let mut picks: Vec<(ChunkId, &FileRecord)> = records
            .iter()
            .flat_map(|(_, rec)| {
                rec.live_manifest()
                    .into_iter()
                    .flat_map(|m| m.chunks.iter().map(|c| c.id))
                    .filter(|c| rec.live_receipt(c, &self.node_id).is_some())
                    .map(move |c| (c, rec))
            })
            .collect();
        picks.shuffle(&mut rand::rng());
        picks.truncate(self.cfg.durability.audits_per_pass);
        for (chunk, rec) in picks {
            let own = match self.store.get_chunk(chunk).await {
                Ok(d) => d,
                Err(StoreError::Corrupt { .. } | StoreError::Missing { .. }) => {
                    self.refetch(chunk).await;
                    continue;
                }
                Err(_) => continue,
            };
            for node in rec.live_holders(&chunk) {
                if node == self.node_id || !self.node_alive(&node, now_ms) {
                    continue;
                }
                let outcome = self.audit_one(node, chunk, &own).await;
                self.note_audit(node, outcome, crate::now_ms()).await;
            }
        }
    }
}
