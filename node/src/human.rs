//! One way to show a byte count and one way to shorten a peer id, for every
//! command's human output (`--json` keeps exact numbers and whole ids).

/// `512 B`, `1.5 GiB`: sizes in powers of 1024, one decimal.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// How many trailing characters of a peer id the tables show.
pub const SHORT_PEER_LEN: usize = 8;

/// A peer id as tables show it: its last 8 characters (the leading
/// `12D3KooW` is the same for every ed25519 key), so `put`'s holders and
/// the `PEER` column of `peers` match by eye.
pub fn short_peer(peer_id: &str) -> String {
    let n = peer_id.chars().count();
    peer_id
        .chars()
        .skip(n.saturating_sub(SHORT_PEER_LEN))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536 << 20), "1.5 GiB");
        assert_eq!(bytes(3 << 40), "3.0 TiB");
    }

    #[test]
    fn a_peer_id_keeps_its_tail() {
        let id = "12D3KooWGzRb1sxd3jN8h6Y1w6gZ9q9m6QJn1T3tEwqXyqRkQZsp";
        assert_eq!(short_peer(id), "yqRkQZsp");
        assert_eq!(short_peer("abc"), "abc");
    }
}
