//! End-to-end builds with the `berth-build` binary (root only: RUN needs
//! overlay mounts and containers). Each test has its own store, context
//! and outputs. Seed image: hack/make-busybox-image.sh (busybox-static, jq).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::*;

const MULTI: &str = r#"FROM oci:@SEED@ AS build
ARG MSG=hello
ENV BUILD_DIR=/build
WORKDIR $BUILD_DIR
COPY src/ ./src/
RUN cat src/a.txt > out.txt && echo "$MSG" >> out.txt && rm /etc/group
RUN --network=none echo "$(id -u)" > uid.txt

FROM oci:@SEED@
ENV APP=/app
WORKDIR $APP
COPY --from=build /build/out.txt /build/uid.txt ./
COPY top.txt .
RUN echo 'app:x:1000:1000::/app:/bin/sh' >> /etc/passwd && chown 1000 /app
USER app
RUN id -u > /app/me.txt
LABEL org.example.name="demo app" version=1
EXPOSE 8080 53/udp
HEALTHCHECK --interval=10s --retries=2 CMD ["true"]
ONBUILD RUN echo child
STOPSIGNAL SIGINT
VOLUME /data
CMD ["cat", "/app/out.txt"]
"#;

fn multi_env() -> Option<Env> {
    seed()?;
    Some(Env::new(
        MULTI,
        &[
            ("src/a.txt", "from context\n"),
            ("top.txt", "top\n"),
            (".dockerignore", "secret\n"),
            ("secret", "x"),
        ],
    ))
}

fn manifest_of(layout: &Path) -> serde_json::Value {
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    let d = idx["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .trim_start_matches("sha256:")
        .to_string();
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(d)).expect("manifest"))
        .expect("json")
}

#[test]
fn multi_stage_build_produces_a_valid_runnable_image() {
    let Some(env) = multi_env() else { return };
    let out = env.dir.path().join("out");
    let archive = env.dir.path().join("img.tar");
    let (digest, stderr) = env.ok(
        &[
            "-t",
            "demo:1",
            "--output",
            &format!("type=oci,dest={}", out.display()),
            "--output",
            &format!("type=oci-archive,dest={}", archive.display()),
        ],
        None,
    );
    assert!(digest.starts_with("sha256:"), "{digest}\n{stderr}");
    env.assert_clean();

    // The config has every field.
    let m = manifest_of(&out);
    let cd = m["config"]["digest"]
        .as_str()
        .expect("cfg")
        .trim_start_matches("sha256:")
        .to_string();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("blobs/sha256").join(cd)).expect("config"))
            .expect("json");
    let c = &cfg["config"];
    assert_eq!(c["User"], "app");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["Cmd"], serde_json::json!(["cat", "/app/out.txt"]));
    assert_eq!(c["Labels"]["org.example.name"], "demo app");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(c["Healthcheck"]["Interval"], 10_000_000_000u64);
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo child"]));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert!(c["Env"]
        .as_array()
        .expect("env")
        .iter()
        .any(|e| e == "APP=/app"));
    let layers = m["layers"].as_array().expect("layers").len();
    assert_eq!(
        cfg["rootfs"]["diff_ids"]
            .as_array()
            .expect("diff_ids")
            .len(),
        layers
    );
    let history = cfg["history"].as_array().expect("history");
    assert_eq!(
        history.iter().filter(|h| h["empty_layer"] != true).count(),
        layers
    );

    // Other tools read it.
    if have("skopeo") {
        for reference in [
            format!("oci:{}:demo:1", out.display()),
            format!("oci-archive:{}", archive.display()),
        ] {
            let o = Command::new("skopeo")
                .args(["inspect", &reference])
                .output()
                .expect("skopeo");
            assert!(
                o.status.success(),
                "skopeo {reference}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
            assert_eq!(v["Digest"], digest.as_str());
        }
    } else {
        eprintln!("skopeo not installed: skipping skopeo checks");
    }
    if have("umoci") {
        let bundle = env.dir.path().join("umoci");
        let o = Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:demo:1", out.display())])
            .arg(&bundle)
            .output()
            .expect("umoci");
        assert!(
            o.status.success(),
            "umoci: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let rootfs = bundle.join("rootfs");
        assert_eq!(
            std::fs::read_to_string(rootfs.join("app/out.txt")).expect("out"),
            "from context\nhello\n"
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("app/uid.txt")).expect("uid"),
            "0\n"
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("app/me.txt")).expect("me"),
            "1000\n"
        );
        assert!(
            rootfs.join("etc/group").exists(),
            "the build stage's whiteout leaked"
        );
    } else {
        eprintln!("umoci not installed: skipping umoci checks");
    }

    // Our own unpack, then run it with the berth binary.
    let bundle = env.dir.path().join("bundle");
    let o = Command::new(env!("CARGO_BIN_EXE_berth-build"))
        .arg("--root")
        .arg(env.root())
        .args(["unpack", "demo:1"])
        .arg(&bundle)
        .output()
        .expect("unpack");
    assert!(
        o.status.success(),
        "unpack: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!bundle.join("rootfs/secret").exists());
    let berth = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("berth")))
        .filter(|p| p.exists());
    match berth {
        Some(berth) => {
            let state = env.dir.path().join("berth-state");
            let o = Command::new(berth)
                .arg("--root")
                .arg(&state)
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(format!("bb-test-{}", std::process::id()))
                .output()
                .expect("berth run");
            assert!(
                o.status.success(),
                "berth run: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&o.stdout), "from context\nhello\n");
        }
        None => eprintln!("berth binary not built (cargo build -p berth): skipping the run"),
    }
}

