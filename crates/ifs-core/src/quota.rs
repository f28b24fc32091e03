//! Who may hold how much of a node's free space: the rules a node applies
//! to user-signed reservation requests, as a pure ledger fed with `now`.
//!
//! A grant that has received no bytes is *unstarted*. It costs its asker one
//! signed request and the node the space it holds, so it is soft: after
//! [`QuotaPolicy::preempt_after_ms`] any other user's request that does not
//! fit in the free space may take it back, and after
//! [`QuotaPolicy::idle_lapse_ms`] it lapses on its own. Per user, grants are
//! capped in number and in bytes (a share of the node's grantable space), so
//! one key cannot take everything and many keys cannot keep what they took
//! without sending data. A grant that has stored bytes is kept until its
//! owner settles it or its TTL ends.

use std::collections::BTreeMap;

use crate::ids::UserId;

/// Limits a node applies to reservations (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaPolicy {
    /// Largest share of the node's grantable space (free + reserved) one
    /// user may hold in open grants, percent (1..=100).
    pub user_share_pct: u8,
    /// Most open grants per user.
    pub max_grants_per_user: usize,
    /// Age after which an unstarted grant may be taken back for another
    /// user's request.
    pub preempt_after_ms: u64,
    /// Age after which an unstarted grant lapses by itself.
    pub idle_lapse_ms: u64,
}

impl Default for QuotaPolicy {
    fn default() -> Self {
        QuotaPolicy {
            user_share_pct: 50,
            max_grants_per_user: 64,
            preempt_after_ms: 10_000,
            idle_lapse_ms: 60_000,
        }
    }
}

/// Why a reservation request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaRefusal {
    /// The user already holds the most grants allowed.
    #[error("user holds {open} open reservations here, the limit is {max}")]
    TooManyGrants {
        /// Grants open now.
        open: usize,
        /// The limit.
        max: usize,
    },
    /// The grant would take the user past its share.
    #[error("user would hold {would_hold} bytes here, its share is {share}")]
    OverShare {
        /// Bytes held after the grant.
        would_hold: u64,
        /// The user's share of this node.
        share: u64,
    },
    /// Not enough free space, even after taking back unstarted grants.
    #[error("not enough space: {needed} bytes asked, {free} free")]
    NoSpace {
        /// Bytes asked.
        needed: u64,
        /// Free bytes, counting unstarted grants that may be taken back.
        free: u64,
    },
}

/// One open grant as the ledger knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantEntry {
    /// The user it is held for.
    pub client: UserId,
    /// Bytes granted.
    pub bytes: u64,
    /// Bytes of chunks stored under it so far.
    pub used: u64,
    /// When it was granted, ms.
    pub granted_at_ms: u64,
    /// When it ends at the latest (its TTL), ms.
    pub expires_at_ms: u64,
}

impl GrantEntry {
    /// Whether any chunk was stored under it.
    pub fn started(&self) -> bool {
        self.used > 0
    }

    /// Bytes not written yet.
    pub fn left(&self) -> u64 {
        self.bytes.saturating_sub(self.used)
    }
}

/// What admitting a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// It fits in the free space as it is.
    Fits,
    /// It fits once these unstarted grants are taken back.
    Preempt(Vec<[u8; 16]>),
}

/// Every open grant of one node, by reservation id.
#[derive(Clone, Debug, Default)]
pub struct GrantLedger {
    grants: BTreeMap<[u8; 16], GrantEntry>,
}

