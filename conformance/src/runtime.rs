//! Driving a runc-compatible runtime through its command line.
//!
//! Every invocation gets the suite's own `--root`, writes its stdout and stderr to files (a
//! container started by `create` keeps the runtime's stdio open, so pipes could block), and has a
//! timeout after which the runtime process (only ever one the suite started) is killed.

use crate::error::{io, Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which family a runtime belongs to; only used for machine-specific adaptations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// The reference runtime.
    Runc,
    /// crun: needs the private cgroup2 view and `--cgroup-manager=disabled` on hybrid hosts.
    Crun,
    /// This project's runtime.
    Berth,
    /// Any other runc-compatible binary.
    Other,
}

impl RuntimeKind {
    /// Guesses the family from a name or a binary's file name.
    pub fn guess(name: &str) -> RuntimeKind {
        let base = Path::new(name)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if base.starts_with("crun") || name == "crun" {
            RuntimeKind::Crun
        } else if base.starts_with("runc") || name == "runc" {
            RuntimeKind::Runc
        } else if base.starts_with("berth") || name == "berth" {
            RuntimeKind::Berth
        } else {
            RuntimeKind::Other
        }
    }
}

/// The shell snippet that gives the runtime a private mount namespace whose /sys/fs/cgroup is
/// a cgroup2 mount (a pure-v2 view of this hybrid host), then execs the runtime.
const CGROUP2_VIEW: &str =
    "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" \"$@\"";

/// A runtime binary under test.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Short name shown in reports ("runc", "crun", "berth" or the path).
    pub name: String,
    /// The binary.
    pub path: PathBuf,
    /// Its family.
    pub kind: RuntimeKind,
    /// The state directory passed as `--root` to every call.
    pub root: PathBuf,
    /// Run it in the private cgroup2 view (always true for crun).
    pub cgroup2_view: bool,
}

/// The triple this crate was built for (its binaries' directory under target/).
fn target_triple() -> &'static str {
    env!("BERTH_TARGET_TRIPLE")
}

/// Default paths of the well-known runtimes; `berth` is looked up in the workspace target dir.
pub fn resolve(spec: &str, workspace: &Path) -> Result<(String, PathBuf)> {
    let (name, path) = match spec {
        "runc" => ("runc".to_string(), PathBuf::from("/usr/sbin/runc")),
        "crun" => ("crun".to_string(), PathBuf::from("/usr/bin/crun")),
        "berth" => {
            // The build targets the host triple (.cargo/config.toml), so binaries are under
            // target/<triple>/; a plain target/ layout is looked at too.
            let triple = target_triple();
            let dirs = [format!("target/{triple}"), "target".to_string()];
            let candidates: Vec<PathBuf> = dirs
                .iter()
                .flat_map(|d| ["release", "debug"].map(|p| workspace.join(d).join(p).join("berth")))
                .collect();
            let p = candidates
                .iter()
                .find(|p| p.exists())
                .cloned()
                .unwrap_or_else(|| candidates[0].clone());
            ("berth".to_string(), p)
        }
        other => {
            let p = PathBuf::from(other);
            let name = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| other.to_string());
            (name, p)
        }
    };
    if !path.exists() {
        return Err(Error::NoRuntime { name, path });
    }
    Ok((name, path))
}

/// What to pass to one runtime invocation besides its arguments.
#[derive(Debug, Default, Clone)]
pub struct Invoke {
    /// Bytes for standard input (otherwise /dev/null).
    pub stdin: Option<Vec<u8>>,
    /// Global flags placed before the subcommand (e.g. `--log`, `--log-format`).
    pub global: Vec<String>,
    /// Files opened read-only as fds 3, 4, ... of the runtime (for `--preserve-fds`).
    pub extra_fds: Vec<PathBuf>,
    /// Timeout (default 30 s).
    pub timeout: Option<Duration>,
    /// Run the runtime on a new pseudo-terminal (its stdin, stdout and stderr, and its
    /// controlling terminal), as an interactive user would; everything it writes there is
    /// returned as `stdout`. `stdin` bytes are typed into the terminal.
    pub tty: bool,
}

/// The result of one runtime invocation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The command line after the global flags, for messages.
    pub command: String,
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Whether the suite had to kill it after the timeout.
    pub timed_out: bool,
}

impl Outcome {
    /// True when it exited with status 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// A short description of how it ended.
    pub fn status(&self) -> String {
        if self.timed_out {
            "timed out".to_string()
        } else {
            match self.code {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".to_string(),
            }
        }
    }

    /// Turns a failure into an [`Error::Runtime`].
    pub fn require(self) -> Result<Outcome> {
        if self.ok() {
            Ok(self)
        } else {
            Err(Error::Runtime {
                command: self.command.clone(),
                status: self.status(),
                stderr: tail(&self.stderr, 400),
            })
        }
    }

