//! The Dockerfile syntax corpus (builder/tests/corpus/CASE/): each case is
//! a build context whose `checks` file says what the image must hold, or
//! which error the build must give. Every case is built with berth-build
//! and checked; then, where docker's BuildKit runs (dockerd 20.10 with
//! DOCKER_BUILDKIT=1, private instance as hack/with-docker.sh starts it),
//! every case its frontend supports is built there too and the two images
//! are compared: image config fields and the whole file tree (type, mode,
//! owner, content, link target). Root only.
//!
//! `checks` lines: `buildkit compare|fails|skip: REASON`, `arg K=V`,
//! `file PATH TEXT` (`\n` escapes), `mode PATH OCTAL`, `owner PATH U:G`,
//! `link PATH TARGET`, `absent PATH`, `config /JSON/POINTER JSON`,
//! `error TEXT` (the build must fail with TEXT in its message).

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

/// Base image name the corpus uses; berth builds it from the seed layout.
const BASE: &str = "localhost/busybox:latest";

#[derive(Debug, Default)]
struct Case {
    name: String,
    dir: PathBuf,
    buildkit: String,
    args: Vec<String>,
    checks: Vec<(String, String, String)>,
    errors: Vec<String>,
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .expect("corpus dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let dir = root.join(&name);
            let text = std::fs::read_to_string(dir.join("checks"))
                .unwrap_or_else(|e| panic!("{name}/checks: {e}"));
            let mut c = Case {
                name,
                dir,
                ..Case::default()
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
                match word {
                    "buildkit" => c.buildkit = rest.to_string(),
                    "arg" => c.args.push(rest.to_string()),
                    "error" => c.errors.push(rest.to_string()),
                    "file" | "mode" | "owner" | "link" | "absent" | "config" => {
                        let (path, value) = rest.split_once(' ').unwrap_or((rest, ""));
                        c.checks
                            .push((word.to_string(), path.to_string(), value.to_string()));
                    }
                    other => panic!("{}/checks: unknown line kind {other:?}", c.name),
                }
            }
            assert!(
                !c.buildkit.is_empty(),
                "{}/checks: say `buildkit compare|fails|skip: REASON`",
                c.name
            );
            c
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    let o = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .expect("cp");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
}

/// Checks one case's expectations against an unpacked rootfs and config.
fn check(case: &Case, root: &Path, config: &serde_json::Value) {
    let n = &case.name;
    for (kind, path, value) in &case.checks {
        let p = root.join(path.trim_start_matches('/'));
        match kind.as_str() {
            "file" => {
                let got =
                    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{n}: {path}: {e}"));
                assert_eq!(got, unescape(value), "{n}: {path}");
            }
            "mode" => {
                let m = std::fs::symlink_metadata(&p)
                    .unwrap_or_else(|e| panic!("{n}: {path}: {e}"))
                    .permissions()
                    .mode()
                    & 0o7777;
                assert_eq!(format!("{m:04o}"), *value, "{n}: {path}");
            }
            "owner" => {
                let m =
                    std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{n}: {path}: {e}"));
                assert_eq!(format!("{}:{}", m.uid(), m.gid()), *value, "{n}: {path}");
            }
            "link" => {
                let t = std::fs::read_link(&p).unwrap_or_else(|e| panic!("{n}: {path}: {e}"));
                assert_eq!(t.display().to_string(), *value, "{n}: {path}");
            }
            "absent" => assert!(
                std::fs::symlink_metadata(&p).is_err(),
                "{n}: {path} should not exist"
            ),
            "config" => {
                let want: serde_json::Value = serde_json::from_str(value)
                    .unwrap_or_else(|e| panic!("{n}: config {path} {value}: {e}"));
                assert_eq!(
                    config.pointer(path),
                    Some(&want),
                    "{n}: config {path}: {config}"
                );
            }
            _ => unreachable!(),
        }
    }
}

/// A berth store with the base image loaded under its corpus name.
struct Berth {
    env: Env,
}

impl Berth {
    fn new() -> Option<Berth> {
        let seed = seed()?;
        let env = Env::new("FROM scratch\n", &[]);
        let archive = env.dir.path().join("base.tar");
        let o = Command::new("skopeo")
            .arg("copy")
            .arg("-q")
            .arg(format!("oci:{}", seed.display()))
            .arg(format!("oci-archive:{}:{BASE}", archive.display()))
            .output()
            .expect("skopeo");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        berth_build(&env, &["load", "-i", &archive.display().to_string()]);
        Some(Berth { env })
    }

