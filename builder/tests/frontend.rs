//! End-to-end tests of the BuildKit-compatible build CLI and Dockerfile
//! flags: `--output` exporters, `--label`, `--annotation`, `--iidfile`,
//! `--metadata-file`, `COPY/ADD --chmod` symbolic modes, and `--ssh` with
//! `RUN --mount=type=ssh` against a real ssh-agent. Root only (RUN).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The image config skopeo reads from `src` (a transport:reference).
fn skopeo_config(src: &str) -> serde_json::Value {
    let o = Command::new("skopeo")
        .args(["inspect", "--config", src])
        .output()
        .expect("skopeo");
    assert!(
        o.status.success(),
        "{src}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("config")
}

fn tar_list(file: &Path) -> Vec<String> {
    let o = Command::new("tar")
        .arg("-tvf")
        .arg(file)
        .output()
        .expect("tar");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn outputs_labels_annotations_iidfile_and_metadata() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\nLABEL from.dockerfile=1 over=dockerfile\nCOPY a.txt /data/a.txt\nRUN echo built > /data/b.txt && rm /bin/true\n",
        &[("a.txt", "from the context\n")],
    );
    let d = env.dir.path();
    let p = |n: &str| d.join(n).display().to_string();
    let (digest, _) = env.ok(
        &[
            "-t",
            "out:1",
            "--label",
            "over=cli",
            "--label",
            "org.example.cli=yes",
            "--annotation",
            "org.opencontainers.image.title=demo",
            "--annotation",
            "manifest-descriptor:org.example.desc=d",
            "--iidfile",
            &p("iid"),
            "--metadata-file",
            &p("meta.json"),
            "-o",
            &format!("type=local,dest={}", p("local")),
            "-o",
            &format!("type=tar,dest={}", p("fs.tar")),
            "-o",
            &format!("type=docker,dest={}", p("docker.tar")),
            "-o",
            &format!("type=oci,dest={},tar=true", p("oci.tar")),
            "-o",
            &format!("type=oci,dest={}", p("layout")),
            "-o",
            "type=image,name=out:2",
        ],
        Some("0"),
    );
    // The image: labels merged (the CLI wins), the manifest annotated.
    let inspect: serde_json::Value =
        serde_json::from_str(&berth_build(&env, &["inspect", "out:1"])).expect("inspect");
    let labels = &inspect["Config"]["config"]["Labels"];
    assert_eq!(labels["over"], "cli", "{inspect}");
    assert_eq!(labels["from.dockerfile"], "1");
    assert_eq!(labels["org.example.cli"], "yes");
    assert_eq!(
        inspect["Manifest"]["annotations"]["org.opencontainers.image.title"],
        "demo"
    );
    // type=image,name= tagged a second name.
    let images = berth_build(&env, &["images"]);
    assert!(images.contains("out:2"), "{images}");
    // iidfile: the config digest; metadata: buildx's keys.
    let config_digest = inspect["Manifest"]["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string();
    assert_eq!(
        std::fs::read_to_string(d.join("iid")).expect("iid"),
        config_digest
    );
    let meta = json(&d.join("meta.json"));
    assert_eq!(meta["containerimage.digest"], digest.as_str());
    assert_eq!(meta["containerimage.config.digest"], config_digest.as_str());
    assert_eq!(meta["containerimage.descriptor"]["digest"], digest.as_str());
    assert!(meta["image.name"]
        .as_str()
        .expect("names")
        .contains("out:1"));
    // type=local: the final file tree, whiteouts applied.
    let local = d.join("local");
    assert_eq!(read(&local, "data/a.txt"), "from the context\n");
    assert_eq!(read(&local, "data/b.txt"), "built\n");
    assert!(local.join("bin/busybox").is_file());
    assert!(!local.join("bin/true").exists(), "deleted file exported");
    // type=tar: the same tree in one tar (not an image).
    let list = tar_list(&d.join("fs.tar"));
    assert!(list.iter().any(|l| l.ends_with("data/b.txt")), "{list:?}");
    assert!(!list.iter().any(|l| l.ends_with("oci-layout")));
    assert!(!list.iter().any(|l| l.ends_with("bin/true")));
    // type=docker: a docker-archive with the tags.
    let x = d.join("docker-x");
    std::fs::create_dir(&x).expect("mkdir");
    let o = Command::new("tar")
        .arg("-xf")
        .arg(d.join("docker.tar"))
        .arg("-C")
        .arg(&x)
        .output()
        .expect("tar");
    assert!(o.status.success());
    let m = json(&x.join("manifest.json"));
    assert_eq!(m.as_array().expect("entries").len(), 1, "{m}");
    assert_eq!(
        m[0]["RepoTags"],
        serde_json::json!(["out:1", "out:2"]),
        "{m}"
    );
    // skopeo reads the docker archive and the OCI archive.
    for src in [
        format!("docker-archive:{}", p("docker.tar")),
        format!("oci-archive:{}", p("oci.tar")),
    ] {
        let c = skopeo_config(&src);
        assert_eq!(c["config"]["Labels"]["over"], "cli");
    }
    // The descriptor annotation is in the layout's index.
    let index = json(&d.join("layout/index.json"));
    assert_eq!(
        index["manifests"][0]["annotations"]["org.example.desc"], "d",
        "{index}"
    );
    env.assert_clean();
}

#[test]
fn bad_outputs_and_flags_fail_before_building() {
    if seed().is_none() {
        return;
    }
    let env = Env::new("FROM oci:@SEED@\nRUN echo never > /x\n", &[]);
    for (args, want) in [
        (vec!["-o", "type=local"], "needs dest"),
        (vec!["-o", "type=s3,dest=x"], "unsupported type"),
        (vec!["--annotation", "index:k=v"], "index"),
        (vec!["--label", "novalue"], "--label"),
        (
            vec!["--ssh", "default=/nonexistent/agent"],
            "/nonexistent/agent",
        ),
    ] {
        let o = env.build(&args, None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Nothing was built.
    assert!(
        !env.root().join("cache").exists() || {
            std::fs::read_dir(env.root().join("cache"))
                .map(|r| r.count() == 0)
                .unwrap_or(true)
        }
    );
}

fn mode_of(root: &Path, p: &str) -> u32 {
    std::fs::symlink_metadata(root.join(p))
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn copy_chmod_symbolic_modes() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\n\
         COPY --chmod=u+x,go-w f644 /o/f1\n\
         COPY --chmod=a=rX dir/ /o/d/\n\
         ARG M=g=u\n\
         COPY --chmod=$M f640 /o/f2\n\
         COPY --chmod=0750 f644 /o/f3\n\
         COPY --chmod=u=rw,o= <<EOF /o/inline\n\
         hi\n\
         EOF\n",
        &[
            ("f644", "a"),
            ("f640", "b"),
            ("dir/plain", "c"),
            ("dir/tool", "d"),
            ("dir/sub/x", "e"),
        ],
    );
    let ctx = env.ctx();
    let set = |p: &str, m: u32| {
        std::fs::set_permissions(ctx.join(p), std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    set("f644", 0o664);
    set("f640", 0o640);
    set("dir/plain", 0o600);
    set("dir/tool", 0o700);
    set("dir/sub", 0o700);
    env.ok(&["-t", "chmod:1"], Some("0"));
    let root = unpacked(&env, "chmod:1", "b");
    assert_eq!(mode_of(&root, "o/f1"), 0o744);
    assert_eq!(mode_of(&root, "o/d/plain"), 0o444);
    assert_eq!(mode_of(&root, "o/d/tool"), 0o555);
    assert_eq!(mode_of(&root, "o/d/sub"), 0o555);
    assert_eq!(mode_of(&root, "o/d/sub/x"), 0o444);
    assert_eq!(mode_of(&root, "o/f2"), 0o660);
    assert_eq!(mode_of(&root, "o/f3"), 0o750);
    assert_eq!(mode_of(&root, "o/inline"), 0o640);
    // A bad mode names the instruction's line.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM oci:{}\nCOPY --chmod=u+q f644 /x\n",
            seed().expect("seed").display()
        ),
    )
    .expect("df");
    let o = env.build(&[], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("Dockerfile:2") && err.contains("--chmod=u+q"),
        "{err}"
    );
    env.assert_clean();
}

/// A real ssh-agent on a socket of its own, with one fresh key.
struct Agent {
    pid: u32,
    sock: PathBuf,
    listing: String,
}

impl Agent {
    fn start(dir: &Path) -> Option<Agent> {
        if !have("ssh-agent") || !have("ssh-add") || !have("ssh-keygen") {
            eprintln!("skipping: needs openssh-client (ssh-agent, ssh-add, ssh-keygen)");
            return None;
        }
        let sock = dir.join("agent.sock");
        let o = Command::new("ssh-agent")
            .arg("-a")
            .arg(&sock)
            .arg("-s")
            .output()
            .expect("ssh-agent");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        let pid: u32 = text
            .split("SSH_AGENT_PID=")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .and_then(|s| s.parse().ok())
            .expect("agent pid");
        let mut agent = Agent {
            pid,
            sock,
            listing: String::new(),
        };
        let key = dir.join("id_test");
        let o = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "berth-test-key",
                "-f",
            ])
            .arg(&key)
            .output()
            .expect("ssh-keygen");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let add = Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &agent.sock)
            .output()
            .expect("ssh-add");
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let l = Command::new("ssh-add")
            .arg("-l")
            .env("SSH_AUTH_SOCK", &agent.sock)
            .output()
            .expect("ssh-add -l");
        agent.listing = String::from_utf8_lossy(&l.stdout).into_owned();
        Some(agent)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

/// Copies the host's ssh-add and the libraries it loads into `dest`
/// (to be COPYed into the busybox image).
fn ssh_add_tree(dest: &Path) {
    let o = Command::new("ldd")
        .arg("/usr/bin/ssh-add")
        .output()
        .expect("ldd");
    let mut files = vec![PathBuf::from("/usr/bin/ssh-add")];
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let to = dest.join(f.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&f, &to).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn run_mount_ssh_reaches_a_real_agent() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\n\
         COPY sshroot/ /\n\
         RUN --mount=type=ssh ssh-add -l > /as-root.txt; echo \"$SSH_AUTH_SOCK\" > /sock.txt\n\
         RUN echo 'u:x:1000:1000::/:/bin/sh' >> /etc/passwd && mkdir -m 777 /out\n\
         USER 1000\n\
         RUN --mount=type=ssh,id=work,target=/tmp/agent,uid=1000,mode=0600,required \\\n\
             ssh-add -l > /out/as-user.txt\n\
         USER root\n\
         RUN --mount=type=ssh,id=absent ls -a /run > /run-listing.txt; test ! -e /run/buildkit/ssh_agent.0\n",
        &[],
    );
    let Some(agent) = Agent::start(env.dir.path()) else {
        return;
    };
    assert!(
        agent.listing.contains("berth-test-key"),
        "{}",
        agent.listing
    );
    ssh_add_tree(&env.ctx().join("sshroot"));
    let sock = agent.sock.display().to_string();
    // Without the agent, a required ssh mount fails and names the flag.
    let o = env.build(&["--ssh", &format!("default={sock}")], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("\"work\" is required")
            && err.contains("--ssh work=")
            && err.contains("Dockerfile:6"),
        "{err}"
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth-build"));
    c.arg("--root")
        .arg(env.root())
        .args(["build", "-t", "ssh:1", "--ssh", "default", "--ssh"])
        .arg(format!("work={sock}"))
        .arg(env.ctx())
        .env("SSH_AUTH_SOCK", &agent.sock);
    let o = c.output().expect("berth-build");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = unpacked(&env, "ssh:1", "b");
    // The agent's keys, seen from inside as root and as uid 1000.
    assert_eq!(read(&root, "as-root.txt"), agent.listing);
    assert_eq!(read(&root, "sock.txt"), "/run/buildkit/ssh_agent.0\n");
    assert_eq!(read(&root, "out/as-user.txt"), agent.listing);
    // The socket and its mount point are not part of the image.
    assert!(!root.join("run/buildkit/ssh_agent.0").exists());
    assert!(!root.join("tmp/agent").exists());
    assert!(!read(&root, "run-listing.txt").contains("buildkit"));
    // The agent's socket path never reaches the image config or history.
    let inspect = berth_build(&env, &["inspect", "ssh:1"]);
    assert!(!inspect.contains(&sock), "{inspect}");
    env.assert_clean();
}

/// A real git server (`git daemon`, git:// protocol) serving `base`.
struct GitDaemon {
    child: std::process::Child,
    pid_file: PathBuf,
    port: u16,
}

impl GitDaemon {
    fn start(base: &Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        // `git daemon` runs git-daemon as its child: the pid file names it.
        let pid_file = base.with_extension("pid");
        let child = Command::new("git")
            .arg("daemon")
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        GitDaemon {
            child,
            pid_file,
            port,
        }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) on the daemon this test started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git_in(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=berth test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn add_git_repository_from_a_real_git_server() {
    if seed().is_none() {
        return;
    }
    if !have("git") {
        eprintln!("skipping: needs git");
        return;
    }
    let env = Env::new("FROM scratch\n", &[]);
    let d = env.dir.path();
    // A work repo: main with docs/, tag v1, branch feature; pushed to a bare one.
    let work = d.join("work");
    std::fs::create_dir_all(work.join("docs")).expect("mkdir");
    git_in(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README"), "v1\n").expect("w");
    std::fs::write(work.join("docs/guide.txt"), "guide v1\n").expect("w");
    git_in(&work, &["add", "."]);
    git_in(&work, &["commit", "-q", "-m", "one"]);
    git_in(&work, &["tag", "v1"]);
    git_in(&work, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(work.join("feature.txt"), "feature\n").expect("w");
    git_in(&work, &["add", "."]);
    git_in(&work, &["commit", "-q", "-m", "feature"]);
    git_in(&work, &["checkout", "-q", "main"]);
    std::fs::write(work.join("docs/guide.txt"), "guide v2\n").expect("w");
    git_in(&work, &["commit", "-q", "-am", "two"]);
    let served = d.join("served");
    std::fs::create_dir(&served).expect("mkdir");
    git_in(
        &served,
        &[
            "clone",
            "-q",
            "--bare",
            &work.display().to_string(),
            "repo.git",
        ],
    );
    let daemon = GitDaemon::start(&served);
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let seed = seed().expect("seed").display().to_string();
    std::fs::write(
        env.ctx().join("Dockerfile"),
        format!(
            "FROM oci:{seed}\n\
             ADD {url}#v1:docs /docs-v1/\n\
             ADD --keep-git-dir --chmod=a-w {url}#feature /feat/\n\
             ADD {url} /src/\n"
        ),
    )
    .expect("df");
    env.ok(&["-t", "git:1"], Some("0"));
    let root = unpacked(&env, "git:1", "b1");
    assert_eq!(read(&root, "src/README"), "v1\n");
    assert_eq!(read(&root, "src/docs/guide.txt"), "guide v2\n");
    assert!(
        !root.join("src/.git").exists(),
        ".git kept without --keep-git-dir"
    );
    assert_eq!(read(&root, "docs-v1/guide.txt"), "guide v1\n");
    assert!(!root.join("docs-v1/README").exists());
    assert_eq!(read(&root, "feat/feature.txt"), "feature\n");
    assert!(root.join("feat/.git/HEAD").is_file(), "--keep-git-dir");
    assert_eq!(
        std::fs::metadata(root.join("feat/feature.txt"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o444
    );
    // Same commits: every step is cached. A new commit on main reruns
    // the last ADD only (the key holds the commit, not the URL).
    let (_, again) = env.ok(&["-t", "git:2"], Some("0"));
    assert_eq!(again.matches("CACHED").count(), 3, "{again}");
    std::fs::write(work.join("README"), "v2\n").expect("w");
    git_in(&work, &["commit", "-q", "-am", "three"]);
    git_in(
        &work,
        &[
            "push",
            "-q",
            &served.join("repo.git").display().to_string(),
            "main",
        ],
    );
    let (_, third) = env.ok(&["-t", "git:3"], Some("0"));
    assert_eq!(third.matches("CACHED").count(), 2, "{third}");
    let root = unpacked(&env, "git:3", "b3");
    assert_eq!(read(&root, "src/README"), "v2\n");
    // A missing reference, and a transport git must not use, are errors.
    for (src, want) in [
        (format!("{url}#nosuch"), "nosuch"),
        ("https://127.0.0.1:1/x.git".to_string(), "git clone"),
    ] {
        std::fs::write(
            env.ctx().join("Dockerfile"),
            format!("FROM oci:{seed}\nADD {src} /x/\n"),
        )
        .expect("df");
        let o = env.build(&[], None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{src}");
        assert!(
            err.contains(want) && err.contains("Dockerfile:2"),
            "{src}: {err}"
        );
    }
    env.assert_clean();
}

#[test]
fn run_security_insecure_needs_the_entitlement() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\n\
         RUN grep CapEff /proc/self/status > /sandbox.txt; mkdir /m; mount -t tmpfs none /m 2>/dev/null && echo mounted > /sandbox-mount.txt; true\n\
         RUN --security=insecure grep CapEff /proc/self/status > /insecure.txt && mount -t tmpfs none /m && umount /m && echo mounted > /insecure-mount.txt\n",
        &[],
    );
    let o = env.build(&[], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("--allow security.insecure") && err.contains("Dockerfile:3"),
        "{err}"
    );
    env.ok(&["-t", "insecure:1", "--allow", "security.insecure"], None);
    let root = unpacked(&env, "insecure:1", "b");
    let cap = |f: &str| {
        let t = read(&root, f);
        u64::from_str_radix(t.split_whitespace().nth(1).expect("mask"), 16).expect("hex")
    };
    // CAP_SYS_ADMIN (21) only in the insecure RUN, which can mount.
    assert_eq!(cap("sandbox.txt") & (1 << 21), 0);
    assert_ne!(cap("insecure.txt") & (1 << 21), 0);
    assert!(cap("insecure.txt") > cap("sandbox.txt"));
    assert!(!root.join("sandbox-mount.txt").exists());
    assert_eq!(read(&root, "insecure-mount.txt"), "mounted\n");
    env.assert_clean();
}

#[test]
fn build_contexts_replace_stages_images_and_name_directories() {
    if seed().is_none() {
        return;
    }
    let env = Env::new("FROM oci:@SEED@\nRUN echo tool > /tool.txt\n", &[]);
    env.ok(&["-t", "local/tool:1"], Some("0"));
    let extra = env.dir.path().join("extra");
    std::fs::create_dir_all(extra.join("sub")).expect("mkdir");
    std::fs::write(extra.join("sub/f.txt"), "from a named dir\n").expect("w");
    std::fs::write(
        env.ctx().join("Dockerfile"),
        "FROM base\n\
         COPY --from=extra sub/f.txt /f.txt\n\
         FROM tools AS tools\n\
         FROM base\n\
         COPY --from=tools /tool.txt /tool.txt\n\
         COPY --from=extra sub/ /sub/\n\
         RUN --mount=from=extra,target=/mnt cat /mnt/sub/f.txt > /mounted.txt\n\
         RUN --mount=from=extra,source=sub,target=/mnt,rw echo x > /mnt/f.txt && cat /mnt/f.txt > /rw.txt\n",
    )
    .expect("df");
    let seed = seed().expect("seed").display().to_string();
    env.ok(
        &[
            "-t",
            "ctx:1",
            "--build-context",
            &format!("base=oci-layout://{seed}"),
            "--build-context",
            &format!("extra={}", extra.display()),
            "--build-context",
            "tools=docker-image://local/tool:1",
        ],
        Some("0"),
    );
    let root = unpacked(&env, "ctx:1", "b");
    assert_eq!(read(&root, "tool.txt"), "tool\n");
    assert_eq!(read(&root, "sub/f.txt"), "from a named dir\n");
    assert_eq!(read(&root, "mounted.txt"), "from a named dir\n");
    assert_eq!(read(&root, "rw.txt"), "x\n");
    // A read-write mount's writes never reach the named directory.
    assert_eq!(
        std::fs::read_to_string(extra.join("sub/f.txt")).expect("f"),
        "from a named dir\n"
    );
    assert!(root.join("bin/busybox").is_file());
    // A named directory as a base image is refused, naming the line.
    std::fs::write(env.ctx().join("Dockerfile"), "FROM extra\n").expect("df");
    let o = env.build(
        &["--build-context", &format!("extra={}", extra.display())],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("--build-context directory") && err.contains("Dockerfile:1"),
        "{err}"
    );
    env.assert_clean();
}

/// The records of a cache layout's BuildKit cache config.
fn cache_records(dir: &Path) -> Vec<serde_json::Value> {
    let index = json(&dir.join("index.json"));
    let d = index["manifests"][0]["digest"].as_str().expect("digest");
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let cache_index = json(&blob(d));
    let manifests = cache_index["manifests"].as_array().expect("manifests");
    let cfg = manifests
        .iter()
        .find(|m| m["mediaType"] == "application/vnd.buildkit.cacheconfig.v0")
        .expect("cache config");
    for m in manifests.iter().filter(|m| m != &cfg) {
        assert!(m["annotations"]["containerd.io/uncompressed"]
            .as_str()
            .expect("diff id")
            .starts_with("sha256:"));
        assert!(blob(m["digest"].as_str().expect("d")).is_file());
    }
    let cfg = json(&blob(cfg["digest"].as_str().expect("cfg digest")));
    cfg["records"].as_array().expect("records").clone()
}

#[test]
fn cache_to_and_from_a_local_layout_moves_the_cache_between_stores() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@ AS build\n\
         RUN echo built > /b.txt\n\
         FROM oci:@SEED@\n\
         COPY --from=build /b.txt /b.txt\n\
         RUN cat /b.txt > /c.txt\n\
         ENV X=1\n",
        &[],
    );
    let d = env.dir.path();
    let max = d.join("cache-max");
    let min = d.join("cache-min");
    let (first, _) = env.ok(
        &[
            "--cache-to",
            &format!("type=local,dest={},mode=max", max.display()),
            "--cache-to",
            &format!("type=local,dest={}", min.display()),
        ],
        Some("0"),
    );
    // mode=max has the build stage's RUN too; each record after the first
    // of its stage links to the step before it.
    let (rmax, rmin) = (cache_records(&max), cache_records(&min));
    assert_eq!(rmax.len(), 3, "{rmax:?}");
    assert_eq!(rmin.len(), 2, "{rmin:?}");
    assert!(rmin[1]["inputs"][0][0]["link"] == 0, "{rmin:?}");
    // A fresh store with the cache: nothing runs, the same image comes out.
    let other = |n: &str| d.join(n).display().to_string();
    let run = |store: &str, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth-build"));
        c.arg("--root")
            .arg(other(store))
            .arg("build")
            .args(extra)
            .arg(env.ctx())
            .env("SOURCE_DATE_EPOCH", "0");
        let o = c.output().expect("berth-build");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        (String::from_utf8_lossy(&o.stdout).trim().to_string(), err)
    };
    let (again, log) = run(
        "store2",
        &["--cache-from", &format!("type=local,src={}", max.display())],
    );
    assert_eq!(again, first);
    assert_eq!(log.matches("CACHED").count(), 3, "{log}");
    // Without the cache, the steps run.
    let (_, cold) = run("store3", &[]);
    assert_eq!(cold.matches("CACHED").count(), 0, "{cold}");
    // A bad cache source is an error naming it.
    let o = env.build(&["--cache-from", "type=local,src=/nonexistent/cache"], None);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/cache"));
    env.assert_clean();
}

#[test]
fn provenance_attestation_in_the_image_index() {
    if seed().is_none() {
        return;
    }
    let env = Env::new(
        "FROM oci:@SEED@\nARG V=1\nLABEL v=$V\nRUN echo $V > /v.txt\n",
        &[],
    );
    let d = env.dir.path();
    let layout = d.join("layout");
    let archive = d.join("img.tar");
    let (digest, _) = env.ok(
        &[
            "-t",
            "prov:1",
            "--build-arg",
            "V=2",
            "--provenance=mode=max",
            "-o",
            &format!("type=oci,dest={}", layout.display()),
            "-o",
            &format!("type=oci-archive,dest={}", archive.display()),
        ],
        Some("0"),
    );
    let blob = |dg: &str| {
        json(
            &layout
                .join("blobs/sha256")
                .join(dg.trim_start_matches("sha256:")),
        )
    };
    let top = json(&layout.join("index.json"));
    let entry = &top["manifests"][0];
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "prov:1"
    );
    let index = blob(entry["digest"].as_str().expect("index digest"));
    let m = index["manifests"].as_array().expect("manifests");
    assert_eq!(m.len(), 2, "{index}");
    assert_eq!(m[0]["digest"], digest.as_str());
    assert_eq!(m[1]["platform"]["os"], "unknown");
    assert_eq!(
        m[1]["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    assert_eq!(
        m[1]["annotations"]["vnd.docker.reference.digest"],
        digest.as_str()
    );
    let att = blob(m[1]["digest"].as_str().expect("att"));
    let layer = &att["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.in-toto+json");
    assert_eq!(
        layer["annotations"]["in-toto.io/predicate-type"],
        "https://slsa.dev/provenance/v0.2"
    );
    let st = blob(layer["digest"].as_str().expect("layer"));
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v0.1");
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    assert!(st["subject"][0]["name"]
        .as_str()
        .expect("purl")
        .starts_with("pkg:docker/"));
    let materials = st["predicate"]["materials"].as_array().expect("materials");
    assert_eq!(materials.len(), 1, "{st}");
    assert_eq!(
        st["predicate"]["invocation"]["parameters"]["args"]["build-arg:V"],
        "2"
    );
    // Readers pick the image for their platform from the index.
    for src in [
        format!("oci:{}:prov:1", layout.display()),
        format!("oci-archive:{}", archive.display()),
    ] {
        let c = skopeo_config(&src);
        assert_eq!(c["config"]["Labels"]["v"], "2", "{src}");
    }
    // Unsupported combinations say so.
    for (args, want) in [
        (vec!["--sbom=true"], "--sbom"),
        (vec!["--provenance", "-t", "x:1", "--push"], "--provenance"),
    ] {
        let o = env.build(&args, None);
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{args:?}"
        );
    }
    env.assert_clean();
}

#[test]
fn output_to_stdout_is_a_tar_and_nothing_else() {
    if seed().is_none() {
        return;
    }
    let env = Env::new("FROM oci:@SEED@\nRUN echo hi > /hi.txt\n", &[]);
    for (spec, member) in [
        ("-", " hi.txt"),
        ("type=oci,dest=-", " index.json"),
        ("type=docker,dest=-", " manifest.json"),
    ] {
        let o = env.build(&["-t", "stdout:1", "-o", spec], Some("0"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let file = env.dir.path().join("stdout.tar");
        std::fs::write(&file, &o.stdout).expect("write");
        let list = tar_list(&file);
        assert!(
            list.iter().any(|l| l.ends_with(member)),
            "{spec}: {member} not in {list:?}"
        );
    }
    let o = env.build(&["-o", "-", "-o", "type=docker,dest=-"], None);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("only one --output"));
    env.assert_clean();
}
