//! Build script: the commit the CLI modules compiled here print in `--version` (hack/commit.rs).

include!("../hack/commit.rs");

fn main() {
    emit_commit();
}
