//! Stages built at the same time (the default) against the same build
//! with `--jobs 1`: identical images, output that says which step each
//! line belongs to, and a failure in one stage that stops the others and
//! leaves nothing behind. Root only (RUN needs overlay mounts and
//! containers); the seed image comes from hack/make-busybox-image.sh.

mod support;
use support::*;

use std::path::Path;
use std::process::{Command, Output};

/// A context with `dockerfile` (`@SEED@` replaced by the seed layout).
fn context(dockerfile: &str) -> Option<tempfile::TempDir> {
    let seed = seed()?;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("ctx")).expect("ctx");
    std::fs::write(
        dir.path().join("ctx/Dockerfile"),
        dockerfile.replace("@SEED@", &seed.display().to_string()),
    )
    .expect("Dockerfile");
    Some(dir)
}

/// Runs `berth-build --root DIR/STORE build ARGS DIR/ctx` with
/// SOURCE_DATE_EPOCH; returns its output and its pid.
fn build(dir: &Path, store: &str, args: &[&str]) -> (Output, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_berth-build"))
        .arg("--root")
        .arg(dir.join(store))
        .arg("build")
        .args(args)
        .arg(dir.join("ctx"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("berth-build");
    let pid = child.id();
    (child.wait_with_output().expect("wait"), pid)
}

fn ok(dir: &Path, store: &str, args: &[&str]) -> (String, String) {
    let (out, _) = build(dir, store, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build failed:\n{stderr}");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stderr,
    )
}

/// The position of the first line of `stderr` that starts with `prefix`.
fn line_at(stderr: &str, prefix: &str) -> usize {
    stderr
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{stderr}"))
}

/// Nothing of the build left: no scratch dirs, containers, mounts, temp
/// blobs, or cgroups of the builder process `pid`.
fn assert_clean(store: &Path, pid: u32) {
    for sub in ["tmp", "run"] {
        let left: Vec<_> = std::fs::read_dir(store.join(sub))
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {sub}: {left:?}");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&store.display().to_string()),
        "mount left behind"
    );
    for b in std::fs::read_dir(store.join("blobs/sha256"))
        .expect("blobs")
        .flatten()
    {
        let name = b.file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".tmp"), "temporary blob left: {name}");
    }
    let prefix = format!("berth-build-{pid}-");
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroups")
        .flatten()
    {
        for c in std::fs::read_dir(hierarchy.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = c.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(&prefix),
                "cgroup left: {}",
                c.path().display()
            );
        }
    }
}

const TWO_STAGES: &str = r#"FROM oci:@SEED@ AS left
RUN echo same > /same.txt
RUN echo left-start; sleep 1; mkdir /out && echo left > /out/left.txt; echo left-end

FROM oci:@SEED@ AS right
RUN echo same > /same.txt
WORKDIR /out
RUN echo right-start; sleep 1; echo right > right.txt; echo right-end

FROM oci:@SEED@ AS unused
RUN echo unused-stage-ran; exit 1

FROM oci:@SEED@
COPY --from=left /out/left.txt /
RUN --mount=type=bind,from=right,source=/out,target=/r cat /r/right.txt > /right.txt
RUN cat /left.txt /right.txt
"#;

#[test]
fn concurrent_and_serial_builds_give_the_same_image() {
    let Some(dir) = context(TWO_STAGES) else {
        return;
    };
    let (serial, serr) = ok(dir.path(), "serial", &["--no-cache", "--jobs", "1"]);
    let (conc, cerr) = ok(dir.path(), "concurrent", &["--no-cache"]);
    assert_eq!(serial, conc, "serial:\n{serr}\nconcurrent:\n{cerr}");
    // The unused stage is not built.
    assert!(!cerr.contains("unused-stage-ran") && !serr.contains("unused-stage-ran"));
    // Steps: left FROM #1, RUN #2 and #3; right FROM #4, RUN #5 (the
    // same layer as #2, made at the same time), WORKDIR #6, RUN #7.
    // Serial: the left stage ends before the right one starts.
    assert!(
        line_at(&serr, "#3 DONE") < line_at(&serr, "#4 [right"),
        "{serr}"
    );
    // Concurrent: both RUNs start before either ends, and each output
    // line names its step (`#N SECONDS TEXT`).
    let ends = line_at(&cerr, "#3 DONE").min(line_at(&cerr, "#7 DONE"));
    assert!(line_at(&cerr, "#3 [left 3/") < ends, "{cerr}");
    assert!(line_at(&cerr, "#7 [right 7/") < ends, "{cerr}");
    for (step, text) in [
        (3, "left-start"),
        (3, "left-end"),
        (7, "right-start"),
        (7, "right-end"),
    ] {
        assert!(
            cerr.lines().any(|l| l.starts_with(&format!("#{step} "))
                && l.split(' ')
                    .nth(1)
                    .is_some_and(|s| s.parse::<f64>().is_ok())
                && l.ends_with(text)),
            "no line of step {step} with {text}:\n{cerr}"
        );
    }
    // Again, concurrently: every filesystem step from the cache, same image.
    let (again, aerr) = ok(dir.path(), "concurrent", &[]);
    assert_eq!(again, conc, "{aerr}");
    assert_eq!(aerr.matches("CACHED").count(), 8, "{aerr}");
    let (_, pid) = build(dir.path(), "concurrent", &["--jobs", "2"]);
    assert_clean(&dir.path().join("concurrent"), pid);
}

