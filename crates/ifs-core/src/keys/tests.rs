use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[test]
fn node_key_round_trips_and_signs() {
    let k = NodeKey::generate(&mut rng(1));
    let back = NodeKey::from_bytes(&k.to_bytes()).unwrap();
    assert_eq!(back.node_id(), k.node_id());
    let sig = k.sign(domain::RECEIPT, b"hello");
    assert_eq!(
        verify(k.node_id().as_bytes(), domain::RECEIPT, b"hello", &sig),
        Ok(())
    );
    assert_eq!(
        NodeKey::from_bytes(&[0u8; 31]).unwrap_err(),
        KeyError::BadLength {
            got: 31,
            expected: 32
        }
    );
}

#[test]
fn signature_is_bound_to_domain_message_and_key() {
    let k = NodeKey::generate(&mut rng(2));
    let other = NodeKey::generate(&mut rng(3));
    let sig = k.sign(domain::RECEIPT, b"msg");
    let pk = k.node_id().0;
    assert_eq!(
        verify(&pk, domain::CAPACITY, b"msg", &sig),
        Err(SigError::Invalid)
    );
    assert_eq!(
        verify(&pk, domain::RECEIPT, b"msh", &sig),
        Err(SigError::Invalid)
    );
    assert_eq!(
        verify(&other.node_id().0, domain::RECEIPT, b"msg", &sig),
        Err(SigError::Invalid)
    );
    let mut bad = sig;
    bad.0[10] ^= 1;
    assert!(verify(&pk, domain::RECEIPT, b"msg", &bad).is_err());
}

#[test]
fn user_key_format_is_checked() {
    let k = UserKey::generate(&mut rng(4));
    let bytes = k.to_bytes();
    let back = UserKey::from_bytes(&bytes).unwrap();
    assert_eq!(back.user_id(), k.user_id());
    assert_eq!(back.x25519_public(), k.x25519_public());

    let mut flipped = bytes.clone();
    flipped[20] ^= 0x80;
    assert_eq!(
        UserKey::from_bytes(&flipped).unwrap_err(),
        KeyError::BadChecksum
    );
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert_eq!(UserKey::from_bytes(&magic).unwrap_err(), KeyError::BadMagic);
    let mut version = bytes.clone();
    version[4] = 9;
    assert_eq!(
        UserKey::from_bytes(&version).unwrap_err(),
        KeyError::UnsupportedVersion(9)
    );
    assert!(matches!(
        UserKey::from_bytes(&bytes[..10]),
        Err(KeyError::BadLength { .. })
    ));
}

#[test]
fn only_the_recipient_unwraps_a_file_key() {
    let alice = UserKey::generate(&mut rng(5));
    let bob = UserKey::generate(&mut rng(6));
    let file_key = [7u8; 32];
    let wrap = wrap_key(&file_key, &bob.x25519_public(), &mut rng(7)).unwrap();
    assert_eq!(bob.unwrap_key(&wrap), Ok(file_key));
    assert_eq!(alice.unwrap_key(&wrap), Err(KeyError::UnwrapFailed));

    // Readdressing the wrap to alice does not let her open it.
    let mut stolen = wrap.clone();
    stolen.recipient = alice.x25519_public();
    assert_eq!(alice.unwrap_key(&stolen), Err(KeyError::UnwrapFailed));

    let mut tampered = wrap;
    tampered.sealed[3] ^= 1;
    assert_eq!(bob.unwrap_key(&tampered), Err(KeyError::UnwrapFailed));
}

#[test]
fn low_order_recipient_key_is_refused() {
    assert_eq!(
        wrap_key(&[1; 32], &[0u8; 32], &mut rng(8)).unwrap_err(),
        KeyError::WeakPublicKey
    );
}

#[test]
fn public_key_text_round_trips_and_typos_are_caught() {
    let key = UserKey::generate(&mut rng(9));
    let text = key.public().to_string();
    assert!(text.starts_with("ifspub1"), "{text}");
    let back: UserPublic = text.parse().unwrap();
    assert_eq!(back, key.public());
    assert_eq!(back.user, key.user_id());
    assert_eq!(back.x25519, key.x25519_public());
    // Surrounding whitespace from a copy and paste is fine.
    assert_eq!(format!("  {text}\n").parse::<UserPublic>().unwrap(), back);

    // One changed digit anywhere is caught by the checksum.
    for i in [7, 40, 100, text.len() - 1] {
        let mut t = text.clone().into_bytes();
        t[i] = if t[i] == b'0' { b'1' } else { b'0' };
        let t = String::from_utf8(t).unwrap();
        assert_eq!(
            t.parse::<UserPublic>().unwrap_err(),
            PublicKeyError::BadChecksum,
            "digit {i}"
        );
    }
    assert_eq!(
        text[..text.len() - 2].parse::<UserPublic>().unwrap_err(),
        PublicKeyError::Malformed
    );
    assert_eq!(
        key.user_id().to_hex().parse::<UserPublic>().unwrap_err(),
        PublicKeyError::BadPrefix
    );
}

