//! One page of a bucket listing (ListObjects / ListObjectsV2): the pure
//! part. Keys are listed in byte order, `prefix` filters them, a
//! `delimiter` rolls every key that holds it after the prefix into one
//! common prefix, and a page holds at most `max_keys` keys and prefixes
//! together, after the marker (`start-after`, a continuation token, or a
//! v1 marker).

use std::collections::BTreeMap;

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
}