#[test]
fn no_cache_builds_with_source_date_epoch_are_reproducible() {
    let Some(env) = multi_env() else { return };
    let (a, _) = env.ok(&["--no-cache"], Some("1700000000"));
    let (b, stderr) = env.ok(&["--no-cache"], Some("1700000000"));
    assert_eq!(a, b, "{stderr}");
    assert!(!stderr.contains("CACHED"));
    env.assert_clean();
}

#[test]
fn second_build_is_cached_and_changes_rerun_only_dependent_steps() {
    let Some(env) = multi_env() else { return };
    let (first, _) = env.ok(&[], Some("1700000000"));
    let (second, stderr) = env.ok(&[], Some("1700000000"));
    assert_eq!(first, second);
    let fs_steps = MULTI
        .lines()
        .filter(|l| ["RUN", "COPY", "WORKDIR"].iter().any(|w| l.starts_with(w)))
        .count();
    assert_eq!(stderr.matches("CACHED").count(), fs_steps, "{stderr}");
    // Touching a file (mtime only) keeps the cache; the ignored file too.
    std::fs::write(env.ctx().join("top.txt"), "top\n").expect("touch");
    std::fs::write(env.ctx().join("secret"), "changed").expect("ignored");
    let (_, stderr) = env.ok(&[], Some("1700000000"));
    assert_eq!(stderr.matches("CACHED").count(), fs_steps, "{stderr}");
    // Changing top.txt re-runs its COPY and the steps after it only.
    std::fs::write(env.ctx().join("top.txt"), "changed\n").expect("change");
    let (third, stderr) = env.ok(&[], Some("1700000000"));
    assert_ne!(third, first);
    // Build stage (WORKDIR, COPY, RUN, RUN) + final WORKDIR and COPY --from are cached.
    assert_eq!(stderr.matches("CACHED").count(), 6, "{stderr}");
    assert!(stderr.contains("COPY top.txt .\n#") && !stderr.contains("COPY top.txt .\n#14 CACHED"));
    env.assert_clean();
}

#[test]
fn failing_run_reports_status_and_leaves_nothing() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\nRUN echo ok > /ok\nRUN echo partial > /p && exit 3\n",
        &[],
    );
    let out_dir = env.dir.path().join("out");
    let o = env.build(
        &["--output", &format!("type=oci,dest={}", out_dir.display())],
        None,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exit status 3"), "{err}");
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("RUN echo partial > /p && exit 3"), "{err}");
    assert!(!out_dir.exists(), "output written for a failed build");
    env.assert_clean();
}