const ONE_FAILS: &str = r#"FROM oci:@SEED@ AS slow
RUN echo slow-start; sleep 60; echo slow-$((40+2))

FROM oci:@SEED@ AS bad
RUN sleep 1; echo bad-output; exit 3

FROM oci:@SEED@
COPY --from=slow /etc/passwd /a
COPY --from=bad /etc/passwd /b
"#;

#[test]
fn a_failing_stage_cancels_the_other_and_leaves_nothing() {
    let Some(dir) = context(ONE_FAILS) else {
        return;
    };
    let (out, pid) = build(dir.path(), "store", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    // The failing stage's Dockerfile line, its status and output.
    assert!(stderr.contains("Dockerfile:5"), "{stderr}");
    assert!(stderr.contains("exit status 3"), "{stderr}");
    assert!(stderr.contains("#4 ERROR"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("#4 ") && l.ends_with("bad-output")),
        "{stderr}"
    );
    // The other stage's RUN was running and was stopped.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("#2 ") && l.ends_with("slow-start")),
        "{stderr}"
    );
    assert!(stderr.contains("#2 CANCELED"), "{stderr}");
    assert!(!stderr.contains("slow-42"), "{stderr}");
    assert!(
        !stderr.contains("Dockerfile:2"),
        "only the failing step is reported: {stderr}"
    );
    assert_clean(&dir.path().join("store"), pid);
    // Quiet: only the failed step's last output lines, then the error.
    let (out, pid) = build(dir.path(), "store", &["-q"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.starts_with("#4 bad-output\n"), "{stderr}");
    assert!(!stderr.contains("slow-start"), "{stderr}");
    assert!(stderr.contains("Dockerfile:5"), "{stderr}");
    assert_clean(&dir.path().join("store"), pid);
}

#[test]
fn tty_progress_shows_running_steps_with_their_output_tail() {
    let df = "FROM oci:@SEED@ AS one\nRUN echo one-$((1+1)); sleep 1\n\n\
              FROM oci:@SEED@ AS two\nRUN echo two-$((2+2)); sleep 1\n\n\
              FROM oci:@SEED@\nCOPY --from=one /etc/passwd /1\nCOPY --from=two /etc/passwd /2\n";
    let Some(dir) = context(df) else { return };
    // `script` gives the build a terminal (80x24 by default, set here).
    let cmd = format!(
        "stty cols 80 rows 24; {} --root {} build --progress=tty {}",
        env!("CARGO_BIN_EXE_berth-build"),
        dir.path().join("store").display(),
        dir.path().join("ctx").display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script");
    let screen = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    assert!(out.status.success(), "{screen}");
    // Both RUNs ran at the same time, each with its output's tail under
    // its status line while running, then collapsed to DONE.
    assert!(screen.contains("  > one-2"), "{screen}");
    assert!(screen.contains("  > two-4"), "{screen}");
    let live = screen.split("\x1b[").any(|frame| {
        frame.contains("RUN echo one-") && frame.contains("RUN echo two-") && frame.contains("  > ")
    });
    assert!(live, "no frame with both running steps: {screen:?}");
    for step in ["#2 [one 2/7]", "#4 [two 4/7]"] {
        let done = screen
            .lines()
            .any(|l| l.contains(step) && l.contains(" DONE "));
        assert!(done, "{step} not collapsed to DONE: {screen:?}");
    }
}

#[test]
fn locked_cache_mounts_are_used_by_one_run_at_a_time() {
    let df = "FROM oci:@SEED@ AS one\n\
              RUN --mount=type=cache,id=c,sharing=locked,target=/c echo start-1 >> /c/log; sleep 1; echo end-1 >> /c/log\n\
              FROM oci:@SEED@ AS two\n\
              RUN --mount=type=cache,id=c,sharing=locked,target=/c echo start-2 >> /c/log; sleep 1; echo end-2 >> /c/log\n\
              FROM oci:@SEED@\n\
              COPY --from=one /etc/passwd /1\n\
              COPY --from=two /etc/passwd /2\n\
              RUN --mount=type=cache,id=c,target=/c cat /c/log | tr '\\n' ' '\n";
    let Some(dir) = context(df) else { return };
    let (_, stderr) = ok(dir.path(), "store", &[]);
    let log = stderr
        .lines()
        .find(|l| l.starts_with("#8 ") && l.contains("start-"))
        .unwrap_or_else(|| panic!("no cache log in:\n{stderr}"));
    let order: Vec<&str> = log.split_whitespace().skip(2).collect();
    assert!(
        order == ["start-1", "end-1", "start-2", "end-2"]
            || order == ["start-2", "end-2", "start-1", "end-1"],
        "the two RUNs overlapped: {order:?}\n{stderr}"
    );
}
