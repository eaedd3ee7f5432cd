// Link arguments shared by the build scripts of runtime/ and shim/ (included with `include!`):
// a hot-function list as lld's symbol ordering file, for the release build of a glibc-static
// x86_64 binary (docs/design.md, "Memory" and "Memory of `berth run`").

/// Whether this build is the one the lean link applies to: the release profile, x86_64 Linux,
/// glibc linked in (`+crt-static`, .cargo/config.toml), where the linker is lld.
fn lean_release() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
}

/// Links binary `bin` with the functions named in `order` (one mangled symbol a line) first in
/// its .text; names the binary no longer has are skipped without a warning.
fn order_functions(bin: &str, order: &std::path::Path) {
    println!(
        "cargo:rustc-link-arg-bin={bin}=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo:rustc-link-arg-bin={bin}=-Wl,--no-warn-symbol-ordering");
}
