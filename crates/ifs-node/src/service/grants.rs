//! Reservations as a node grants them: user-signed requests, per-user
//! quotas and soft unstarted grants (the rules are `ifs_core::quota`), and
//! signed settles that only the grant's client may send.

use std::sync::Arc;
use std::time::Duration;

use ifs_core::proto::{CtlError, CtlResponse};
use ifs_core::quota::{Admission, QuotaRefusal};
use ifs_core::wire::{ReservationGrant, ReserveRequest, SettleRequest};
use ifs_store::ReservationId;
use tracing::{debug, info};

use super::control::store_error;
use super::{Shared, lock};
use crate::now_ms;

use super::chunks::MAX_FETCH_SKEW_MS as MAX_REQUEST_SKEW_MS;

impl Shared {
    /// Answer a user-signed reservation request.
    pub(crate) async fn answer_reserve(
        self: &Arc<Self>,
        req: ReserveRequest,
        now: u64,
    ) -> CtlResponse {
        if let Err(e) = req.verify() {
            return CtlResponse::Error(CtlError::Invalid(e.to_string()));
        }
        if req.node != self.node_id {
            return CtlResponse::Error(CtlError::Invalid(
                "reservation request addressed to another node".into(),
            ));
        }
        if !req.is_fresh(now, MAX_REQUEST_SKEW_MS) {
            return CtlResponse::Error(CtlError::Invalid(
                "stale reservation request (check the client's clock)".into(),
            ));
        }
        self.end_lapsed_grants(now).await;
        // Admission and the store's grant happen under one lock of the
        // ledger's decision, so two requests cannot both take the same space.
        let _admitting = self.admitting.lock().await;
        let free = match self.store.stats().await {
            Ok(c) => c.free.min(c.donated),
            Err(e) => return CtlResponse::Error(store_error(e)),
        };
        let decision = lock(&self.grants).admit(&self.cfg.quota, &req.client, req.bytes, free, now);
        match decision {
            Ok(Admission::Fits) => {}
            Ok(Admission::Preempt(ids)) => {
                for id in ids {
                    lock(&self.grants).remove(&id);
                    match self.store.release(ReservationId(id)).await {
                        Ok(end) => info!(
                            bytes = end.returned,
                            "took back an unstarted reservation for another user's request"
                        ),
                        Err(e) => debug!("unstarted reservation already gone: {e}"),
                    }
                }
            }
            Err(refusal) => return CtlResponse::Error(quota_error(refusal)),
        }
        let ttl = Duration::from_millis(req.ttl_ms).min(self.cfg.max_reservation_ttl);
        match self.store.reserve(req.bytes, ttl, now).await {
            Ok(r) => {
                lock(&self.grants).insert(r.id.0, req.client, req.bytes, (now, r.expires_ms));
                let grant =
                    ReservationGrant::new(&self.key, r.id.0, req.client, req.bytes, r.expires_ms);
                self.report_soon();
                CtlResponse::Granted(grant)
            }
            Err(e) => CtlResponse::Error(store_error(e)),
        }
    }

    /// Answer a signed settle: only the client the grant was made for may
    /// end it.
    pub(crate) async fn answer_settle(self: &Arc<Self>, req: SettleRequest) -> CtlResponse {
        if let Err(e) = req.verify() {
            return CtlResponse::Error(CtlError::Invalid(e.to_string()));
        }
        if req.node != self.node_id {
            return CtlResponse::Error(CtlError::Invalid(
                "settle addressed to another node".into(),
            ));
        }
        let client = lock(&self.grants)
            .get(&req.reservation_id)
            .map(|g| g.client);
        match client {
            Some(c) if c == req.client => {}
            Some(_) => {
                return CtlResponse::Error(CtlError::Denied(
                    "the reservation was granted to another user".into(),
                ));
            }
            None => return CtlResponse::Error(CtlError::UnknownReservation),
        }
        lock(&self.grants).remove(&req.reservation_id);
        match self
            .store
            .commit_reservation(ReservationId(req.reservation_id))
            .await
        {
            Ok(_) => {
                self.report_soon();
                CtlResponse::Done
            }
            Err(e) => CtlResponse::Error(store_error(e)),
        }
    }

    /// Hand back grants that received nothing for a while or passed their
    /// TTL (see `ifs_core::quota`).
    pub(crate) async fn end_lapsed_grants(&self, now: u64) {
        let lapsed = lock(&self.grants).lapsed(&self.cfg.quota, now);
        for id in lapsed {
            lock(&self.grants).remove(&id);
            if let Ok(end) = self.store.release(ReservationId(id)).await
                && end.returned > 0
            {
                debug!(bytes = end.returned, "an unused reservation lapsed");
            }
        }
    }

    /// Publish a capacity report soon (reserved bytes changed).
    pub(crate) fn report_soon(self: &Arc<Self>) {
        let s = self.clone();
        tokio::spawn(async move { s.maybe_publish_report(now_ms()).await });
    }
}

/// The requester-facing form of a quota refusal.
fn quota_error(r: QuotaRefusal) -> CtlError {
    match r {
        QuotaRefusal::NoSpace { needed, free } => CtlError::Full { needed, free },
        other => CtlError::Denied(format!("over quota: {other}")),
    }
}
