//! Test harness: busybox bundles in temp dirs, a private state root and cgroup parent per test,
//! and the built `berth` binary run as a subprocess. Everything is removed on drop, also when
//! the test fails.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// True when the tests can create containers; prints why not otherwise.
pub fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: container tests need root");
        return false;
    }
    if !Path::new("/bin/busybox").exists() {
        panic!("/bin/busybox is missing: run hack/test.sh (it installs busybox-static)");
    }
    true
}

/// The berth binary under test.
pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// Makes a busybox rootfs at `dir`.
pub fn make_rootfs(dir: &Path) {
    for sub in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = dir.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
}

/// One test's world: a temp dir holding the bundle and the state root, a unique container id
/// prefix and cgroup parent.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub cgroup_parent: String,
    pub ids: std::cell::RefCell<Vec<String>>,
    pub n: usize,
}

impl World {
    /// A new world with a busybox bundle running `args`.
    pub fn new(args: &[&str]) -> World {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tmp = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .unwrap();
        let root = tmp.path().join("state");
        let bundle = tmp.path().join("bundle");
        make_rootfs(&bundle.join("rootfs"));
        let cgroup_parent = format!("berth-test-{}-{n}", std::process::id());
        let w = World {
            tmp,
            root,
            bundle,
            cgroup_parent,
            ids: Default::default(),
            n,
        };
        w.write_config(&w.base_config(args));
        w
    }

    /// A fresh container id registered for cleanup.
    pub fn id(&self, name: &str) -> String {
        let id = format!("{name}-{}-{}", std::process::id(), self.n);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// The default config with `args`, no terminal and this world's cgroup parent.
    pub fn base_config(&self, args: &[&str]) -> Value {
        let out = Command::new(berth_bin())
            .args(["spec", "--bundle"])
            .arg(self.tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = self.tmp.path().join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(args);
        c["root"]["readonly"] = json!(false);
        c["linux"]["cgroupsPath"] = json!(format!("/{}/ctr", self.cgroup_parent));
        c
    }

    /// Writes config.json into the bundle.
    pub fn write_config(&self, c: &Value) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(c).unwrap(),
        )
        .unwrap();
    }

    /// A berth command with this world's --root.
    pub fn berth(&self) -> Command {
        let mut c = Command::new(berth_bin());
        c.arg("--root").arg(&self.root);
        c.stdin(Stdio::null());
        c
    }

    /// Runs a berth command whose container keeps the stdio it inherits (create, run -d):
    /// output goes to files, not pipes, so waiting for the command never waits for the container.
    /// Returns (exit code, stdout, stderr).
    pub fn detached(&self, args: &[&str]) -> (i32, String, String) {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let out_path = self.tmp.path().join(format!("out-{n}"));
        let err_path = self.tmp.path().join(format!("err-{n}"));
        let status = self
            .berth()
            .args(args)
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            std::fs::read_to_string(&err_path).unwrap_or_default(),
        )
    }

    /// `berth create --bundle B ID` (plus `extra` flags before the id), output to files.
    pub fn create(&self, id: &str, extra: &[&str]) -> (i32, String, String) {
        let bundle = self.bundle.to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", bundle.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        self.detached(&args)
    }

    /// `berth run` of the bundle; returns (exit code, stdout, stderr).
    pub fn run(&self, name: &str) -> (i32, String, String) {
        let id = self.id(name);
        let out = self
            .berth()
            .args(["run", "--bundle"])
            .arg(&self.bundle)
            .arg(&id)
            .output()
            .unwrap();
        decode(out)
    }

    /// Runs with `config` mutated by `f`, returning stdout and asserting success.
    pub fn run_ok(&self, name: &str) -> String {
        let (code, out, err) = self.run(name);
        assert_eq!(code, 0, "berth run failed: stdout={out} stderr={err}");
        out
    }

    /// Cgroup directories of this world's parent in every v1 hierarchy and the unified one.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = e.path().join(&self.cgroup_parent);
            out.push(p);
        }
        out
    }

    /// Asserts that no trace of containers is left: no state dirs, no cgroups.
    pub fn assert_clean(&self) {
        if self.root.exists() {
            let left: Vec<_> = std::fs::read_dir(&self.root)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert!(left.is_empty(), "state left behind: {left:?}");
        }
        for d in self.cgroup_dirs() {
            assert!(!d.exists(), "cgroup left behind: {}", d.display());
        }
    }
}

/// Exit code and UTF-8 output of a finished command.
pub fn decode(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Drop for World {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.berth().args(["delete", "--force", id]).output();
        }
        // Remove this test's cgroup parent (berth removes what it created; this catches leftovers).
        for d in self.cgroup_dirs() {
            if d.exists() {
                let _ = Command::new("find")
                    .arg(&d)
                    .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                    .output();
            }
        }
    }
}
