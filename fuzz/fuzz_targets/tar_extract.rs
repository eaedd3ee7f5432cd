//! Layer extraction of arbitrary tar bytes: an error or a tree, never a panic, and nothing is
//! ever written outside the destination (absolute names, `..`, links out of the root).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(outer) = tempfile::tempdir() else {
        return;
    };
    let dest = outer.path().join("root");
    if std::fs::create_dir(&dest).is_err() {
        return;
    }
    let _ = berth_build::layer::extract::extract(
        data,
        &dest,
        berth_build::layer::extract::ExtractMode::Flat,
    );
    let names: Vec<_> = std::fs::read_dir(outer.path())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec![std::ffi::OsString::from("root")], "wrote outside the root");
});
