//! The Yjs v1 update validator on arbitrary bytes: no panic, bounded work, and internally
//! consistent summaries.
#![no_main]

use chorus_protocol::update::{UpdateLimits, validate_update_v1};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A tight client limit too, so the limit path is fuzzed as often as the default.
    for limits in [
        UpdateLimits::default(),
        UpdateLimits {
            max_clients: 2,
            max_any_depth: 3,
            max_type_depth: 2,
            check_origins: true,
        },
    ] {
        let Ok(summary) = validate_update_v1(data, &limits) else {
            continue;
        };
        // Every struct takes at least 2 bytes and every range at least 2, so a summary can
        // never claim more than the input holds.
        assert!(summary.structs * 2 + summary.delete_ranges * 2 <= data.len());
        assert!(summary.clients <= limits.max_clients);
        assert!(summary.struct_clients <= summary.clients);
        assert!(summary.first_struct.is_none() || summary.structs > 0);
        // The format is self-delimiting: no strict prefix of an accepted update is one.
        if data.len() <= 256 {
            for end in 0..data.len() {
                assert!(validate_update_v1(&data[..end], &limits).is_err());
            }
        }
    }
});
