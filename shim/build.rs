//! Build script: the link arguments that make the plain `cargo build --release` shim the lean
//! one that is benchmarked and installed (docs/design.md, "Memory"; README, "Install").
//!
//! For the release profile, on x86_64 Linux with glibc linked in (.cargo/config.toml), the shim
//! binary (and only it: `rustc-link-arg-bin`) is linked
//! - static non-PIE (`-no-pie -static` after rustc's `-static-pie`): the code stays position
//!   independent (a
//!   build script cannot set `-C relocation-model`), but the linker resolves every address at
//!   link time, so no relocation writes to the binary's pages at start-up;
//! - with shim/hot-functions.txt as lld's symbol ordering file: the functions a container's
//!   life runs sit together at the start of .text, so the pages the kernel maps in on first use
//!   are mostly code the shim needs.

include!("../hack/link-order.rs");

fn main() {
    let order = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hot-functions.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    if !lean_release() {
        return;
    }
    let bin = "containerd-shim-berth-v2";
    // gcc's -no-pie cancels rustc's -static-pie altogether: -static keeps glibc linked in.
    println!("cargo:rustc-link-arg-bin={bin}=-no-pie");
    println!("cargo:rustc-link-arg-bin={bin}=-static");
    order_functions(bin, &order);
}
