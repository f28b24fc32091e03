//! The hop probe's datagrams. Probe and reply are both [`PROBE_LEN`] bytes, so
//! a responder never sends more than it received (no amplification).
//!
//! ```text
//! probe: "IFSH" | version | kind=1 | 0 | 0         | nonce[16]
//! reply: "IFSH" | version | kind=2 | seen TTL | 0  | nonce[16]
//! ```

/// Length of a probe and of a reply.
pub const PROBE_LEN: usize = 24;
/// Length of the random nonce echoed in the reply.
pub const NONCE_LEN: usize = 16;

const MAGIC: &[u8; 4] = b"IFSH";
const VERSION: u8 = 1;
const KIND_PROBE: u8 = 1;
const KIND_REPLY: u8 = 2;

/// Standard initial TTLs / hop limits of common IP stacks, smallest first.
const INITIAL_TTLS: [u8; 3] = [64, 128, 255];

/// Encode a probe carrying `nonce`.
pub fn encode_probe(nonce: &[u8; NONCE_LEN]) -> [u8; PROBE_LEN] {
    encode(KIND_PROBE, 0, nonce)
}

/// Encode the reply to a probe that arrived with TTL `seen_ttl`.
pub fn encode_reply(seen_ttl: u8, nonce: &[u8; NONCE_LEN]) -> [u8; PROBE_LEN] {
    encode(KIND_REPLY, seen_ttl, nonce)
}

fn encode(kind: u8, ttl: u8, nonce: &[u8; NONCE_LEN]) -> [u8; PROBE_LEN] {
    let mut out = [0u8; PROBE_LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4] = VERSION;
    out[5] = kind;
    out[6] = ttl;
    out[8..].copy_from_slice(nonce);
    out
}

/// The nonce of a well-formed probe, or `None` for anything else.
pub fn parse_probe(datagram: &[u8]) -> Option<[u8; NONCE_LEN]> {
    let (kind, ttl, nonce) = parse(datagram)?;
    (kind == KIND_PROBE && ttl == 0).then_some(nonce)
}

/// The seen TTL of a well-formed reply echoing `nonce`, or `None`.
pub fn parse_reply(datagram: &[u8], nonce: &[u8; NONCE_LEN]) -> Option<u8> {
    let (kind, ttl, echoed) = parse(datagram)?;
    (kind == KIND_REPLY && &echoed == nonce).then_some(ttl)
}

fn parse(datagram: &[u8]) -> Option<(u8, u8, [u8; NONCE_LEN])> {
    if datagram.len() != PROBE_LEN || &datagram[..4] != MAGIC || datagram[4] != VERSION {
        return None;
    }
    if datagram[7] != 0 {
        return None;
    }
    let nonce = datagram[8..].try_into().ok()?;
    Some((datagram[5], datagram[6], nonce))
}

/// Hops travelled by a datagram that arrived with `seen` TTL: the smallest
/// standard initial TTL at or above `seen`, minus `seen`.
pub fn hops_from_ttl(seen: u8) -> u8 {
    let initial = INITIAL_TTLS
        .iter()
        .copied()
        .find(|&i| i >= seen)
        .unwrap_or(u8::MAX);
    initial - seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_and_reply_round_trip() {
        let nonce = [9u8; NONCE_LEN];
        assert_eq!(parse_probe(&encode_probe(&nonce)), Some(nonce));
        assert_eq!(parse_reply(&encode_reply(61, &nonce), &nonce), Some(61));
    }

    #[test]
    fn reply_is_never_larger_than_probe() {
        assert_eq!(
            encode_reply(1, &[0; NONCE_LEN]).len(),
            encode_probe(&[0; NONCE_LEN]).len()
        );
    }

    #[test]
    fn malformed_datagrams_are_refused() {
        let nonce = [1u8; NONCE_LEN];
        let probe = encode_probe(&nonce);
        assert_eq!(parse_probe(&probe[..PROBE_LEN - 1]), None);
        let mut long = probe.to_vec();
        long.push(0);
        assert_eq!(parse_probe(&long), None);
        let mut bad_magic = probe;
        bad_magic[0] = b'X';
        assert_eq!(parse_probe(&bad_magic), None);
        let mut bad_version = probe;
        bad_version[4] = 99;
        assert_eq!(parse_probe(&bad_version), None);
        // A reply is not a probe, so responders never answer each other.
        assert_eq!(parse_probe(&encode_reply(64, &nonce)), None);
        assert_eq!(
            parse_reply(&encode_reply(64, &nonce), &[2u8; NONCE_LEN]),
            None
        );
        assert_eq!(parse_probe(&[]), None);
    }

    #[test]
    fn hop_count_from_seen_ttl() {
        assert_eq!(hops_from_ttl(64), 0);
        assert_eq!(hops_from_ttl(60), 4);
        assert_eq!(hops_from_ttl(128), 0);
        assert_eq!(hops_from_ttl(120), 8);
        assert_eq!(hops_from_ttl(250), 5);
        assert_eq!(hops_from_ttl(255), 0);
        assert_eq!(hops_from_ttl(0), 64);
    }
}