#[test]
fn missing_copy_source_is_named() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\nCOPY nothere/*.txt /x/\n",
        &[("a.txt", "a")],
    );
    let o = env.build(&[], None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("\"nothere/*.txt\" not found"), "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
    env.assert_clean();
}

#[test]
fn dockerfile_errors_point_at_the_line() {
    if seed().is_none() {
        return;
    }
    let env = Env::new("FROM oci:@SEED@\nRUNN echo\n", &[]);
    let o = env.build(&[], None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Dockerfile:2") && err.contains("RUNN echo"),
        "{err}"
    );
}

#[test]
fn scratch_stage_from_stage_and_images_rm() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@ AS tools\nRUN mkdir -p /dist && echo built > /dist/file\n\
         FROM scratch\nCOPY --from=tools /dist/file /file\nCOPY <<EOF /note\nhi ${X:-there}\nEOF\n",
        &[],
    );
    let (digest, _) = env.ok(&["-t", "mini"], Some("0"));
    let list = Command::new(env!("CARGO_BIN_EXE_berth-build"))
        .arg("--root")
        .arg(env.root())
        .arg("images")
        .output()
        .expect("images");
    assert!(String::from_utf8_lossy(&list.stdout).contains("mini:latest"));
    let bundle = env.dir.path().join("b");
    let o = Command::new(env!("CARGO_BIN_EXE_berth-build"))
        .arg("--root")
        .arg(env.root())
        .args(["unpack", "mini"])
        .arg(&bundle)
        .output()
        .expect("unpack");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/file")).expect("file"),
        "built\n"
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/note")).expect("note"),
        "hi there\n"
    );
    let rm = Command::new(env!("CARGO_BIN_EXE_berth-build"))
        .arg("--root")
        .arg(env.root())
        .args(["rm", "mini"])
        .output()
        .expect("rm");
    assert!(rm.status.success());
    let d = digest.trim_start_matches("sha256:");
    assert!(!env.root().join("blobs/sha256").join(d).exists());
}

#[test]
fn prune_frees_unreferenced_blobs_and_keeps_the_cache() {
    let Some(env) = multi_env() else { return };
    let (tagged, _) = env.ok(&["-t", "keep:1"], Some("1"));
    // An untagged build: its manifest and config are referenced by nothing.
    let (untagged, _) = env.ok(&[], Some("2"));
    assert_ne!(tagged, untagged);
    let out = berth_build(&env, &["prune"]);
    assert!(
        out.contains("Removed 2 blobs, 0 cache entries, 0 unpacked layers"),
        "{out}"
    );
    let d = untagged.trim_start_matches("sha256:");
    assert!(!env.root().join("blobs/sha256").join(d).exists());
    // The cache survived: a rebuild runs nothing and gives the same image.
    let (again, stderr) = env.ok(&["-t", "keep:1"], Some("1"));
    assert_eq!(again, tagged);
    assert!(!stderr.contains(" 0 cached"), "{stderr}");
    assert!(stderr.contains("CACHED"), "{stderr}");
    // Without the tag, --all leaves an empty store.
    berth_build(&env, &["rm", "keep:1"]);
    let out = berth_build(&env, &["prune", "--all"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    let bytes: u64 = out
        .split('(')
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("freed bytes");
    assert!(bytes > 100_000, "{out}");
    let count = |sub: &str| {
        std::fs::read_dir(env.root().join(sub))
            .expect("dir")
            .count()
    };
    assert_eq!(count("blobs/sha256"), 0);
    assert_eq!(count("cache"), 0);
    assert_eq!(count("layers"), 1, "only layers/empty stays");
    // And the store still works.
    let (rebuilt, stderr) = env.ok(&["-t", "keep:1"], Some("1"));
    assert_eq!(rebuilt, tagged);
    assert!(!stderr.contains("CACHED"), "{stderr}");
    env.assert_clean();
}

#[test]
fn run_mount_cache_persists_across_builds_and_stays_out_of_the_image() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\nARG N\n\
         RUN --mount=type=cache,target=/var/cache/app echo \"$N\" >> /var/cache/app/log && cp /var/cache/app/log /seen\n\
         RUN --mount=type=cache,id=shared,target=/w echo from-w > /w/f\n\
         RUN --mount=type=cache,id=shared,target=/r,ro cat /r/f > /shared && (touch /r/x 2>/dev/null && echo rw || echo ro) >> /shared\n\
         RUN --mount=type=cache,target=/owned,uid=1000,gid=100,mode=0700 stat -c %u:%g:%a /owned > /owned.txt\n",
        &[],
    );
    env.ok(&["-t", "c1", "--build-arg", "N=1"], None);
    env.ok(&["-t", "c2", "--build-arg", "N=2"], None);
    let root = unpacked(&env, "c2", "b2");
    assert_eq!(read(&root, "seen"), "1\n2\n");
    assert_eq!(read(&root, "shared"), "from-w\nro\n");
    assert_eq!(read(&root, "owned.txt"), "1000:100:700\n");
    // The mount points the runtime created are not in the layers, and the
    // cache content never is.
    for p in ["var/cache/app", "w", "r", "owned"] {
        assert!(!root.join(p).exists(), "{p} leaked into the image");
    }
    // --no-cache re-runs the step, the cache mount is still there.
    env.ok(&["-t", "c3", "--build-arg", "N=3", "--no-cache"], None);
    assert_eq!(read(&unpacked(&env, "c3", "b3"), "seen"), "1\n2\n3\n");
    // prune --all removes the cache directories.
    let out = berth_build(&env, &["prune", "--all"]);
    assert!(out.contains("3 cache mounts"), "{out}");
    env.assert_clean();
}

#[test]
fn run_mount_tmpfs_is_empty_and_discarded() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\n\
         RUN --mount=type=tmpfs,target=/scratch,size=1m echo x > /scratch/f && \
         grep ' /scratch ' /proc/mounts | cut -d' ' -f3 > /fstype && \
         (dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null && echo fits || echo full) >> /fstype\n\
         RUN --mount=type=tmpfs,target=/tmp ls -A /tmp | wc -l > /count\n",
        &[],
    );
    env.ok(&["-t", "t"], None);
    let root = unpacked(&env, "t", "b");
    assert_eq!(read(&root, "fstype"), "tmpfs\nfull\n");
    assert_eq!(read(&root, "count").trim(), "0");
    assert!(!root.join("scratch").exists());
    assert!(root.join("tmp").is_dir(), "the image's own /tmp stays");
    env.assert_clean();
}

#[test]
fn run_mount_bind_from_context_and_stage() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@ AS tools\nRUN mkdir /dist && echo tool > /dist/tool.txt\n\
         FROM oci:@SEED@\n\
         RUN --mount=type=bind,source=data,target=/mnt cat /mnt/x.txt > /copied && \
         (touch /mnt/new 2>/dev/null && echo rw || echo ro) > /mode\n\
         RUN --mount=type=bind,source=data,target=/mnt,rw touch /mnt/new && ls /mnt > /list\n\
         RUN --mount=type=bind,source=data/x.txt,target=/one.txt,rw echo more >> /one.txt && cat /one.txt > /one\n\
         RUN --mount=type=bind,from=tools,source=/dist,target=/t cat /t/tool.txt > /fromstage\n\
         WORKDIR /w\n\
         RUN --mount=target=ctx cat ctx/data/x.txt > /whole\n",
        &[("data/x.txt", "in context\n"), ("other", "o")],
    );
    env.ok(&["-t", "m"], None);
    let root = unpacked(&env, "m", "b");
    assert_eq!(read(&root, "copied"), "in context\n");
    assert_eq!(read(&root, "mode"), "ro\n");
    assert_eq!(read(&root, "list"), "new\nx.txt\n");
    assert_eq!(read(&root, "one"), "in context\nmore\n");
    assert_eq!(read(&root, "fromstage"), "tool\n");
    assert_eq!(read(&root, "whole"), "in context\n");
    for p in ["mnt", "one.txt", "t", "w/ctx"] {
        assert!(!root.join(p).exists(), "{p} leaked into the image");
    }
    // Read-write binds never change the context.
    assert!(!env.ctx().join("data/new").exists());
    assert_eq!(
        std::fs::read_to_string(env.ctx().join("data/x.txt")).expect("x"),
        "in context\n"
    );
    // The bind source's content is part of the cache key.
    let (_, stderr) = env.ok(&["-t", "m"], None);
    assert_eq!(stderr.matches("CACHED").count(), 7, "{stderr}");
    std::fs::write(env.ctx().join("other"), "changed").expect("other");
    let (_, stderr) = env.ok(&["-t", "m"], None);
    // Only the step binding the whole context re-runs.
    assert_eq!(stderr.matches("CACHED").count(), 6, "{stderr}");
    env.assert_clean();
}

#[test]
fn run_mount_bind_source_cannot_leave_the_context() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\nRUN --mount=type=bind,source=up/etc,target=/m cat /m/hostname\n",
        &[],
    );
    std::os::unix::fs::symlink("../../../../../../..", env.ctx().join("up")).expect("symlink");
    let o = env.build(&[], None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("RUN --mount source") && err.contains("Dockerfile:2"),
        "{err}"
    );
    // An absolute symlink is resolved inside the context too.
    let env = Env::new(
        "FROM oci:@SEED@\nRUN --mount=type=bind,source=abs,target=/m cat /m/hostname > /h\n",
        &[("etc/hostname", "context-host\n")],
    );
    std::os::unix::fs::symlink("/etc", env.ctx().join("abs")).expect("symlink");
    env.ok(&["-t", "abs"], None);
    assert_eq!(read(&unpacked(&env, "abs", "b"), "h"), "context-host\n");
    env.assert_clean();
}

/// The seed image as a Docker archive (made by skopeo), or None.
fn docker_archive(dir: &Path) -> Option<PathBuf> {
    let seed = seed()?;
    if !have("skopeo") {
        eprintln!("skipping: needs skopeo");
        return None;
    }
    let file = dir.join("busybox-docker.tar");
    let o = Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}", seed.display()))
        .arg(format!(
            "docker-archive:{}:localhost/busybox:latest",
            file.display()
        ))
        .output()
        .expect("skopeo");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(file)
}

#[test]
fn from_docker_archive() {
    if seed().is_none() {
        return;
    }
    let env = Env::new("FROM scratch\n", &[]);
    let Some(archive) = docker_archive(env.dir.path()) else {
        return;
    };
    for (i, reference) in [
        format!(
            "docker-archive:{}:localhost/busybox:latest",
            archive.display()
        ),
        archive.display().to_string(),
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(
            env.ctx().join("Dockerfile"),
            format!("FROM {reference}\nRUN echo hi > /hi.txt\n"),
        )
        .expect("df");
        let tag = format!("fromdocker:{i}");
        env.ok(&["-t", &tag], Some("0"));
        let root = unpacked(&env, &tag, &format!("b{i}"));
        assert_eq!(read(&root, "hi.txt"), "hi\n");
        assert!(root.join("bin/busybox").exists());
    }
    // A copy stage from the archive too.
    std::fs::write(
        env.ctx().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY --from=docker-archive:{} /bin/busybox /bb\n",
            archive.display()
        ),
    )
    .expect("df");
    env.ok(&["-t", "fromdocker:copy"], Some("0"));
    let root = unpacked(&env, "fromdocker:copy", "bc");
    assert!(root.join("bb").is_file());
    // A name the archive does not have.
    std::fs::write(
        env.ctx().join("Dockerfile"),
        format!("FROM docker-archive:{}:nope:1\n", archive.display()),
    )
    .expect("df");
    let out = env.build(&[], Some("0"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("localhost/busybox:latest"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_clean();
}

#[test]
fn copy_parents_keeps_the_source_structure() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM scratch\n\
         COPY --parents a/b/c.txt /dst/\n\
         COPY --parents x/*/*.txt /w/\n\
         COPY --parents ./x/./y/1.txt /p/\n\
         COPY --parents d /dd/\n\
         WORKDIR /rel\n\
         COPY --parents a/b/c.txt x/z/2.txt sub\n",
        &[
            ("a/b/c.txt", "c\n"),
            ("x/y/1.txt", "1\n"),
            ("x/z/2.txt", "2\n"),
            ("x/z/skip.md", "no\n"),
            ("d/e/f.txt", "f\n"),
        ],
    );
    env.ok(&["-t", "parents"], Some("0"));
    let root = unpacked(&env, "parents", "b");
    assert_eq!(read(&root, "dst/a/b/c.txt"), "c\n");
    assert_eq!(read(&root, "w/x/y/1.txt"), "1\n");
    assert_eq!(read(&root, "w/x/z/2.txt"), "2\n");
    assert!(!root.join("w/x/z/skip.md").exists());
    assert_eq!(read(&root, "p/y/1.txt"), "1\n");
    assert!(!root.join("p/x").exists());
    assert_eq!(read(&root, "dd/d/e/f.txt"), "f\n");
    assert_eq!(read(&root, "rel/sub/a/b/c.txt"), "c\n");
    assert_eq!(read(&root, "rel/sub/x/z/2.txt"), "2\n");
    env.assert_clean();
}

