//! `containerd-shim-berth-v2`: containerd's shim v2 binary protocol (`start`, `delete`, `-v`,
//! `-info`, and the long-lived daemon those start) around a ttrpc task service that runs
//! containers in-process through the berth library.

mod events;
mod mount;
mod oom;
mod options;
mod process;
mod proto;
mod server;
mod stats;
mod stdio;
mod task;
mod ttrpc;

use anyhow::{bail, Context, Result};
use prost::Message;
use sha2::Digest;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Where shim sockets live (containerd 1.6 puts every shim's there).
const SOCKET_DIR: &str = "/run/containerd/s";
/// Annotations that group containers into one shim, checked in order.
const GROUP_LABELS: [&str; 3] = [
    "io.containerd.berth.v2.group",
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
];
/// The environment variable that tells the daemon its listener is fd 3 and where it is bound.
const SOCKET_ENV: &str = "BERTH_SHIM_SOCKET";

/// Flags as containerd passes them (Go `flag` style: `-name value`, `-name=value`, `--name`).
#[derive(Debug, Default, PartialEq)]
struct Flags {
    namespace: String,
    address: String,
    publish_binary: String,
    id: String,
    bundle: String,
    debug: bool,
    version: bool,
    info: bool,
    action: Option<String>,
}

fn parse_flags(args: &[String]) -> Result<Flags> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if !a.starts_with('-') {
            if f.action.is_none() {
                f.action = Some(a.clone());
            }
            continue;
        }
        let name = a.trim_start_matches('-');
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        match name {
            "debug" => f.debug = inline.map(|v| v != "false").unwrap_or(true),
            "v" | "version" => f.version = true,
            "info" => f.info = true,
            "namespace" | "address" | "publish-binary" | "id" | "bundle" | "socket" => {
                let v = match inline {
                    Some(v) => v,
                    None => {
                        let v = args
                            .get(i)
                            .cloned()
                            .with_context(|| format!("flag -{name} needs a value"))?;
                        i += 1;
                        v
                    }
                };
                match name {
                    "namespace" => f.namespace = v,
                    "address" => f.address = v,
                    "publish-binary" => f.publish_binary = v,
                    "id" => f.id = v,
                    "bundle" => f.bundle = v,
                    _ => {}
                }
            }
            other => bail!("flag provided but not defined: -{other}"),
        }
    }
    if f.namespace.is_empty() {
        f.namespace = std::env::var("NAMESPACE").unwrap_or_default();
    }
    Ok(f)
}

/// The berth state root of a namespace's containers (unless their runtime options name another).
fn state_root(namespace: &str) -> PathBuf {
    options::state_root(None, namespace)
}

/// The grouping key of a bundle: a group annotation from its config.json, else the id.
fn grouping(config: &[u8], id: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(config).unwrap_or_default();
    for l in GROUP_LABELS {
        if let Some(g) = v["annotations"][l].as_str() {
            if !g.is_empty() {
                return g.to_string();
            }
        }
    }
    id.to_string()
}

/// The shim socket for a group: a hash of containerd's address, the namespace and the group.
fn socket_path(address: &str, namespace: &str, group: &str) -> PathBuf {
    let h = sha2::Sha256::digest(format!("berth/{address}/{namespace}/{group}").as_bytes());
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    Path::new(SOCKET_DIR).join(hex)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("containerd-shim-berth-v2: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: &[String]) -> Result<i32> {
    let f = parse_flags(args)?;
    if f.version {
        println!(
            "containerd-shim-berth-v2:\n  Version:  {}\n  Runtime:  berth (in-process, OCI {})",
            env!("CARGO_PKG_VERSION"),
            berth::OCI_VERSION
        );
        return Ok(0);
    }
    if f.info {
        std::io::stdout().write_all(&runtime_info().encode_to_vec())?;
        return Ok(0);
    }
    match f.action.as_deref() {
        Some("start") => start(&f),
        Some("delete") => delete(&f),
        Some(other) => bail!("unknown action {other:?} (start, delete)"),
        None if std::env::var_os(SOCKET_ENV).is_some() => daemon(&f),
        None => bail!("no action given: containerd runs this shim as `... start` or `... delete`"),
    }
}

/// containerd.types.RuntimeInfo (what `-info` prints for containerd 2.x).
#[derive(Clone, PartialEq, prost::Message)]
struct RuntimeInfo {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    version: Option<RuntimeVersion>,
    #[prost(message, optional, tag = "4")]
    features: Option<proto::Any>,
}

/// containerd.types.RuntimeVersion.
#[derive(Clone, PartialEq, prost::Message)]
struct RuntimeVersion {
    #[prost(string, tag = "1")]
    version: String,
    #[prost(string, tag = "2")]
    revision: String,
}

fn runtime_info() -> RuntimeInfo {
    let features = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": berth::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": berth::rootfs::plan::KNOWN_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": berth::capabilities::NAMES,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true},
        },
    });
    RuntimeInfo {
        name: "io.containerd.berth.v2".into(),
        version: Some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").into(),
            revision: String::new(),
        }),
        features: Some(proto::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/features/Features".into(),
            value: serde_json::to_vec(&features).unwrap_or_default(),
        }),
    }
}