    /// Builds a case; Ok(name) of the image or Err(stderr).
    fn build(&self, case: &Case) -> Result<String, String> {
        let ctx = self.env.dir.path().join(format!("ctx-{}", case.name));
        copy_tree(&case.dir, &ctx);
        let tag = format!("corpus-{}:1", case.name);
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth-build"));
        c.arg("--root")
            .arg(self.env.root())
            .args(["build", "--pull=never", "-t", &tag]);
        for a in &case.args {
            c.arg("--build-arg").arg(a);
        }
        let o = c.arg(&ctx).output().expect("berth-build");
        if o.status.success() {
            Ok(tag)
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }

    fn config(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&berth_build(&self.env, &["inspect", name])).expect("inspect");
        v["Config"].clone()
    }

    fn rootfs(&self, name: &str) -> PathBuf {
        let dir = format!("bundle-{}", name.replace([':', '/'], "-"));
        unpacked(&self.env, name, &dir)
    }
}

#[test]
fn corpus_builds_and_checks_with_berth() {
    let Some(berth) = Berth::new() else { return };
    let mut failures = Vec::new();
    for case in cases() {
        let r = berth.build(&case);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match (&r, case.errors.is_empty()) {
                (Ok(tag), true) => {
                    check(&case, &berth.rootfs(tag), &berth.config(tag));
                }
                (Err(e), true) => panic!("{}: build failed:\n{e}", case.name),
                (Ok(_), false) => panic!("{}: build should have failed", case.name),
                (Err(e), false) => {
                    for want in &case.errors {
                        assert!(
                            e.contains(want.as_str()),
                            "{}: {want:?} not in:\n{e}",
                            case.name
                        );
                    }
                    assert!(!e.contains("panicked"), "{e}");
                }
            }
        }));
        if outcome.is_err() {
            failures.push(case.name.clone());
        }
    }
    assert!(failures.is_empty(), "failing corpus cases: {failures:?}");
    berth.env.assert_clean();
}

/// What the tree comparison looks at for one path.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let p = root.join(&rel);
        let m = std::fs::symlink_metadata(&p).expect("meta");
        let ft = m.file_type();
        let what = if ft.is_symlink() {
            format!("link {}", std::fs::read_link(&p).expect("link").display())
        } else if ft.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&p)
                .expect("dir")
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                stack.push(rel.join(n));
            }
            "dir".to_string()
        } else if ft.is_file() {
            let data = std::fs::read(&p).expect("read");
            format!("file {} {:x}", data.len(), fnv(&data))
        } else {
            "other".to_string()
        };
        out.insert(
            format!("/{}", rel.display()),
            format!(
                "{what} mode={:o} owner={}:{}",
                m.permissions().mode() & 0o7777,
                m.uid(),
                m.gid()
            ),
        );
    }
    out
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Config fields both builders must agree on.
const CONFIG_FIELDS: &[&str] = &[
    "/config/Env",
    "/config/Cmd",
    "/config/Entrypoint",
    "/config/WorkingDir",
    "/config/User",
    "/config/Labels",
    "/config/ExposedPorts",
    "/config/Volumes",
    "/config/StopSignal",
    "/config/Healthcheck",
    "/config/OnBuild",
    "/config/Shell",
    "/author",
    "/os",
    "/architecture",
];

