//! Path templates and request paths never panic the matcher; a parsed template renders
//! back to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tollgate_core::path_template::PathTemplate;

fuzz_target!(|data: (&str, &str)| {
    let (template, path) = data;
    if let Ok(t) = PathTemplate::parse(template) {
        assert_eq!(PathTemplate::parse(&t.to_string()).as_ref(), Ok(&t));
        let _ = t.matches(path);
    }
});
