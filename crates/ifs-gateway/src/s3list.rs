//! One page of a bucket listing (ListObjects / ListObjectsV2): the pure
//! part. Keys are listed in byte order, `prefix` filters them, a
//! `delimiter` rolls every key that holds it after the prefix into one
//! common prefix, and a page holds at most `max_keys` keys and prefixes
//! together, after the marker (`start-after`, a continuation token, or a
//! v1 marker).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One file or folder of the bucket, by its key relative to the bucket
/// (a folder's key ends with `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item<T> {
    /// The key.
    pub key: String,
    /// What the caller keeps about it (`None` for a folder).
    pub object: Option<T>,
}

/// What a page lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// Objects, in key order.
    pub objects: Vec<(String, T)>,
    /// Common prefixes, in order.
    pub prefixes: Vec<String>,
    /// The last key or prefix of this page when more follow.
    pub next_marker: Option<String>,
}

/// The page of `items` (any order) after `marker`: see the module doc.
/// Folders (items without an object) are listed only through a common
/// prefix; without a delimiter they are skipped.
pub fn page<T: Clone>(
    items: &[Item<T>],
    prefix: &str,
    delimiter: Option<&str>,
    marker: Option<&str>,
    max_keys: usize,
) -> Page<T> {
    // Key or prefix → the object (None for a common prefix).
    let mut rows: BTreeMap<&str, Option<&T>> = BTreeMap::new();
    for it in items {
        let Some(rest) = it.key.strip_prefix(prefix) else {
            continue;
        };
        let rolled = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
            rest.find(d)
                .map(|at| &it.key[..prefix.len() + at + d.len()])
        });
        match (rolled, &it.object) {
            (Some(p), _) => {
                rows.insert(p, None);
            }
            (None, Some(o)) => {
                rows.insert(&it.key, Some(o));
            }
            (None, None) => {}
        }
    }
    let mut out = Page {
        objects: Vec::new(),
        prefixes: Vec::new(),
        next_marker: None,
    };
    let mut taken = 0usize;
    let mut after = rows
        .into_iter()
        .filter(|(k, _)| marker.is_none_or(|m| *k > m))
        .peekable();
    while let Some((k, o)) = after.next() {
        if taken == max_keys {
            break;
        }
        match o {
            Some(o) => out.objects.push((k.to_string(), o.clone())),
            None => out.prefixes.push(k.to_string()),
        }
        taken += 1;
        if taken == max_keys && after.peek().is_some() {
            out.next_marker = Some(k.to_string());
        }
    }
    out
}

/// The folder whose listing holds every key under `prefix` in a bucket
/// whose top folder is `bucket`: the prefix up to its last `/`.
pub fn base_folder(bucket: &str, prefix: &str) -> String {
    match prefix.rfind('/') {
        Some(at) => format!("{bucket}/{}", &prefix[..at]),
        None => bucket.to_string(),
    }
}

/// How long a listing taken for one page serves the pages after it.
pub const LISTING_FRESH: Duration = Duration::from_secs(30);
/// Listings kept at once.
pub const LISTINGS_KEPT: usize = 8;
/// The most entries kept, all listings together (about 200 bytes each):
/// a listing larger than this is taken again for each page, and the
/// oldest listings go to make room for a new one.
pub const LISTING_MAX_ITEMS: usize = 250_000;

/// What a listing was taken of: a bucket's folder, one level or all below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingKey {
    /// The bucket.
    pub bucket: String,
    /// The folder listed ([`base_folder`]).
    pub base: String,
    /// One level (delimiter `/`) or the whole tree below.
    pub one_level: bool,
}

struct Listing<T> {
    key: ListingKey,
    writes: u64,
    at: Instant,
    items: Arc<Vec<Item<T>>>,
}

/// Listings taken for one page, kept for the next pages of the same
/// listing: a client paging through N keys, 1,000 at a time, makes the
/// gateway walk the tree once instead of once per page. A listing serves
/// only while no change made through the same drive has ended since it
/// was taken (`writes`, see `Drive::writes`) and for [`LISTING_FRESH`];
/// changes made elsewhere show within that time, as a page taken afresh
/// would show them.
pub struct Listings<T> {
    kept: Mutex<VecDeque<Listing<T>>>,
}

impl<T> Default for Listings<T> {
    fn default() -> Self {
        Listings {
            kept: Mutex::new(VecDeque::new()),
        }
    }
}

