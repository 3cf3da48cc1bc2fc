//! Untrusted OpenAPI documents (uploaded by providers) never panic the importer.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(imported) = tollgate_openapi::import(&doc) {
            // Every imported operation's path is a template the gateway can parse.
            for op in imported.operations {
                assert!(tollgate_core::path_template::PathTemplate::parse(&op.path).is_ok());
            }
        }
    }
});