    /// Parses standard output as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(self.stdout.trim()).map_err(|source| Error::Json {
            what: format!("output of `{}`", self.command),
            text: tail(&self.stdout, 300),
            source,
        })
    }
}

/// The last `n` bytes of a text (on a char boundary), trimmed.
pub fn tail(text: &str, n: usize) -> String {
    let t = text.trim();
    if t.len() <= n {
        return t.to_string();
    }
    let mut start = t.len() - n;
    while !t.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &t[start..])
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

impl Runtime {
    /// A runtime named `name` at `path` with state under `root`.
    pub fn new(name: &str, path: &Path, root: &Path) -> Runtime {
        let mut kind = RuntimeKind::guess(name);
        if kind == RuntimeKind::Other {
            kind = RuntimeKind::guess(&path.to_string_lossy());
        }
        Runtime {
            name: name.to_string(),
            path: path.to_path_buf(),
            kind,
            root: root.to_path_buf(),
            cgroup2_view: kind == RuntimeKind::Crun,
        }
    }

    /// True when this runtime manages cgroups here (crun runs with its manager disabled).
    pub fn manages_cgroups(&self) -> bool {
        self.kind != RuntimeKind::Crun
    }

    /// The command for `args` (global flags first), wrapped as the machine requires.
    pub fn command(&self, args: &[String], global: &[String]) -> Command {
        let mut full: Vec<String> = Vec::new();
        if self.kind == RuntimeKind::Crun {
            full.push("--cgroup-manager=disabled".into());
        }
        full.push("--root".into());
        full.push(self.root.to_string_lossy().into_owned());
        full.extend(global.iter().cloned());
        full.extend(args.iter().cloned());
        if self.cgroup2_view {
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private", "sh", "-c", CGROUP2_VIEW]);
            c.arg(&self.path);
            c.args(&full);
            c
        } else {
            let mut c = Command::new(&self.path);
            c.args(&full);
            c
        }
    }

