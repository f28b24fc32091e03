//! Reservations: space held for a client for a while. Granting checks
//! `free = donated − used − reserved`; committing or releasing hands back the
//! unused part at once; a sweep hands back what expired. Each change is one
//! small redb commit, and the in-memory mirror changes only after it lands.

use crate::engine::{Engine, LiveReservation};
use crate::error::{StoreError, StoreResult};
use crate::tables::{self, RESERVATIONS, Reservation, ReservationId, ReservationRecord};
use ifs_core::ChunkId;
use std::time::Duration;

/// What ending a reservation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservationEnd {
    /// Bytes charged by writes that were committed under it.
    pub used: u64,
    /// Bytes handed back to `free`.
    pub returned: u64,
}

impl Engine {
    /// Grants `bytes` for `ttl` from `now_ms`, if that much is free.
    pub fn reserve(&mut self, bytes: u64, ttl: Duration, now_ms: u64) -> StoreResult<Reservation> {
        // Expired grants should not stand in the way of a new one.
        self.sweep_expired(now_ms)?;
        let free = self.capacity()?.free;
        if bytes > free {
            return Err(StoreError::Full {
                needed: bytes,
                free,
            });
        }
        self.grant(bytes, ttl, now_ms)
    }

    /// Grants `bytes` counting the space `chunk` holds, and deletes `chunk`
    /// in the same step, so nothing can take the freed space in between.
    /// When even that is not enough the chunk stays where it is and the
    /// error is `Full`. This is how a copy is swapped for a fresh one.
    pub fn reserve_replacing(
        &mut self,
        chunk: &ChunkId,
        bytes: u64,
        ttl: Duration,
        now_ms: u64,
    ) -> StoreResult<Reservation> {
        self.sweep_expired(now_ms)?;
        let held = self
            .chunk_row(chunk)?
            .ok_or(StoreError::Missing { chunk: *chunk })?
            .len;
        let free = self.capacity()?.free.saturating_add(held);
        if bytes > free {
            return Err(StoreError::Full {
                needed: bytes,
                free,
            });
        }
        self.delete(chunk)?;
        self.grant(bytes, ttl, now_ms)
    }

    /// Records a reservation whose space has been checked.
    fn grant(&mut self, bytes: u64, ttl: Duration, now_ms: u64) -> StoreResult<Reservation> {
        let id = ReservationId::random();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let rec = ReservationRecord {
            bytes,
            used: 0,
            expires_ms: now_ms.saturating_add(ttl_ms),
            closed: false,
        };
        self.store_reservation(id, Some(&rec))?;
        self.reservations
            .insert(id, LiveReservation { rec, inflight: 0 });
        Ok(Reservation {
            id,
            bytes,
            expires_ms: rec.expires_ms,
        })
    }

    /// Ends a reservation, keeping what was written under it and returning
    /// the rest. Writes still in flight keep their share until they finish.
    pub fn end_reservation(&mut self, id: ReservationId) -> StoreResult<ReservationEnd> {
        let live = *self
            .reservations
            .get(&id)
            .filter(|r| !r.rec.closed)
            .ok_or(StoreError::UnknownReservation(id))?;
        let returned = live.rec.outstanding().saturating_sub(live.inflight);
        self.close(id, live)?;
        Ok(ReservationEnd {
            used: live.rec.used,
            returned,
        })
    }

    /// Ends every reservation whose expiry is at or before `now_ms`; returns
    /// the bytes handed back.
    pub fn sweep_expired(&mut self, now_ms: u64) -> StoreResult<u64> {
        // The periodic sweep is also when stuck files are tried again.
        self.retry_removals();
        let expired: Vec<_> = self
            .reservations
            .iter()
            .filter(|(_, r)| !r.rec.closed && r.rec.expires_ms <= now_ms)
            .map(|(id, r)| (*id, *r))
            .collect();
        let mut returned = 0;
        for (id, live) in expired {
            returned += live.rec.outstanding().saturating_sub(live.inflight);
            self.close(id, live)?;
            tracing::debug!(%id, "reservation expired");
        }
        Ok(returned)
    }

