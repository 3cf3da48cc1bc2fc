//! Admin API request bodies: deserialising and validating untrusted JSON never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tollgate_core::model::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<CreateApi>(data) {
        let _ = v.validate();
    }
    if let Ok(v) = serde_json::from_slice::<CreatePlan>(data) {
        let _ = v.validate();
    }
    if let Ok(v) = serde_json::from_slice::<UpdateApi>(data) {
        let _ = v.validate();
    }
    if let Ok(v) = serde_json::from_slice::<AddMember>(data) {
        let _ = v.validate();
    }
});