impl GrantLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decide on `client`'s request for `bytes` when the node has `free`
    /// bytes not held by any grant.
    pub fn admit(
        &self,
        policy: &QuotaPolicy,
        client: &UserId,
        bytes: u64,
        free: u64,
        now_ms: u64,
    ) -> Result<Admission, QuotaRefusal> {
        // What a user holds is what it reserved and has not written yet:
        // bytes it stored were paid for with bandwidth and are real data,
        // and a used-up grant is just waiting for its settle.
        let (open, held) = self
            .grants
            .values()
            .filter(|g| g.client == *client && g.left() > 0)
            .fold((0usize, 0u64), |(n, b), g| {
                (n + 1, b.saturating_add(g.left()))
            });
        if open >= policy.max_grants_per_user {
            return Err(QuotaRefusal::TooManyGrants {
                open,
                max: policy.max_grants_per_user,
            });
        }
        let pool = free.saturating_add(self.held());
        let pct = u128::from(policy.user_share_pct.clamp(1, 100));
        let share = u64::try_from(u128::from(pool) * pct / 100).unwrap_or(u64::MAX);
        let would_hold = held.saturating_add(bytes);
        if would_hold > share {
            return Err(QuotaRefusal::OverShare { would_hold, share });
        }
        if bytes <= free {
            return Ok(Admission::Fits);
        }
        // Take back the oldest unstarted grants of other users first.
        let mut soft: Vec<(&[u8; 16], &GrantEntry)> = self
            .grants
            .iter()
            .filter(|(_, g)| {
                g.client != *client
                    && !g.started()
                    && now_ms.saturating_sub(g.granted_at_ms) >= policy.preempt_after_ms
            })
            .collect();
        soft.sort_by_key(|(id, g)| (g.granted_at_ms, **id));
        let mut avail = free;
        let mut taken = Vec::new();
        for (id, g) in soft {
            if avail >= bytes {
                break;
            }
            avail = avail.saturating_add(g.bytes);
            taken.push(*id);
        }
        if avail >= bytes {
            Ok(Admission::Preempt(taken))
        } else {
            Err(QuotaRefusal::NoSpace {
                needed: bytes,
                free: avail,
            })
        }
    }

    /// Record a grant made at `now_ms`, ending at `expires_at_ms`.
    pub fn insert(
        &mut self,
        id: [u8; 16],
        client: UserId,
        bytes: u64,
        (now_ms, expires_at_ms): (u64, u64),
    ) {
        self.grants.insert(
            id,
            GrantEntry {
                client,
                bytes,
                used: 0,
                granted_at_ms: now_ms,
                expires_at_ms,
            },
        );
    }

    /// The grant `id`, if open.
    pub fn get(&self, id: &[u8; 16]) -> Option<&GrantEntry> {
        self.grants.get(id)
    }

    /// Whether a chunk of `len` bytes for `client` may go under `id`: the
    /// grant is open, is the client's, and has that much left.
    pub fn may_store(&self, id: &[u8; 16], client: &UserId, len: u64) -> bool {
        self.grants
            .get(id)
            .is_some_and(|g| g.client == *client && g.bytes.saturating_sub(g.used) >= len)
    }

    /// `len` bytes were stored under `id`.
    pub fn charge(&mut self, id: &[u8; 16], len: u64) {
        if let Some(g) = self.grants.get_mut(id) {
            g.used = g.used.saturating_add(len);
        }
    }

    /// The grant ended (settled, lapsed, taken back or expired).
    pub fn remove(&mut self, id: &[u8; 16]) -> Option<GrantEntry> {
        self.grants.remove(id)
    }

    /// Grants that end at `now_ms`: unstarted ones older than the policy's
    /// idle lapse, and every one past its TTL.
    pub fn lapsed(&self, policy: &QuotaPolicy, now_ms: u64) -> Vec<[u8; 16]> {
        self.grants
            .iter()
            .filter(|(_, g)| {
                (!g.started() && now_ms.saturating_sub(g.granted_at_ms) >= policy.idle_lapse_ms)
                    || now_ms >= g.expires_at_ms
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Bytes of unstarted grants another user's request may take back at
    /// `now_ms`: free space in all but name, as capacity reports show it.
    pub fn soft_bytes(&self, policy: &QuotaPolicy, now_ms: u64) -> u64 {
        self.grants
            .values()
            .filter(|g| {
                !g.started() && now_ms.saturating_sub(g.granted_at_ms) >= policy.preempt_after_ms
            })
            .fold(0u64, |a, g| a.saturating_add(g.bytes))
    }

    /// Bytes reserved and not written yet, over every open grant.
    pub fn held(&self) -> u64 {
        self.grants
            .values()
            .fold(0u64, |a, g| a.saturating_add(g.left()))
    }

    /// Open grants.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether no grant is open.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u8) -> UserId {
        UserId([n; 32])
    }

    #[test]
    fn one_user_gets_at_most_its_share() {
        let p = QuotaPolicy::default();
        let mut l = GrantLedger::new();
        assert_eq!(l.admit(&p, &user(1), 500, 1000, 0), Ok(Admission::Fits));
        l.insert([1; 16], user(1), 500, (0, u64::MAX));
        // 500 held of a pool of 1000: nothing more for user 1.
        assert!(matches!(
            l.admit(&p, &user(1), 1, 500, 0),
            Err(QuotaRefusal::OverShare { .. })
        ));
        assert_eq!(l.admit(&p, &user(2), 500, 500, 0), Ok(Admission::Fits));
    }

    #[test]
    fn many_keys_cannot_keep_unstarted_space_from_an_honest_user() {
        let p = QuotaPolicy::default();
        let mut l = GrantLedger::new();
        let mut free = 1000u64;
        for k in 0..10u8 {
            l.insert([k; 16], user(k), 100, (0, u64::MAX));
            free -= 100;
        }
        assert_eq!(free, 0);
        // Too early: the hoarders' grants are protected for a moment.
        assert!(matches!(
            l.admit(&p, &user(99), 250, free, 1000),
            Err(QuotaRefusal::NoSpace { .. })
        ));
        // Later, the oldest three unstarted grants are taken back.
        match l.admit(&p, &user(99), 250, free, p.preempt_after_ms) {
            Ok(Admission::Preempt(ids)) => assert_eq!(ids.len(), 3),
            other => panic!("expected preemption, got {other:?}"),
        }
        // A started grant is never taken back.
        l.charge(&[0; 16], 1);
        match l.admit(&p, &user(99), 100, free, p.preempt_after_ms) {
            Ok(Admission::Preempt(ids)) => assert_eq!(ids, vec![[1; 16]]),
            other => panic!("expected preemption, got {other:?}"),
        }
    }

    #[test]
    fn written_bytes_and_used_up_grants_do_not_count_against_the_share() {
        let p = QuotaPolicy {
            max_grants_per_user: 2,
            ..QuotaPolicy::default()
        };
        let mut l = GrantLedger::new();
        // A long streaming put: each grant is used up before the next.
        for k in 0..10u8 {
            assert_eq!(
                l.admit(&p, &user(1), 400, 1000, 0),
                Ok(Admission::Fits),
                "grant {k}"
            );
            l.insert([k; 16], user(1), 400, (0, u64::MAX));
            l.charge(&[k; 16], 400);
        }
        assert_eq!(l.held(), 0);
    }

    #[test]
    fn grants_are_capped_in_number_and_lapse_when_unused() {
        let p = QuotaPolicy {
            max_grants_per_user: 2,
            ..QuotaPolicy::default()
        };
        let mut l = GrantLedger::new();
        l.insert([1; 16], user(1), 1, (0, u64::MAX));
        l.insert([2; 16], user(1), 1, (0, u64::MAX));
        assert!(matches!(
            l.admit(&p, &user(1), 1, 1000, 0),
            Err(QuotaRefusal::TooManyGrants { open: 2, max: 2 })
        ));
        l.charge(&[2; 16], 1);
        assert_eq!(l.lapsed(&p, p.idle_lapse_ms), vec![[1; 16]]);
        assert!(l.may_store(&[1; 16], &user(1), 1));
        assert!(!l.may_store(&[1; 16], &user(2), 1), "another user's grant");
        assert!(!l.may_store(&[2; 16], &user(1), 1), "used up");
    }
}
