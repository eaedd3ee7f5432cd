// The source commit a binary is built from, for `--version` (included by the build scripts of
// runtime/ and builder/ with `include!`). BERTH_COMMIT in the environment wins (a build from a
// source tarball has no .git; hack/release.sh sets it); otherwise `git rev-parse HEAD`, and
// "unknown" when neither is there. The build script reruns when HEAD or the branch it points to
// moves, so a new commit rebuilds with its own id.

/// Sets `BERTH_COMMIT` for the crate being built and tells cargo when to compute it again.
fn emit_commit() {
    println!("cargo:rerun-if-env-changed=BERTH_COMMIT");
    let commit = match std::env::var("BERTH_COMMIT") {
        Ok(c) if !c.is_empty() => c,
        _ => git_commit().unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
}

/// HEAD's commit id, registering the files whose change moves it (HEAD, its branch, packed-refs).
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let git_path = |name: &str| git(&["rev-parse", "--path-format=absolute", "--git-path", name]);
    let mut watched = vec![git_path("HEAD")?, git_path("packed-refs")?];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git_path(&branch)?);
    }
    for path in watched {
        // A path that does not exist would make cargo rerun the script on every build.
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}
