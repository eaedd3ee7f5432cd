//! Escape-class attacks on the builder: a base image whose symlinks point a WORKDIR or a COPY
//! destination outside the rootfs, and the descriptors and processes a RUN step can see.
//! Root only (RUN needs overlay mounts and containers); seed image:
//! hack/make-busybox-image.sh.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The busybox seed layout, made once per test binary; None (with a reason) when the machine
/// cannot run builds.
fn seed() -> Option<&'static Path> {
    static SEED: OnceLock<Option<PathBuf>> = OnceLock::new();
    SEED.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let jq = Command::new("sh")
            .args(["-c", "command -v jq"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !root || !Path::new("/bin/busybox").exists() || !jq {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI must run the builder escape tests (root, busybox-static, jq)"
            );
            eprintln!("skipping: needs root, busybox-static and jq");
            return None;
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox-seed-escapes");
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(workspace().join("hack/make-busybox-image.sh"))
            .arg(&dir)
            .output()
            .expect("seed script");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(dir)
    })
    .as_deref()
}

/// Runs berth-build with `args` from a shell that first opens fd 7 (a host file) and fd 8
/// (the host's /) without close-on-exec, so a leak into RUN would show.
fn berth_build(store: &Path, args: &[&str]) -> (bool, String) {
    let bin = env!("CARGO_BIN_EXE_berth-build");
    let mut script = format!(
        "exec 7</etc/hostname 8</; exec {bin} --root {}",
        store.display()
    );
    for a in args {
        script.push_str(&format!(" '{a}'"));
    }
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("berth-build");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The descriptors a listing of /proc/self/fd shows, minus the listing's own directory fd.
fn fds_of(listing: &str) -> Vec<u32> {
    let mut v: Vec<u32> = listing
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    v.sort();
    v.pop();
    v
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.extend(files_under(&e.path()));
        }
    }
    out
}

/// A base image holding an absolute symlink (`/evil`, through `..` past the root) and a
/// relative one (`/rel`) to a directory that exists on the host: WORKDIR, COPY and RUN
/// writes through them land inside the image, never in the host directory. RUN sees only
/// stdio (not the builder's descriptors) and only its own processes (pid 1 is the step's
/// shell, not the builder).
#[test]
fn symlinked_workdir_and_copy_destination_stay_in_the_rootfs() {
    let Some(seed) = seed() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).expect("ctx");
    std::fs::write(ctx.join("f.txt"), "payload\n").expect("f");
    let out = outside.display().to_string();
    let dockerfile = format!(
        "FROM oci:{seed}\n\
         RUN ln -s /../../../../../../..{out} /evil && ln -s ../../../../../../..{out} /rel\n\
         WORKDIR /evil/sub\n\
         COPY f.txt /evil/\n\
         COPY f.txt /rel/g.txt\n\
         COPY f.txt ./h.txt\n\
         RUN echo run > /evil/r.txt; ls /proc/self/fd > /fds; readlink /proc/1/exe > /exe1; ls /proc > /procs\n",
        seed = seed.display()
    );
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("df");
    let store = dir.path().join("store");
    let (ok, err) = berth_build(&store, &["build", "-t", "evil", &ctx.display().to_string()]);
    assert!(
        files_under(&outside).is_empty(),
        "the build wrote outside the rootfs: {:?}",
        files_under(&outside)
    );
    assert!(ok, "build failed: {err}");
    let bundle = dir.path().join("bundle");
    let (ok, err) = berth_build(&store, &["unpack", "evil", &bundle.display().to_string()]);
    assert!(ok, "unpack failed: {err}");
    assert!(files_under(&outside).is_empty());
    let root = bundle.join("rootfs");
    let inside = root.join(out.trim_start_matches('/'));
    for f in ["f.txt", "g.txt", "sub/h.txt", "r.txt"] {
        assert!(inside.join(f).is_file(), "{f} missing inside the image");
    }
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect(p);
    assert_eq!(
        fds_of(&read("fds")),
        vec![0, 1, 2],
        "RUN saw {:?}",
        read("fds")
    );
    let exe1 = read("exe1");
    assert!(
        exe1.trim().starts_with("/bin/") && !exe1.contains("berth"),
        "pid 1 of RUN is {exe1:?}"
    );
    let pids: Vec<u32> = read("procs")
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    assert!(
        pids.iter().all(|p| *p < 10),
        "RUN sees processes outside its pid namespace: {pids:?}"
    );
}