#[test]
fn zstd_layers_are_reproducible_and_readable() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@ AS base\nRUN echo z > /z.txt\nCOPY f.txt /f.txt\n",
        &[("f.txt", "file\n")],
    );
    let out1 = env.dir.path().join("z1");
    let out2 = env.dir.path().join("z2");
    let o1 = format!("type=oci,dest={}", out1.display());
    let o2 = format!("type=oci,dest={}", out2.display());
    let (d1, _) = env.ok(
        &[
            "--compression",
            "zstd",
            "--no-cache",
            "-t",
            "z:1",
            "-o",
            &o1,
        ],
        Some("0"),
    );
    let (d2, _) = env.ok(
        &[
            "--compression",
            "zstd",
            "--no-cache",
            "-t",
            "z:2",
            "-o",
            &o2,
        ],
        Some("0"),
    );
    assert_eq!(d1, d2, "zstd builds are reproducible");
    let m = manifest_of(&out1);
    let layers = m["layers"].as_array().expect("layers");
    let last = layers.last().expect("layer");
    assert_eq!(
        last["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    // A gzip build of the same Dockerfile is cached apart and differs.
    let (g, _) = env.ok(&["-t", "g:1"], Some("0"));
    assert_ne!(g, d1);
    let (d3, _) = env.ok(&["--compression", "zstd", "-t", "z:3"], Some("0"));
    assert_eq!(d3, d1);
    // The image unpacks (zstd layers read back).
    let root = unpacked(&env, "z:1", "b");
    assert_eq!(read(&root, "z.txt"), "z\n");
    assert_eq!(read(&root, "f.txt"), "file\n");
    // A zstd image works as a base (zstd base layers are read).
    std::fs::write(
        env.ctx().join("Dockerfile"),
        format!(
            "FROM oci:{}\nRUN cat /z.txt /f.txt > /both\n",
            out1.display()
        ),
    )
    .expect("df");
    env.ok(&["-t", "child:1"], Some("0"));
    let root = unpacked(&env, "child:1", "c");
    assert_eq!(read(&root, "both"), "z\nfile\n");
    if have("skopeo") {
        let o = Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}", out1.display()))
            .output()
            .expect("skopeo");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}", out1.display()))
            .output()
            .expect("skopeo");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(v, m);
        // skopeo can also decompress the layers (copy to a gzip layout).
        let dir = env.dir.path().join("skopeo-copy");
        let o = Command::new("skopeo")
            .arg("copy")
            .arg("--dest-compress-format=gzip")
            .arg(format!("oci:{}", out1.display()))
            .arg(format!("oci:{}", dir.display()))
            .output()
            .expect("skopeo copy");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    env.assert_clean();
}

