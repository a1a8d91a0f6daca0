//! Signatures from the network through the precomputed-table verifier: it
//! must never accept what ring rejects, nor reject what ring accepts.
#![no_main]
use std::sync::OnceLock;

use fabric_common::p256_tables::KeyTable;
use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING,
};

struct Fixture {
    public: Vec<u8>,
    table: KeyTable,
    sig: Vec<u8>,
}

const MSG: &[u8] = b"a transaction payload";

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = key.public_key().as_ref().to_vec();
        Fixture {
            table: KeyTable::new(&public).unwrap(),
            sig: key.sign(&rng, MSG).unwrap().as_ref().to_vec(),
            public,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // Either the input itself, or the valid signature with the input XORed in.
    let sig: Vec<u8> = match data.split_first() {
        Some((0, rest)) => f
            .sig
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ rest.get(i).copied().unwrap_or(0))
            .collect(),
        _ => data.to_vec(),
    };
    let ring_ok = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &f.public)
        .verify(MSG, &sig)
        .is_ok();
    match f.table.verify(MSG, &sig) {
        Some(true) => assert!(ring_ok, "table accepted what ring rejects"),
        Some(false) => assert!(!ring_ok, "table rejected what ring accepts"),
        None => {}
    }
});