impl<T> Listings<T> {
    /// The listing of `key` taken while the change count read `writes`,
    /// if one is kept and fresh at `now`.
    pub fn get(&self, key: &ListingKey, writes: u64, now: Instant) -> Option<Arc<Vec<Item<T>>>> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.retain(|l| now.saturating_duration_since(l.at) < LISTING_FRESH);
        kept.iter()
            .find(|l| l.key == *key && l.writes == writes)
            .map(|l| Arc::clone(&l.items))
    }

    /// Keep `items`, the listing of `key` begun at `at` while the change
    /// count read `writes`, in place of an older one of the same key; the
    /// oldest goes when more than [`LISTINGS_KEPT`] are kept.
    pub fn keep(&self, key: ListingKey, writes: u64, at: Instant, items: Arc<Vec<Item<T>>>) {
        if items.len() > LISTING_MAX_ITEMS {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.retain(|l| l.key != key);
        kept.push_back(Listing {
            key,
            writes,
            at,
            items,
        });
        let mut total: usize = kept.iter().map(|l| l.items.len()).sum();
        while kept.len() > LISTINGS_KEPT || total > LISTING_MAX_ITEMS {
            match kept.pop_front() {
                Some(old) => total -= old.items.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(keys: &[&str]) -> Vec<Item<u32>> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| Item {
                key: k.to_string(),
                object: (!k.ends_with('/')).then_some(i as u32),
            })
            .collect()
    }

    fn keys(p: &Page<u32>) -> Vec<&str> {
        p.objects.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn keys_come_in_byte_order_filtered_by_prefix() {
        let it = items(&["b", "a/x", "a/b.txt", "a/", "ab", "c"]);
        let p = page(&it, "a", None, None, 100);
        assert_eq!(keys(&p), ["a/b.txt", "a/x", "ab"]);
        assert!(p.prefixes.is_empty() && p.next_marker.is_none());
    }

    #[test]
    fn a_delimiter_rolls_keys_into_common_prefixes() {
        let it = items(&["a/1", "a/2", "a/d/3", "a/d/", "a/e/", "b", "a.txt"]);
        let p = page(&it, "", Some("/"), None, 100);
        assert_eq!(keys(&p), ["a.txt", "b"]);
        assert_eq!(p.prefixes, ["a/"]);
        let p = page(&it, "a/", Some("/"), None, 100);
        assert_eq!(keys(&p), ["a/1", "a/2"]);
        assert_eq!(
            p.prefixes,
            ["a/d/", "a/e/"],
            "an empty folder is a prefix too"
        );
    }

    #[test]
    fn pages_cover_every_key_once_in_order() {
        let names: Vec<String> = (0..2_500).map(|i| format!("k/{i:05}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let it = items(&refs);
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        let mut pages = 0;
        loop {
            let p = page(&it, "k/", None, marker.as_deref(), 1_000);
            pages += 1;
            seen.extend(keys(&p).into_iter().map(str::to_string));
            match p.next_marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, names);
    }

    #[test]
    fn prefixes_count_towards_max_keys_and_markers_skip_them() {
        let it = items(&["a/1", "b/1", "c", "d/1"]);
        let p = page(&it, "", Some("/"), None, 2);
        assert_eq!(p.prefixes, ["a/", "b/"]);
        assert_eq!(p.next_marker.as_deref(), Some("b/"));
        let p = page(&it, "", Some("/"), Some("b/"), 2);
        assert_eq!(keys(&p), ["c"]);
        assert_eq!(p.prefixes, ["d/"]);
        assert_eq!(p.next_marker, None, "nothing follows the last page");
    }

    #[test]
    fn an_exactly_full_last_page_has_no_marker() {
        let it = items(&["a", "b"]);
        assert_eq!(page(&it, "", None, None, 2).next_marker, None);
        assert!(page(&it, "", None, None, 0).objects.is_empty());
    }

    #[test]
    fn the_base_folder_is_the_prefix_up_to_its_last_slash() {
        assert_eq!(base_folder("bk", ""), "bk");
        assert_eq!(base_folder("bk", "ph"), "bk");
        assert_eq!(base_folder("bk", "photos/20"), "bk/photos");
        assert_eq!(base_folder("bk", "photos/2024/"), "bk/photos/2024");
    }
    #[test]
    fn a_kept_listing_serves_only_its_own_key_while_fresh_and_unchanged() {
        let l: Listings<u32> = Listings::default();
        let key = |b: &str, one| ListingKey {
            bucket: b.into(),
            base: b.into(),
            one_level: one,
        };
        let t0 = Instant::now();
        let items = Arc::new(vec![Item {
            key: "a".into(),
            object: Some(1),
        }]);
        l.keep(key("b", false), 7, t0, Arc::clone(&items));
        assert!(l.get(&key("b", false), 7, t0).is_some());
        // Another bucket, another depth, a change since: taken afresh.
        assert!(l.get(&key("c", false), 7, t0).is_none());
        assert!(l.get(&key("b", true), 7, t0).is_none());
        assert!(l.get(&key("b", false), 8, t0).is_none());
        // Too old: gone.
        assert!(l.get(&key("b", false), 7, t0 + LISTING_FRESH).is_none());
        assert!(
            l.get(&key("b", false), 7, t0).is_none(),
            "dropped once stale"
        );

        // At most LISTINGS_KEPT, the oldest dropped first; a newer listing
        // of a key replaces the older one.
        for i in 0..=LISTINGS_KEPT {
            l.keep(key(&format!("b{i}"), false), 1, t0, Arc::clone(&items));
        }
        assert!(l.get(&key("b0", false), 1, t0).is_none());
        assert!(
            l.get(&key(&format!("b{LISTINGS_KEPT}"), false), 1, t0)
                .is_some()
        );
        l.keep(key("b1", false), 2, t0, Arc::clone(&items));
        assert!(l.get(&key("b1", false), 1, t0).is_none());
        assert!(l.get(&key("b1", false), 2, t0).is_some());

        // Too large to keep; and the entries of all listings together
        // stay within the budget, the oldest going first.
        let many = |n: usize| {
            Arc::new(
                (0..n)
                    .map(|i| Item {
                        key: i.to_string(),
                        object: None,
                    })
                    .collect::<Vec<Item<u32>>>(),
            )
        };
        l.keep(key("big", false), 1, t0, many(LISTING_MAX_ITEMS + 1));
        assert!(l.get(&key("big", false), 1, t0).is_none());
        l.keep(key("half1", false), 1, t0, many(LISTING_MAX_ITEMS / 2));
        l.keep(key("half2", false), 1, t0, many(LISTING_MAX_ITEMS / 2));
        assert!(l.get(&key("b1", false), 2, t0).is_none(), "made room");
        assert!(l.get(&key("half1", false), 1, t0).is_some());
        l.keep(key("half3", false), 1, t0, many(LISTING_MAX_ITEMS / 2));
        assert!(l.get(&key("half1", false), 1, t0).is_none());
        assert!(l.get(&key("half2", false), 1, t0).is_some());
        assert!(l.get(&key("half3", false), 1, t0).is_some());
    }
}