/// `python3 -m http.server` on 127.0.0.1 serving `dir`; killed on drop.
struct HttpServer {
    child: std::process::Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &Path) -> Option<HttpServer> {
        if !have("python3") {
            eprintln!("skipping: needs python3");
            return None;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let server = HttpServer {
            child: Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1"])
                .arg(port.to_string())
                .current_dir(dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("python3"),
            port,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("http.server did not start");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn add_from_http_url() {
    if seed().is_none() {
        return;
    }
    let served = tempfile::tempdir().expect("tempdir");
    std::fs::write(served.path().join("data.txt"), "remote\n").expect("write");
    // A tar served over HTTP is not unpacked.
    let o = Command::new("tar")
        .arg("cf")
        .arg(served.path().join("x.tar"))
        .arg("-C")
        .arg(served.path())
        .arg("data.txt")
        .output()
        .expect("tar");
    assert!(o.status.success());
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(served.path().join("data.txt"))
        .expect("open")
        .set_modified(mtime)
        .expect("mtime");
    let Some(server) = HttpServer::start(served.path()) else {
        return;
    };
    let out = Command::new("sha256sum")
        .arg(served.path().join("data.txt"))
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sum")
        .to_string();
    let url = server.url("data.txt");
    let env = Env::new(
        &format!(
            "FROM oci:@SEED@\n\
             ADD {url} /dl/\n\
             ADD --checksum=sha256:{sum} --chmod=644 {url} /named.txt\n\
             RUN stat -c '%a %Y' /dl/data.txt /named.txt > /stat.txt\n"
        ),
        &[],
    );
    let (d1, _) = env.ok(&["-t", "url:1"], Some("2000000000"));
    let root = unpacked(&env, "url:1", "b");
    assert_eq!(read(&root, "dl/data.txt"), "remote\n");
    assert_eq!(read(&root, "named.txt"), "remote\n");
    assert_eq!(read(&root, "stat.txt"), "600 1000000000\n644 1000000000\n");
    // Unchanged content: the steps are cached and the image is the same.
    let (d2, stderr) = env.ok(&["-t", "url:2"], Some("2000000000"));
    assert_eq!(d1, d2);
    assert!(stderr.contains("CACHED"), "{stderr}");
    // Changed content: a new image.
    std::fs::write(served.path().join("data.txt"), "changed\n").expect("write");
    std::fs::write(
        env.ctx().join("Dockerfile"),
        format!("FROM oci:@SEED@\nADD {url} /dl/\n")
            .replace("@SEED@", &seed().expect("seed").display().to_string()),
    )
    .expect("df");
    env.ok(&["-t", "url:3"], Some("0"));
    let root = unpacked(&env, "url:3", "c");
    assert_eq!(read(&root, "dl/data.txt"), "changed\n");
    // A wrong checksum and a missing file fail the build.
    let bad = "0".repeat(64);
    for df in [
        format!("FROM scratch\nADD --checksum=sha256:{bad} {url} /x\n"),
        format!("FROM scratch\nADD {} /x\n", server.url("missing")),
    ] {
        std::fs::write(env.ctx().join("Dockerfile"), df).expect("df");
        let out = env.build(&[], Some("0"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("checksum mismatch") || stderr.contains("HTTP 404"),
            "{stderr}"
        );
    }
    // A remote tar is copied as it is, not unpacked.
    std::fs::write(
        env.ctx().join("Dockerfile"),
        format!("FROM scratch\nADD {} /t/\n", server.url("x.tar")),
    )
    .expect("df");
    env.ok(&["-t", "url:4"], Some("0"));
    let root = unpacked(&env, "url:4", "d");
    assert_eq!(
        std::fs::read(root.join("t/x.tar")).expect("x.tar"),
        std::fs::read(served.path().join("x.tar")).expect("x.tar")
    );
    assert!(!root.join("t/data.txt").exists());
    env.assert_clean();
}

/// Every regular file under `dir` (recursively) that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            found.extend(files_containing(&p, needle));
        } else if ft.is_file() {
            let data = std::fs::read(&p).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle) {
                found.push(p);
            }
        }
    }
    found
}

fn build_with_env(env: &Env, extra: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth-build"));
    c.arg("--root")
        .arg(env.root())
        .arg("build")
        .args(extra)
        .arg(env.ctx())
        .env("SOURCE_DATE_EPOCH", "1700000000");
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().expect("run berth-build")
}

const SECRET_DF: &str = "FROM oci:@SEED@\n\
RUN --mount=type=secret,id=tok tr a-z A-Z < /run/secrets/tok > /upper && stat -c %a:%u:%g /run/secrets/tok > /stat\n\
RUN --mount=type=secret,id=tok,target=/etc/app.key,mode=0440,uid=1000,gid=100 stat -c %a:%u:%g /etc/app.key > /stat2 && tr a-z A-Z < /etc/app.key > /upper2\n\
RUN --mount=type=secret,id=tok,env=TOKEN echo \"$TOKEN\" | tr a-z A-Z > /upper3 && test ! -e /run/secrets/tok && echo nofile > /nofile\n\
RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo skipped > /skipped\n";

#[test]
fn run_mount_secret_is_readable_cached_and_never_stored() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(SECRET_DF, &[]);
    let secret = "hunter-s3cret-value";
    let src = env.dir.path().join("tok.txt");
    std::fs::write(&src, secret).expect("secret");
    let out = env.dir.path().join("out");
    let (digest, _) = env.ok(
        &[
            "-t",
            "s1",
            "--secret",
            &format!("id=tok,src={}", src.display()),
            "--output",
            &format!("type=oci,dest={}", out.display()),
        ],
        Some("1700000000"),
    );
    env.assert_clean();
    let root = unpacked(&env, "s1", "b1");
    assert_eq!(read(&root, "upper"), "HUNTER-S3CRET-VALUE");
    assert_eq!(read(&root, "stat"), "400:0:0\n");
    assert_eq!(read(&root, "stat2"), "440:1000:100\n");
    assert_eq!(read(&root, "upper2"), "HUNTER-S3CRET-VALUE");
    assert_eq!(read(&root, "upper3"), "HUNTER-S3CRET-VALUE\n");
    assert_eq!(read(&root, "nofile"), "nofile\n");
    assert_eq!(read(&root, "skipped"), "skipped\n");
    // No mount points, and the content is nowhere: not in the rootfs, the
    // store (unpacked layers, configs, cache entries) or the OCI output.
    assert!(!root.join("run").exists(), "/run/secrets leaked");
    assert!(!root.join("etc/app.key").exists(), "mount point leaked");
    assert!(!files_containing(&env.root(), b"HUNTER-S3CRET-VALUE").is_empty());
    for dir in [env.dir.path().join("b1"), env.root(), out.clone()] {
        let hits = files_containing(&dir, secret.as_bytes());
        assert!(hits.is_empty(), "secret found in {hits:?}");
    }
    // A changed secret (now from the environment) does not invalidate the cache.
    let o = build_with_env(
        &env,
        &["-t", "s2", "--secret", "id=tok,env=BERTH_TEST_TOKEN"],
        &[("BERTH_TEST_TOKEN", "another-value")],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), digest);
    assert_eq!(stderr.matches("CACHED").count(), 4, "{stderr}");
    // With --no-cache the new value is used; a bare id= reads the variable.
    let o = build_with_env(
        &env,
        &["-t", "s3", "--no-cache", "--secret", "id=tok"],
        &[("tok", "from-env")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = unpacked(&env, "s3", "b3");
    assert_eq!(read(&root, "upper"), "FROM-ENV");
    assert_eq!(read(&root, "upper3"), "FROM-ENV\n");
    assert!(files_containing(&env.root(), b"from-env").is_empty());
    env.assert_clean();
}

#[test]
fn run_mount_secret_required_and_bad_flags() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\nRUN true\nRUN --mount=type=secret,id=needed,required=true cat /run/secrets/needed\n",
        &[],
    );
    let o = env.build(&[], None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("secret \"needed\" is required"), "{err}");
    env.assert_clean();
    let o = build_with_env(&env, &["--secret", "id=BERTH_TEST_UNSET_VAR"], &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("BERTH_TEST_UNSET_VAR is not set"), "{err}");
    let missing = env.dir.path().join("nope");
    let o = env.build(
        &["--secret", &format!("id=needed,src={}", missing.display())],
        None,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Dockerfile:3") && err.contains("cannot read"),
        "{err}"
    );
    env.assert_clean();
}