#[test]
fn corpus_matches_docker_buildkit() {
    let Some(berth) = Berth::new() else { return };
    if !have("dockerd") || !have("skopeo") {
        eprintln!("skipping the BuildKit comparison: dockerd (docker.io) or skopeo is missing");
        return;
    }
    let work = berth.env.dir.path().join("buildkit");
    std::fs::create_dir_all(&work).expect("mkdir");
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| !c.buildkit.starts_with("skip"))
        .collect();
    // One dockerd for all cases: each is built and saved (or its error kept).
    let mut script = String::from("set -u\n");
    for c in &cases {
        let ctx = work.join(format!("ctx-{}", c.name));
        copy_tree(&c.dir, &ctx);
        let mut args = String::new();
        for a in &c.args {
            args.push_str(&format!(" --build-arg '{a}'"));
        }
        script.push_str(&format!(
            "if DOCKER_BUILDKIT=1 $DOCKER build --network none -q{args} -t buildkit-{n}:1 {ctx} >{w}/{n}.out 2>{w}/{n}.err; \
             then $DOCKER save -o {w}/{n}.tar buildkit-{n}:1; fi\n",
            n = c.name,
            ctx = ctx.display(),
            w = work.display(),
        ));
    }
    let o = Command::new(workspace().join("hack/with-docker.sh"))
        .arg(work.join("docker"))
        .arg("/usr/sbin/runc")
        .args(["--", "bash", "-c", &script])
        .output()
        .expect("with-docker.sh");
    let dockerd_log = std::fs::read_to_string(work.join("docker/dockerd.log")).unwrap_or_default();
    if !o.status.success() && dockerd_log.contains("failed to start daemon") {
        eprintln!("skipping the BuildKit comparison: dockerd cannot start here:\n{dockerd_log}");
        return;
    }
    assert!(
        o.status.success(),
        "with-docker.sh: {}\n{dockerd_log}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut failures = Vec::new();
    for case in &cases {
        let n = &case.name;
        let archive = work.join(format!("{n}.tar"));
        let bk_err = std::fs::read_to_string(work.join(format!("{n}.err"))).unwrap_or_default();
        let ours = berth.build(case);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if case.buildkit == "fails" {
                assert!(
                    !archive.exists(),
                    "{n}: BuildKit built a case meant to fail"
                );
                assert!(
                    ours.is_err(),
                    "{n}: berth built a case BuildKit rejects:\n{bk_err}"
                );
                return;
            }
            assert!(archive.exists(), "{n}: BuildKit failed:\n{bk_err}");
            let tag = ours
                .as_ref()
                .unwrap_or_else(|e| panic!("{n}: berth failed:\n{e}"));
            let loaded = berth_build(&berth.env, &["load", "-i", &archive.display().to_string()]);
            let bk_name = loaded
                .split_whitespace()
                .find(|w| w.contains(&format!("buildkit-{n}:1")))
                .unwrap_or_else(|| panic!("{n}: load: {loaded}"))
                .to_string();
            let (a, b) = (berth.config(tag), berth.config(&bk_name));
            for f in CONFIG_FIELDS {
                assert_eq!(
                    a.pointer(f),
                    b.pointer(f),
                    "{n}: config {f} (berth vs BuildKit)"
                );
            }
            // BuildKit's image must pass the case's own checks too.
            let bk_root = berth.rootfs(&bk_name);
            check(case, &bk_root, &b);
            let (ta, tb) = (tree(&berth.rootfs(tag)), tree(&bk_root));
            let diff: Vec<String> = ta
                .iter()
                .filter(|(k, v)| tb.get(*k) != Some(v))
                .map(|(k, v)| format!("berth {k}: {v} / buildkit: {:?}", tb.get(k)))
                .chain(
                    tb.iter()
                        .filter(|(k, _)| !ta.contains_key(*k))
                        .map(|(k, v)| format!("only in BuildKit's {k}: {v}")),
                )
                .collect();
            assert!(
                diff.is_empty(),
                "{n}: file trees differ:\n{}",
                diff.join("\n")
            );
        }));
        if outcome.is_err() {
            failures.push(n.clone());
        }
    }
    assert!(
        failures.is_empty(),
        "cases differing from BuildKit: {failures:?}"
    );
}
