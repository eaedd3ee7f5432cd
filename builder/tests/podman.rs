//! The built image loads into podman and runs there unchanged, both with
//! berth as podman's runtime and with runc (so the image is standard).
//!
//! Root only; skipped when podman, busybox-static, jq or the berth binary
//! (`cargo build -p berth`) is missing. podman's lock table is machine-wide,
//! so every podman call lives in the one test of this file, in a private
//! store set up by hack/with-podman.sh and removed at the end, failure or not.

mod support;
use support::*;

use std::path::Path;
use std::process::Command;

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
    if !can_build(&["podman"]) {
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
