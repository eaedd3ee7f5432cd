//! Build script: the commit `berth --version` prints (hack/commit.rs), and for the release
//! build the link order of the `berth` binary: runtime/hot-functions.txt (made by
//! hack/bench/berth-order.sh) as lld's symbol ordering file, so the functions `run`, `create`,
//! `start`, `exec` and `delete` run sit together at the start of .text and the kernel's 64 KiB
//! fault-around windows map in little else (docs/design.md, "Memory of `berth run`"). The
//! binary stays a static-pie (ASLR kept).

include!("../hack/commit.rs");
include!("../hack/link-order.rs");

fn main() {
    emit_commit();
    let order = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hot-functions.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    if lean_release() {
        order_functions("berth", &order);
    }
}
