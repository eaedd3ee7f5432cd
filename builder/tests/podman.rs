//! The built image loads into podman and runs there unchanged, both with
//! berth as podman's runtime and with runc (so the image is standard).
//!
//! Root only; skipped when podman, busybox-static, jq or the berth binary
//! (`cargo build -p berth`) is missing. podman's lock table is machine-wide,
//! so every podman call lives in the one test of this file, in a private
//! store set up by hack/with-podman.sh and removed at the end, failure or not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// target/<profile>/berth next to this test's target/<profile>/deps/.
fn berth_binary() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("berth")))
        .filter(|p| p.exists())
}

fn check(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The private podman store: everything under `dir`, removed on drop.
struct Podman {
    dir: PathBuf,
    berth: PathBuf,
}

impl Podman {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(workspace().join("hack/with-podman.sh"))
            .arg(&self.dir)
            .arg(&self.berth)
            .arg("--")
            .arg("podman")
            .args(args)
            .output()
            .expect("run hack/with-podman.sh")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af"]);
        let _ = self.run(&["system", "reset", "-f"]);
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.dir.join("graph"))
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const DOCKERFILE: &str = r#"FROM oci:@SEED@ AS build
RUN echo "built by berth-build" > /msg
FROM oci:@SEED@
COPY --from=build /msg /msg
COPY hello.txt /hello.txt
ENV GREETING=hi
WORKDIR /data
CMD ["sh", "-c", "cat /msg /hello.txt; echo \"$GREETING from $(pwd)\""]
"#;

const EXPECTED: &str = "built by berth-build\nhello podman\nhi from /data\n";

#[test]
fn oci_archive_loads_into_podman_and_runs_with_berth_and_runc() {
    if !is_root() || !Path::new("/bin/busybox").exists() || !have("jq") || !have("podman") {
        eprintln!("skipping: needs root, busybox-static, jq and podman");
        return;
    }
    let Some(berth) = berth_binary() else {
        eprintln!("skipping: the berth binary is not built (cargo build -p berth)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let seed = tmp.path().join("seed");
    check(
        "make-busybox-image.sh",
        &Command::new(workspace().join("hack/make-busybox-image.sh"))
            .arg(&seed)
            .output()
            .expect("seed script"),
    );
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        DOCKERFILE.replace("@SEED@", &seed.display().to_string()),
    )
    .expect("Dockerfile");
    std::fs::write(ctx.join("hello.txt"), "hello podman\n").expect("hello.txt");
    let archive = tmp.path().join("image.tar");
    let name = "localhost/berth-build-podman-test:latest";
    let digest = check(
        "berth-build build",
        &Command::new(env!("CARGO_BIN_EXE_berth-build"))
            .arg("--root")
            .arg(tmp.path().join("store"))
            .args(["build", "-q", "-t", name, "--output"])
            .arg(format!("type=oci-archive,dest={}", archive.display()))
            .arg(&ctx)
            .output()
            .expect("berth-build"),
    )
    .trim()
    .to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");

    let podman = Podman {
        dir: tmp.path().join("podman"),
        berth,
    };
    let archive_arg = archive.display().to_string();
    let loaded = check("podman load", &podman.run(&["load", "-i", &archive_arg]));
    assert!(loaded.contains(name), "{loaded}");
    // Unchanged: podman keeps the manifest we wrote.
    let inspected = check(
        "podman image inspect",
        &podman.run(&["image", "inspect", "--format", "{{.Digest}}", name]),
    );
    assert_eq!(inspected.trim(), digest);

    let base = [
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        "seccomp=unconfined",
        "--pull=never",
    ];
    let mut with_berth = base.to_vec();
    with_berth.push(name);
    let out = check("podman run (berth)", &podman.run(&with_berth));
    assert_eq!(out, EXPECTED);

    if Path::new("/usr/sbin/runc").exists() {
        let mut with_runc = base.to_vec();
        with_runc.extend(["--runtime", "/usr/sbin/runc", name]);
        let out = check("podman run --runtime runc", &podman.run(&with_runc));
        assert_eq!(out, EXPECTED);
    } else {
        eprintln!("runc not installed: skipping the run with runc");
    }
}