    /// Runs the runtime with `args`, keeping its output files under `work`.
    pub fn invoke(&self, work: &Path, args: &[String], opts: &Invoke) -> Result<Outcome> {
        let n = CALLS.fetch_add(1, Ordering::SeqCst);
        let out_path = work.join(format!("call{n}.out"));
        let err_path = work.join(format!("call{n}.err"));
        let mut cmd = self.command(args, &opts.global);
        if !opts.extra_fds.is_empty() {
            // Open the extra files as fds 3.. in a small shell that then execs the command.
            let n_fds = opts.extra_fds.len();
            let mut script = String::from("exec");
            for i in 0..n_fds {
                script.push_str(&format!(" {}<\"${}\"", i + 3, i + 1));
            }
            script.push_str(&format!("; shift {n_fds}; exec \"$@\""));
            let prog = cmd.get_program().to_os_string();
            let cargs: Vec<_> = cmd.get_args().map(|a| a.to_os_string()).collect();
            let mut wrapped = Command::new("sh");
            wrapped.arg("-c").arg(script).arg("sh");
            wrapped.args(&opts.extra_fds);
            wrapped.arg(prog);
            wrapped.args(cargs);
            cmd = wrapped;
        }
        if opts.tty {
            return self.invoke_on_pty(cmd, args, opts);
        }
        let stdout = File::create(&out_path).map_err(io("creating", &out_path))?;
        let stderr = File::create(&err_path).map_err(io("creating", &err_path))?;
        cmd.stdout(stdout).stderr(stderr);
        let stdin_path = work.join(format!("call{n}.in"));
        if let Some(bytes) = &opts.stdin {
            std::fs::write(&stdin_path, bytes).map_err(io("writing", &stdin_path))?;
            let f = File::open(&stdin_path).map_err(io("opening", &stdin_path))?;
            cmd.stdin(f);
        } else {
            cmd.stdin(Stdio::null());
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            program: self.path.display().to_string(),
            source,
        })?;
        let limit = opts.timeout.unwrap_or(Duration::from_secs(30));
        let start = Instant::now();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if start.elapsed() > limit => {
                    let _ = child.kill();
                    timed_out = true;
                    break child.wait().ok();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(source) => {
                    return Err(Error::Spawn {
                        program: self.path.display().to_string(),
                        source,
                    })
                }
            }
        };
        let read = |p: &Path| std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned());
        let out = Outcome {
            command: args.join(" "),
            code: status.and_then(|s| s.code()),
            stdout: read(&out_path).map_err(io("reading", &out_path))?,
            stderr: read(&err_path).map_err(io("reading", &err_path))?,
            timed_out,
        };
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        let _ = std::fs::remove_file(&stdin_path);
        Ok(out)
    }

    /// Runs `cmd` with a new pty as its stdio and controlling terminal (see [`Invoke::tty`]).
    fn invoke_on_pty(&self, mut cmd: Command, args: &[String], opts: &Invoke) -> Result<Outcome> {
        use std::io::{Read, Write};
        use std::os::unix::process::CommandExt;
        let ws = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None)
            .map_err(|e| Error::Other(format!("openpty: {e}")))?;
        let dup = |what: &str| {
            pty.slave
                .try_clone()
                .map_err(|e| Error::Other(format!("dup pty slave for {what}: {e}")))
        };
        cmd.stdin(Stdio::from(dup("stdin")?));
        cmd.stdout(Stdio::from(dup("stdout")?));
        cmd.stderr(Stdio::from(dup("stderr")?));
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        // Our copies of the slave must go, or the master never sees the end of output.
        drop(cmd);
        drop(pty.slave);
        let mut child = spawned.map_err(|source| Error::Spawn {
            program: self.path.display().to_string(),
            source,
        })?;
        let mut master = std::fs::File::from(pty.master);
        if let Some(bytes) = &opts.stdin {
            let _ = master.write_all(bytes);
        }
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut reader = master
            .try_clone()
            .map_err(|e| Error::Other(format!("dup pty master: {e}")))?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every slave descriptor is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let limit = opts.timeout.unwrap_or(Duration::from_secs(30));
        let start = Instant::now();
        let mut out = Vec::new();
        let mut timed_out = false;
        let mut status = None;
        loop {
            while let Ok(b) = rx.try_recv() {
                out.extend(b);
            }
            match child.try_wait() {
                Ok(Some(st)) => {
                    status = Some(st);
                    break;
                }
                Ok(None) if start.elapsed() > limit => {
                    let _ = child.kill();
                    timed_out = true;
                    status = child.wait().ok();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break,
            }
        }
        // Whatever is still buffered in the terminal (a short grace period).
        let grace = Instant::now();
        while grace.elapsed() < Duration::from_millis(500) {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(b) => out.extend(b),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        Ok(Outcome {
            command: args.join(" "),
            code: status.and_then(|s| s.code()),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::new(),
            timed_out,
        })
    }

    /// The first line of `--version`, for reports.
    pub fn version(&self, work: &Path) -> String {
        let args = vec!["--version".to_string()];
        let mut c = Command::new(&self.path);
        c.args(&args);
        match c.output() {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
            Err(e) => format!("unknown ({e}; work dir {})", work.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_names_and_paths() {
        assert_eq!(RuntimeKind::guess("crun"), RuntimeKind::Crun);
        assert_eq!(RuntimeKind::guess("/usr/sbin/runc"), RuntimeKind::Runc);
        assert_eq!(
            RuntimeKind::guess("/x/target/release/berth"),
            RuntimeKind::Berth
        );
        assert_eq!(RuntimeKind::guess("/opt/youki"), RuntimeKind::Other);
    }

    #[test]
    fn crun_is_wrapped_in_the_cgroup2_view() {
        let rt = Runtime::new("crun", Path::new("/usr/bin/crun"), Path::new("/r"));
        let c = rt.command(&["state".into(), "x".into()], &[]);
        assert_eq!(c.get_program(), "unshare");
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args
            .iter()
            .any(|a| a.contains("mount -t cgroup2 none /sys/fs/cgroup")));
        let tail: Vec<&str> = args[args.len() - 6..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "/usr/bin/crun",
                "--cgroup-manager=disabled",
                "--root",
                "/r",
                "state",
                "x"
            ]
        );
        let runc = Runtime::new("runc", Path::new("/usr/sbin/runc"), Path::new("/r"));
        let c = runc.command(&["list".into()], &["--log-format".into(), "json".into()]);
        assert_eq!(c.get_program(), "/usr/sbin/runc");
        let args: Vec<_> = c.get_args().collect();
        assert_eq!(args, ["--root", "/r", "--log-format", "json", "list"]);
        assert!(!runc.cgroup2_view && runc.manages_cgroups() && !rt.manages_cgroups());
    }

    #[test]
    fn tail_and_outcome() {
        assert_eq!(tail("  short \n", 10), "short");
        assert_eq!(tail("abcdefghij", 3), "...hij");
        let o = Outcome {
            command: "state x".into(),
            code: Some(1),
            stdout: "{\"a\":1}".into(),
            stderr: "boom".into(),
            timed_out: false,
        };
        assert!(!o.ok());
        assert_eq!(o.status(), "exit 1");
        assert_eq!(o.json().unwrap()["a"], 1);
        let e = o.require().unwrap_err().to_string();
        assert!(e.contains("state x") && e.contains("boom"), "{e}");
    }
}