/// `n` messages of one user, signed in `domain`.
fn signed_batch(k: &UserKey, n: usize) -> (Vec<Vec<u8>>, Vec<Sig>) {
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("entry {i} of a folder").into_bytes())
        .collect();
    let sigs = msgs
        .iter()
        .map(|m| k.sign(domain::FOLDER_ENTRY, m))
        .collect();
    (msgs, sigs)
}

/// `s + l` (the group order) as 32 little-endian bytes: the same scalar,
/// not in canonical form.
fn plus_order(s: &[u8]) -> [u8; 32] {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(L[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

#[test]
fn a_batch_of_one_signer_passes_and_any_forgery_in_it_fails() {
    let k = UserKey::generate(&mut rng(40));
    let id = k.user_id();
    let pk = id.as_bytes();
    let (msgs, sigs) = signed_batch(&k, 64);
    assert_eq!(verify_all(pk, domain::FOLDER_ENTRY, &msgs, &sigs), Ok(()));
    assert_eq!(verify_all(pk, domain::FOLDER_ENTRY, &[], &[]), Ok(()));
    assert_eq!(
        verify_all(pk, domain::FOLDER_ENTRY, &msgs[..3], &sigs[..2]),
        Err(SigError::Invalid)
    );
    assert_eq!(
        verify_all(pk, domain::RECEIPT, &msgs, &sigs),
        Err(SigError::Invalid),
        "another domain"
    );
    let other = UserKey::generate(&mut rng(41));
    for i in [0, 31, 63] {
        let mut m = msgs.clone();
        m[i][0] ^= 1;
        assert!(
            verify_all(pk, domain::FOLDER_ENTRY, &m, &sigs).is_err(),
            "message {i}"
        );
        for byte in [0, 17, 32, 50] {
            let mut s = sigs.clone();
            s[i].0[byte] ^= 0x40;
            assert!(
                verify_all(pk, domain::FOLDER_ENTRY, &msgs, &s).is_err(),
                "signature {i}, byte {byte}"
            );
        }
        let mut s = sigs.clone();
        s[i] = other.sign(domain::FOLDER_ENTRY, &msgs[i]);
        assert!(
            verify_all(pk, domain::FOLDER_ENTRY, &msgs, &s).is_err(),
            "another signer"
        );
        // The same scalar s, not reduced: refused, as `verify` refuses it.
        let mut s = sigs.clone();
        let high = plus_order(&s[i].0[32..]);
        s[i].0[32..].copy_from_slice(&high);
        assert!(verify(pk, domain::FOLDER_ENTRY, &msgs[i], &s[i]).is_err());
        assert!(
            verify_all(pk, domain::FOLDER_ENTRY, &msgs, &s).is_err(),
            "s + l"
        );
    }
    let mut s = sigs.clone();
    s.swap(3, 4);
    assert!(
        verify_all(pk, domain::FOLDER_ENTRY, &msgs, &s).is_err(),
        "swapped"
    );
    // Two forgeries that would cancel in an unweighted sum: the
    // coefficients tell them apart.
    let mut s = sigs.clone();
    let (a, b) = (Scalar::from(7u64), s[1].0);
    let s0 = Scalar::from_bytes_mod_order(s[0].0[32..].try_into().unwrap()) + a;
    let s1 = Scalar::from_bytes_mod_order(b[32..].try_into().unwrap()) - a;
    s[0].0[32..].copy_from_slice(s0.as_bytes());
    s[1].0[32..].copy_from_slice(s1.as_bytes());
    assert!(
        verify_all(pk, domain::FOLDER_ENTRY, &msgs, &s).is_err(),
        "cancelling pair"
    );
    assert_eq!(
        verify_all(&[0u8; 32], domain::FOLDER_ENTRY, &msgs, &sigs),
        Err(SigError::BadPublicKey),
        "a small-order key"
    );
}

#[test]
fn batches_agree_with_one_by_one_verification() {
    let k = UserKey::generate(&mut rng(42));
    let id = k.user_id();
    let pk = id.as_bytes();
    let mut r = rng(43);
    for n in [1usize, 2, 3, 8, 33, 200] {
        let (msgs, sigs) = signed_batch(&k, n);
        for bad in [None, Some(0), Some(n - 1), Some(n / 2)] {
            let mut s = sigs.clone();
            if let Some(i) = bad {
                let byte = rand::RngExt::random_range(&mut r, 0..64usize);
                s[i].0[byte] ^= 1 << rand::RngExt::random_range(&mut r, 0..8u32);
            }
            let one_by_one = msgs
                .iter()
                .zip(&s)
                .all(|(m, s)| verify(pk, domain::FOLDER_ENTRY, m, s).is_ok());
            assert_eq!(
                verify_all(pk, domain::FOLDER_ENTRY, &msgs, &s).is_ok(),
                one_by_one,
                "{n} signatures, corrupted: {bad:?}"
            );
        }
    }
}
