//! Garbage collection of chunks no committed record names: a put that failed
//! or was abandoned after its chunks were stored, or a record that never
//! reached the DHT. Such a chunk costs its holder space for a bounded time
//! only. The rule is pure; the node feeds it what it knows and `now`.

use crate::file_record::FileRecord;

/// What to do with one held chunk bound to (record, `bound_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collect {
    /// A committed version (or a delete) of the record covers it; the
    /// delete and supersede rules apply, not this one.
    Referenced,
    /// Nothing names it yet; it is kept until the grace period ends.
    Awaiting,
    /// Nothing has named it for the whole grace period: free it.
    Free,
}

/// Decide on a chunk stored at `stored_ms`, first seen unreferenced at
/// `first_seen_ms`, when the node's view of its record is `record` (`None`:
/// no copy found). The grace period runs from the later of the two, so a
/// record that is briefly unreachable (a partition, a restart) never costs
/// a chunk: it must stay missing for `grace_ms` of observed time.
pub fn collect(
    record: Option<&FileRecord>,
    bound_version: u64,
    (stored_ms, first_seen_ms): (u64, u64),
    now_ms: u64,
    grace_ms: u64,
) -> Collect {
    if record.is_some_and(|r| r.newest_version() >= bound_version) {
        return Collect::Referenced;
    }
    let since = stored_ms.max(first_seen_ms);
    if now_ms.saturating_sub(since) >= grace_ms {
        Collect::Free
    } else {
        Collect::Awaiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::UserKey;
    use crate::wire::FileDelete;

    #[test]
    fn an_uncommitted_chunk_is_freed_only_after_the_grace_period() {
        assert_eq!(collect(None, 1, (0, 0), 999, 1000), Collect::Awaiting);
        assert_eq!(collect(None, 1, (0, 0), 1000, 1000), Collect::Free);
        // First seen unreferenced late: the grace runs from then.
        assert_eq!(collect(None, 1, (0, 5000), 5500, 1000), Collect::Awaiting);
    }

    #[test]
    fn a_committed_or_deleted_version_keeps_the_chunk_out_of_collection() {
        let owner = UserKey::generate(&mut rand::rng());
        let mut rec = FileRecord::new(owner.user_id(), "f".into());
        rec.add_delete(FileDelete::new(&owner, "f".into(), 3, 1))
            .unwrap();
        assert_eq!(
            collect(Some(&rec), 3, (0, 0), u64::MAX, 1),
            Collect::Referenced
        );
        // A put for version 4 that never committed is collected.
        assert_eq!(collect(Some(&rec), 4, (0, 0), u64::MAX, 1), Collect::Free);
    }
}