/// `start`: find or spawn the shim serving this container's group; print its address.
fn start(f: &Flags) -> Result<i32> {
    // containerd writes the runtime options to stdin; the daemon takes them from Create.
    let mut opts = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut opts);
    let bundle = std::env::current_dir().context("current directory (the bundle)")?;
    let config = std::fs::read(bundle.join("config.json")).unwrap_or_default();
    let group = grouping(&config, &f.id);
    let sock = socket_path(&f.address, &f.namespace, &group);
    let addr = format!("unix://{}", sock.display());
    std::fs::create_dir_all(SOCKET_DIR).with_context(|| format!("create {SOCKET_DIR}"))?;
    let listener = loop {
        if UnixStream::connect(&sock).is_ok() {
            // A shim for this group runs already: containerd will Create on it.
            write_bundle_file(&bundle, "address", &addr)?;
            println!("{addr}");
            return Ok(0);
        }
        let _ = std::fs::remove_file(&sock);
        match UnixListener::bind(&sock) {
            Ok(l) => break l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e).with_context(|| format!("bind {}", sock.display())),
        }
    };
    let pid = spawn_daemon(f, &bundle, &sock, listener)?;
    write_bundle_file(&bundle, "address", &addr)?;
    write_bundle_file(&bundle, "shim.pid", &pid.to_string())?;
    println!("{addr}");
    Ok(0)
}

fn write_bundle_file(bundle: &Path, name: &str, text: &str) -> Result<()> {
    berth::sys::write_atomic(&bundle.join(name), text.as_bytes())
        .with_context(|| format!("write {}", bundle.join(name).display()))
}

fn spawn_daemon(f: &Flags, bundle: &Path, sock: &Path, listener: UnixListener) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("locate the shim binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "-namespace",
        &f.namespace,
        "-id",
        &f.id,
        "-address",
        &f.address,
    ]);
    if !f.publish_binary.is_empty() {
        cmd.args(["-publish-binary", &f.publish_binary]);
    }
    if f.debug {
        cmd.arg("-debug");
    }
    cmd.current_dir(bundle)
        .env(SOCKET_ENV, sock)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    // containerd reads shim logs from the `log` fifo in the bundle.
    match stdio::open_log_fifo(&bundle.join("log")) {
        Some(fd) => cmd.stderr(std::process::Stdio::from(fd)),
        None => cmd.stderr(std::process::Stdio::null()),
    };
    let lfd = listener.into_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 onto itself would keep close-on-exec: clear it explicitly then.
            let r = if lfd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(lfd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("start the shim daemon")?;
    // SAFETY: lfd came from into_raw_fd above and is closed once here.
    drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(lfd) });
    Ok(child.id())
}

