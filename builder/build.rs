//! Build script: the commit `berth-build --version` prints (hack/commit.rs).

include!("../hack/commit.rs");

fn main() {
    emit_commit();
}
