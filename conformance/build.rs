//! Compiles the in-container checker (`src/bin/checker.rs`, std only) into a statically linked
//! executable with the same rustc, so the suite can embed it and copy it into any rootfs.
//! There is no musl target on the build machines: glibc with `+crt-static` is used instead.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/bin/checker.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    println!("cargo:rustc-env=BERTH_TARGET_TRIPLE={target}");
    let dest = out.join("berth-conformance-checker");
    let status = Command::new(rustc)
        .args(["--edition", "2021", "--crate-type", "bin", "--crate-name"])
        .arg("berth_conformance_checker")
        .args(["-C", "opt-level=2", "-C", "target-feature=+crt-static"])
        .args([
            "-C",
            "strip=symbols",
            "-C",
            "panic=abort",
            "--target",
            &target,
        ])
        .arg("-o")
        .arg(&dest)
        .arg("src/bin/checker.rs")
        .status()
        .expect("running rustc for the static checker");
    assert!(
        status.success(),
        "building the static checker failed (is libc6-dev installed, with libc.a?)"
    );
}