/// The long-lived daemon: serve the task API on the listener inherited as fd 3.
fn daemon(f: &Flags) -> Result<i32> {
    if f.debug {
        // A descriptor of its own for the log (containerd's log fifo, now fd 2): while berth
        // creates a container, fd 2 is briefly the container's stderr, and the library's child
        // logs until execve; those lines belong in the shim log, not in the container's output.
        use std::os::fd::AsFd;
        if let Ok(log) = std::io::stderr().as_fd().try_clone_to_owned() {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::sync::Mutex::new(std::fs::File::from(log)))
                .with_max_level(tracing::Level::DEBUG)
                .try_init();
        }
    }
    let sock = PathBuf::from(std::env::var_os(SOCKET_ENV).unwrap_or_default());
    // SAFETY: `start` put the bound listening socket on fd 3 for us.
    let listener = unsafe { UnixListener::from_raw_fd(3) };
    berth::sys::set_cloexec(listener.as_raw_fd(), true)?;
    std::env::remove_var(SOCKET_ENV);
    berth::container::become_subreaper();
    let signals = server::install_signals()?;
    let ttrpc_addr = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
    let mut shim = task::Shim::new(
        state_root(&f.namespace),
        f.namespace.clone(),
        events::Publisher::new(ttrpc_addr, f.namespace.clone()),
    );
    tracing::debug!(id = f.id, socket = %sock.display(), "shim serving");
    server::serve(listener, signals, &mut shim);
    let _ = std::fs::remove_file(&sock);
    Ok(0)
}

/// `delete`: clean up after a shim that is gone: force-delete the container through the
/// library, unmount its rootfs, and print the DeleteResponse.
fn delete(f: &Flags) -> Result<i32> {
    let bundle = if f.bundle.is_empty() {
        std::env::current_dir()?
    } else {
        PathBuf::from(&f.bundle)
    };
    // A container created with runtime option Root recorded its state root in the bundle.
    let root = match std::fs::read(bundle.join(options::ROOT_FILE)) {
        Ok(p) => PathBuf::from(std::ffi::OsString::from_vec(p)),
        Err(_) => state_root(&f.namespace),
    };
    let mut pid = 0;
    match berth::container::load(&root, &f.id) {
        Ok((dir, st)) => {
            pid = st.pid;
            if let Err(e) = berth::container::delete(dir, &st, true) {
                eprintln!("containerd-shim-berth-v2: delete {}: {e}", f.id);
            }
        }
        Err(berth::container::Error::NotExist(_)) => {}
        Err(e) => eprintln!("containerd-shim-berth-v2: load {}: {e}", f.id),
    }
    mount::unmount_all(&bundle.join("rootfs"));
    // The dead shim's socket, unless another container of its group still has a live shim.
    let config = std::fs::read(bundle.join("config.json")).unwrap_or_default();
    let sock = socket_path(&f.address, &f.namespace, &grouping(&config, &f.id));
    if UnixStream::connect(&sock).is_err() {
        let _ = std::fs::remove_file(&sock);
    }
    let resp = proto::DeleteResponse {
        pid: pid as u32,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: Some(proto::Timestamp::now()),
    };
    std::io::stdout().write_all(&resp.encode_to_vec())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_containerd_command_lines() {
        let f = parse_flags(&s(&[
            "-namespace",
            "k8s.io",
            "-address",
            "/run/containerd/containerd.sock",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "abc",
            "start",
        ]))
        .unwrap();
        assert_eq!(f.namespace, "k8s.io");
        assert_eq!(f.id, "abc");
        assert_eq!(f.action.as_deref(), Some("start"));
        let f = parse_flags(&s(&["--id=x", "-bundle", "/b", "-debug", "delete"])).unwrap();
        assert_eq!(
            (f.id.as_str(), f.bundle.as_str(), f.debug),
            ("x", "/b", true)
        );
        assert!(parse_flags(&s(&["-bogus"])).is_err());
        assert!(parse_flags(&s(&["-id"])).is_err());
    }

    #[test]
    fn groups_by_annotation_else_id() {
        let cfg = br#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#;
        assert_eq!(grouping(cfg, "c1"), "pod1");
        assert_eq!(grouping(b"{}", "c1"), "c1");
        assert_eq!(grouping(b"not json", "c1"), "c1");
        let a = socket_path("/a", "ns", "pod1");
        assert_eq!(a, socket_path("/a", "ns", "pod1"));
        assert_ne!(a, socket_path("/a", "ns2", "pod1"));
        assert!(a.as_os_str().len() < 108);
    }
}