const DIRECT_COPY_DF: &str = "FROM oci:@SEED@ AS gen\n\
RUN mkdir -p /out/sub && echo one > /out/a && echo two > /out/sub/b && ln -s a /out/link && chmod 0751 /out/sub\n\
FROM oci:@SEED@\n\
RUN mkdir /gone /full && echo x > /gone/f && echo keep > /full/k\n\
RUN rm /gone/f\n\
WORKDIR /w\n\
COPY . .\n\
COPY src /app/deep/\n\
COPY src /gone\n\
COPY src /full/\n\
COPY --from=gen /out /gen\n\
COPY --chown=1:2 --chmod=0640 src /owned\n\
RUN test \"$(cat /w/top.txt)\" = top && test \"$(cat /app/deep/y/z.txt)\" = z && test -f /gone/x.txt \
 && test ! -e /gone/f && test \"$(cat /full/k)\" = keep && test -f /full/x.txt && test -L /gen/link \
 && test \"$(stat -c %a /gen/sub)\" = 751 && test \"$(stat -c %u:%g:%a /owned/x.txt)\" = 1:2:640 \
 && ls -lnR /w /app /gone /full /gen /owned > /listing\n";

/// COPY into a new or empty directory goes straight to the overlay upper
/// directory (exec/copy/direct.rs); the image must be the one the copy
/// through the overlay mount gives, whiteouts, WORKDIR-made directories,
/// non-empty destinations and --from included.
#[test]
fn copy_into_the_upper_directory_gives_the_same_image_as_through_the_overlay() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        DIRECT_COPY_DF,
        &[
            ("top.txt", "top\n"),
            ("src/x.txt", "x\n"),
            ("src/y/z.txt", "z\n"),
        ],
    );
    let direct = build_with_env(
        &env,
        &["-q", "--no-cache"],
        &[("RUST_LOG", "berth_build=debug")],
    );
    let log = String::from_utf8_lossy(&direct.stderr);
    assert!(direct.status.success(), "{log}");
    // Taken for /w (empty, from WORKDIR), /app/deep (new), /gone (emptied
    // by a whiteout), /gen (new, --from) and /owned; not for /full/.
    assert_eq!(
        log.matches("COPY into the upper directory").count(),
        5,
        "{log}"
    );
    let via = build_with_env(
        &env,
        &["-q", "--no-cache"],
        &[
            ("BERTH_BUILD_COPY_VIA_OVERLAY", "1"),
            ("RUST_LOG", "berth_build=debug"),
        ],
    );
    let via_log = String::from_utf8_lossy(&via.stderr);
    assert!(via.status.success(), "{via_log}");
    assert!(
        !via_log.contains("COPY into the upper directory"),
        "{via_log}"
    );
    assert_eq!(
        String::from_utf8_lossy(&direct.stdout).trim(),
        String::from_utf8_lossy(&via.stdout).trim(),
        "different images:\n{log}\n{via_log}"
    );
    env.assert_clean();
}

