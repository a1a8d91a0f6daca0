//! Block files read back from disk: the record scanner must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = fabric_ledger::record::scan_records(data, 1 << 20);
    assert!(r.valid_len as usize <= data.len());
});