    /// Drops the reservation, or with writes in flight shrinks it to them and
    /// marks it closed so it takes no more.
    fn close(&mut self, id: ReservationId, live: LiveReservation) -> StoreResult<()> {
        if live.inflight == 0 {
            self.store_reservation(id, None)?;
            self.reservations.remove(&id);
        } else {
            let rec = ReservationRecord {
                bytes: live.rec.used + live.inflight,
                closed: true,
                ..live.rec
            };
            self.store_reservation(id, Some(&rec))?;
            self.reservations
                .insert(id, LiveReservation { rec, ..live });
        }
        Ok(())
    }

    /// Checks that a write of `len` may go under `id` now, and holds its bytes.
    pub fn charge_inflight(&mut self, id: ReservationId, len: u64, now_ms: u64) -> StoreResult<()> {
        let live = self
            .reservations
            .get_mut(&id)
            .ok_or(StoreError::UnknownReservation(id))?;
        if live.rec.closed {
            return Err(StoreError::UnknownReservation(id));
        }
        if live.rec.expires_ms <= now_ms {
            return Err(StoreError::Expired(id));
        }
        let left = live.rec.outstanding().saturating_sub(live.inflight);
        if len > left {
            return Err(StoreError::ReservationExceeded {
                id,
                needed: len,
                left,
            });
        }
        live.inflight += len;
        Ok(())
    }

    /// Takes back an in-flight charge (the write failed or was a duplicate).
    pub fn uncharge_inflight(&mut self, id: ReservationId, len: u64) -> StoreResult<()> {
        let Some(live) = self.reservations.get_mut(&id) else {
            return Ok(());
        };
        live.inflight = live.inflight.saturating_sub(len);
        let live = *live;
        if live.rec.closed {
            // Closed reservations only keep what is in flight.
            self.close(
                id,
                LiveReservation {
                    rec: ReservationRecord {
                        bytes: live.rec.used,
                        ..live.rec
                    },
                    ..live
                },
            )?;
        }
        Ok(())
    }

    /// The row a committed write of `len` leaves, and whether it removes it.
    pub fn charged_row(&self, id: ReservationId, len: u64) -> Option<(LiveReservation, bool)> {
        let live = self.reservations.get(&id)?;
        let mut next = *live;
        next.inflight = next.inflight.saturating_sub(len);
        next.rec.used += len;
        let remove = next.rec.closed && next.inflight == 0;
        Some((next, remove))
    }

    fn store_reservation(
        &self,
        id: ReservationId,
        rec: Option<&ReservationRecord>,
    ) -> StoreResult<()> {
        self.write(|txn| {
            let mut t = txn.open_table(RESERVATIONS).map_err(self.dbe())?;
            match rec {
                Some(rec) => t
                    .insert(&id.0, tables::encode(rec).as_slice())
                    .map_err(self.dbe())?,
                None => t.remove(&id.0).map_err(self.dbe())?,
            };
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Engine;
    use crate::put::{self, PutStart};
    use crate::{Cap, StoreConfig, StoreError, VolumeSpec};
    use ifs_core::{ChunkId, UserId};
    use std::time::Duration;

    #[test]
    fn releasing_with_a_write_in_flight_keeps_only_that_write() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        let spec = VolumeSpec {
            path: vol,
            cap: Cap::Bytes(1 << 20),
        };
        let mut engine =
            Engine::open(&StoreConfig::new(dir.path().join("data"), vec![spec])).unwrap();
        let res = engine.reserve(1000, Duration::from_secs(60), 0).unwrap();
        let data = vec![7u8; 300];
        let id = ChunkId::of(&data);
        let PutStart::Planned(plan) = engine
            .begin_put(res.id, id, UserId([0; 32]), 300, 1)
            .unwrap()
        else {
            panic!("chunk is new");
        };
        // Release while the piece is being written: 700 bytes return at once.
        let end = engine.end_reservation(res.id).unwrap();
        assert_eq!((end.used, end.returned), (0, 700));
        assert_eq!(
            engine.reserved(),
            300,
            "the write in flight keeps its share"
        );
        assert!(matches!(
            engine.end_reservation(res.id),
            Err(StoreError::UnknownReservation(_))
        ));
        let other = ChunkId::of(b"x");
        assert!(matches!(
            engine.begin_put(res.id, other, UserId([0; 32]), 1, 2),
            Err(StoreError::UnknownReservation(_))
        ));
        put::write_pieces(&plan, &data, false).unwrap();
        engine.finish_put(plan, 3).unwrap();
        assert_eq!((engine.used, engine.reserved()), (300, 0));
        assert!(
            engine.reservations.is_empty(),
            "removed once the last write landed"
        );
    }
}
