//! Answers to `/ifs/ctl/1` requests from nodes and clients.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ifs_core::proto::{CtlError, CtlRequest, CtlResponse, MAX_CTL_REQUEST, decode, encode};
use ifs_net::{PeerId, ResponseToken};
use ifs_store::StoreError;
use tracing::{debug, warn};

use super::Shared;

/// Most per-node results one `ReportResults` may carry.
const MAX_REPORTED_RESULTS: usize = 1024;
use crate::now_ms;

impl Shared {
    /// Decode, answer and respond to one control request.
    pub async fn on_request(self: Arc<Self>, peer: PeerId, data: Vec<u8>, token: ResponseToken) {
        let response = match decode::<CtlRequest>(&data, MAX_CTL_REQUEST) {
            Ok(req) if !self.within_rate(peer, &req) => {
                debug!(%peer, "refused a request over the peer's rate");
                CtlResponse::Error(CtlError::Denied(
                    "too many requests from this peer; slow down".into(),
                ))
            }
            Ok(req) => self.answer(peer, req).await,
            Err(e) => {
                warn!(%peer, "rejected malformed control request: {e}");
                CtlResponse::Error(CtlError::Invalid(e.to_string()))
            }
        };
        if let Err(e) = self.net.respond(token, encode(&response)).await {
            debug!(%peer, "response not delivered: {e}");
        }
    }

    /// Charge `peer` for `req` in proportion to what answering costs.
    fn within_rate(&self, peer: PeerId, req: &CtlRequest) -> bool {
        let cost = match req {
            CtlRequest::Probe { .. } | CtlRequest::Settle(_) | CtlRequest::Admin(_) => 1.0,
            CtlRequest::Reserve(_) => 2.0,
            CtlRequest::GetRecord { .. }
            | CtlRequest::PutRecord { .. }
            | CtlRequest::Forget { .. }
            | CtlRequest::Audit(_)
            | CtlRequest::ReportResults { .. } => 5.0,
            CtlRequest::Status | CtlRequest::Peers => 20.0,
            // Every report in a table is a signature to check.
            CtlRequest::TableExchange { table } => 20.0 + table.len() as f64 / 1024.0,
        };
        super::lock(&self.rate).allow(&peer, cost, now_ms())
    }

    async fn answer(self: &Arc<Self>, peer: PeerId, req: CtlRequest) -> CtlResponse {
        let now = now_ms();
        match req {
            CtlRequest::TableExchange { table } => {
                self.merge_table(peer, &table, now);
                let table = super::shared::lock(&self.table).encode();
                CtlResponse::Table { table }
            }
            CtlRequest::Probe { nonce } => CtlResponse::Pong {
                nonce,
                load: self.load.load(Ordering::Relaxed),
            },
            CtlRequest::Peers => CtlResponse::Peers(self.peer_rows(now)),
            CtlRequest::Status => CtlResponse::Status(self.status(now).await),
            CtlRequest::Reserve(req) => self
                .telemetry
                .reservation(self.answer_reserve(req, now).await),
            CtlRequest::Settle(req) => self.answer_settle(req).await,
            CtlRequest::GetRecord { key } => match self.get_record(key).await {
                Ok(v) => CtlResponse::Record(v),
                Err(e) => CtlResponse::Error(e),
            },
            CtlRequest::PutRecord { key, value } => match self.put_record(key, value).await {
                Ok(()) => CtlResponse::Done,
                Err(e) => CtlResponse::Error(e),
            },
            CtlRequest::Forget { tombstone, chunks } => {
                let forgot = self.forget(&tombstone, &chunks).await;
                self.telemetry.chunk_op("delete", forgot.is_ok());
                match forgot {
                    Ok(()) => CtlResponse::Done,
                    Err(e) => CtlResponse::Error(e),
                }
            }
            // A get touches a few nodes per chunk; more rows than this is
            // not a report, it is work pushed onto the node.
            CtlRequest::ReportResults { results } if results.len() > MAX_REPORTED_RESULTS => {
                CtlResponse::Error(CtlError::Invalid(format!(
                    "{} results reported, at most {MAX_REPORTED_RESULTS} are taken",
                    results.len()
                )))
            }
            CtlRequest::ReportResults { results } => {
                self.record_results(peer, &results);
                self.note_get_results(peer, &results, now).await;
                CtlResponse::Done
            }
            CtlRequest::Audit(challenge) => self
                .telemetry
                .answered("audit_answer", self.answer_audit(peer, challenge).await),
            CtlRequest::Admin(req) => self.answer_admin(req).await,
        }
    }
}

/// The requester-facing form of a store error.
pub(crate) fn store_error(e: StoreError) -> CtlError {
    match e {
        StoreError::Full { needed, free } => CtlError::Full { needed, free },
        StoreError::UnknownReservation(_) | StoreError::Expired(_) => CtlError::UnknownReservation,
        other => CtlError::Internal(other.to_string()),
    }
}