/// COPY's cache key takes unchanged context files' digests from the store's
/// `context-digests` (exec/copy/digests.rs); a file rewritten with the same
/// size must still change the key and the image.
#[test]
fn remembered_context_digests_never_hide_a_change() {
    if seed().is_none() {
        return;
    }
    let df = "FROM oci:@SEED@\nCOPY . /app\nRUN cat /app/a.txt > /seen\n";
    let env = Env::new(df, &[("a.txt", "old\n"), ("b/c.txt", "c\n")]);
    // Only files whose ctime has settled are remembered.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (first, _) = env.ok(&[], Some("1700000000"));
    let remembered = std::fs::read_to_string(env.root().join("context-digests")).expect("digests");
    assert_eq!(remembered.lines().count(), 3, "{remembered}");
    let (same, stderr) = env.ok(&[], Some("1700000000"));
    assert_eq!(same, first);
    assert!(stderr.contains("CACHED"), "{stderr}");
    // Same size, new content, and the mtime set back: the ctime still moves.
    let a = env.ctx().join("a.txt");
    let mtime = std::fs::metadata(&a)
        .expect("stat")
        .modified()
        .expect("mtime");
    std::fs::write(&a, "new\n").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&a)
        .expect("open")
        .set_modified(mtime)
        .expect("set mtime");
    let (changed, stderr) = env.ok(&[], Some("1700000000"));
    assert_ne!(changed, first, "{stderr}");
    assert!(!stderr.contains("COPY . /app\n#3 CACHED"), "{stderr}");
    env.assert_clean();
}
