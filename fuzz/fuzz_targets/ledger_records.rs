//! Block files read back from disk: the record scanner and Fabric's block
//! serialization parser must never panic, and what parses must re-encode to
//! something that parses the same.
#![no_main]
use fabric_ledger::serialization::{serialize_block, BlockView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = fabric_ledger::record::scan_records(data, 1 << 20);
    assert!(r.valid_len as usize <= data.len());
    for span in &r.records {
        let start = span.body_offset() as usize;
        let body = &data[start..start + span.body_len as usize];
        if let Ok(view) = BlockView::parse(body) {
            let mut again = Vec::new();
            serialize_block(&view.to_block(), &mut again);
            assert_eq!(BlockView::parse(&again).as_ref(), Ok(&view));
        }
        let _ = fabric_ledger::serialization::plausible_start(body, 1, Some(&[0u8; 32][..]));
        let _ = fabric_ledger::serialization::check_prefix(body, u64::from(span.body_len) + 7);
    }
});
