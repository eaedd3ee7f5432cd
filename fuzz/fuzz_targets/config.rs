//! config.json loader, validator and mount plan: any bytes must give a value or an error
//! naming the field, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let file = Path::new("config.json");
    let Ok(spec) = berth::spec::parse_json::<oci_spec::runtime::Spec>(file, data) else {
        return;
    };
    // A bundle path that does not exist: validation must still only return errors.
    let bundle = Path::new("/nonexistent-berth-fuzz-bundle");
    let _ = berth::spec::validate(&spec, bundle);
    let _ = berth::rootfs::plan::plan(&spec, bundle);
    let _ = berth::rootfs::plan::devices(&spec);
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        let _ = berth::seccomp::compile(s);
    }
});
