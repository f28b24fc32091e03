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
