//! The local MSP signer with its key in a real PKCS#11 token (SoftHSM2):
//! Fabric's key lookup (CKA_ID = SKI, `KeyIds`, `AltID`) and the errors an
//! operator meets. SoftHSM2 reads `SOFTHSM2_CONF` once per process, so all
//! cases share one token folder and run in one test, in order.

use std::collections::HashMap;

use fabric_common::crypto::{is_low_s, verify_p256};
use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::msp::{KeySource, LocalSigner};
use fabric_common::pkcs11::{ski, Pkcs11Settings};
use fabric_common::softhsm::{msp_key_file, msp_public_point, token_or_skip};

#[test]
fn local_signer_signs_in_softhsm_with_fabrics_key_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let Some(hsm) = token_or_skip(&dir.path().join("hsm"), "ForFabric", "98765432") else {
        return;
    };
    // The library reads its configuration when it is first initialised.
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);

    let org = DevOrg::create(&dir.path().join("org"), "SampleOrg", "example.com").unwrap();
    let by_ski = org.issue("orderer.example.com", NodeOu::Orderer).unwrap();
    let mapped = org.issue("orderer2.example.com", NodeOu::Orderer).unwrap();
    let absent = org.issue("orderer3.example.com", NodeOu::Orderer).unwrap();
    let ski_of = |msp: &std::path::Path| ski(&msp_public_point(msp));
    // Fabric's layout: CKA_ID = SKI. A second key under a chosen CKA_ID.
    hsm.import_key(&msp_key_file(&by_ski), &ski_of(&by_ski), "orderer")
        .unwrap();
    hsm.import_key(&msp_key_file(&mapped), b"orderer-key", "orderer2")
        .unwrap();
    // Only the token may hold the keys from now on.
    for msp in [&by_ski, &mapped, &absent] {
        std::fs::remove_file(msp_key_file(msp)).unwrap();
    }

    let base = Pkcs11Settings {
        library: hsm.library.clone(),
        label: hsm.label.clone(),
        pin: hsm.pin.clone(),
        alt_id: None,
        key_ids: HashMap::new(),
    };
    let with = |f: &dyn Fn(&mut Pkcs11Settings)| {
        let mut s = base.clone();
        f(&mut s);
        KeySource::Pkcs11(s)
    };
    let check = |msp: &std::path::Path, source: &KeySource| {
        let signer = LocalSigner::load_with(msp, "SampleOrg", source).unwrap();
        for i in 0..20u32 {
            let msg = format!("block {i}");
            let sig = signer.sign(msg.as_bytes());
            assert!(is_low_s(&sig).unwrap());
            verify_p256(&msp_public_point(msp), msg.as_bytes(), &sig).unwrap();
        }
    };

    // CKA_ID = SKI (no mapping).
    check(&by_ski, &with(&|_| {}));
    // KeyIds: SKI -> "orderer-key".
    let ski_hex = hex::encode(ski_of(&mapped));
    check(
        &mapped,
        &with(&|s| {
            s.key_ids.insert(ski_hex.clone(), "orderer-key".into());
        }),
    );
    // AltID for every key.
    check(&mapped, &with(&|s| s.alt_id = Some("orderer-key".into())));

    let err = |msp: &std::path::Path, source: KeySource| {
        LocalSigner::load_with(msp, "SampleOrg", &source)
            .unwrap_err()
            .to_string()
    };
    // No key with that CKA_ID.
    let e = err(&absent, with(&|_| {}));
    assert!(e.contains("has no private key with CKA_ID"), "{e}");
    // A key that is not the certificate's (AltID points at another key).
    let e = err(&by_ski, with(&|s| s.alt_id = Some("orderer-key".into())));
    assert!(e.contains("does not match the signing certificate"), "{e}");
    // Wrong label, wrong PIN.
    let e = err(&by_ski, with(&|s| s.label = "NoSuchToken".into()));
    assert!(
        e.contains("no PKCS#11 token with label \"NoSuchToken\""),
        "{e}"
    );
    let e = err(&by_ski, with(&|s| s.pin = "0000".into()));
    assert!(e.contains("login"), "{e}");
    // The software path refuses the folder whose key went to the token.
    assert!(LocalSigner::load(&by_ski, "SampleOrg").is_err());
}
