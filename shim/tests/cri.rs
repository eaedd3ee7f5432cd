//! Kubernetes' path: containerd's CRI plugin with a runtime handler `berth`
//! (io.containerd.berth.v2) driven by a CRI v1 client (k8s-cri over gRPC on containerd's unix
//! socket): two pods on a CNI bridge (Debian's containernetworking-plugins), a pod with two
//! containers that share its network namespace and one shim, ExecSync, container logs, and
//! cleanup through StopPodSandbox/RemovePodSandbox with no shim left. containerd runs in a
//! network namespace of its own (unshare -n), so the bridge never touches the host's network.
//! The same scenario runs with the handler `runc` (io.containerd.runc.v2) to prove it, and,
//! when BERTH_INSTALLED_PREFIX names a prefix hack/install.sh installed into
//! (hack/test-install.sh), with only the installed files: the shim from PREFIX/bin, the runtime
//! table PREFIX/share/berth/containerd/berth-runtime.toml appended to containerd's config, and
//! the handler the RuntimeClass manifest PREFIX/share/berth/kubernetes/runtimeclass.yaml names.

mod support;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;
use tonic::transport::{Channel, Endpoint, Uri};

/// A private CRI-enabled containerd in its own network namespace, stopped on drop.
struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    done: PathBuf,
}

impl Containerd {
    fn start(tag: &str, installed: Option<&Path>) -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-cri-{tag}-"))
            .tempdir()
            .unwrap();
        let ready = dir.path().join("ready");
        let done = dir.path().join("done");
        // The berth runtime's options through containerd's CRI config (runtimes.berth.options
        // ConfigPath): a state root of the test's own, checked in the scenario.
        let options = dir.path().join("berth-options.toml");
        std::fs::write(
            &options,
            format!("Root = \"{}\"\n", dir.path().join("berth-root").display()),
        )
        .unwrap();
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cmd = Command::new("unshare");
        match installed {
            Some(prefix) => cmd.env("SHIM_DIR", prefix.join("bin")).env(
                "BERTH_CRI_RUNTIME_SNIPPET",
                prefix.join("share/berth/containerd/berth-runtime.toml"),
            ),
            None => cmd
                .env("BERTH_RUNTIME_CONFIG", &options)
                .env("SHIM_DIR", shim_dir()),
        };
        let child = cmd
            .args(["-n", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
            .arg(here.join("../hack/with-containerd.sh"))
            .arg(dir.path().join("containerd"))
            .args([
                "--",
                "sh",
                "-c",
                "touch \"$READY\"; while [ ! -e \"$DONE\" ]; do sleep 0.1; done",
            ])
            .env("CONTAINERD_CRI", "1")
            .env("READY", &ready)
            .env("DONE", &done)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut c = Containerd { child, dir, done };
        let t = Instant::now();
        while !ready.exists() {
            if let Ok(Some(st)) = c.child.try_wait() {
                panic!("with-containerd.sh exited early ({st}); see {}", c.log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "containerd did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd/containerd.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd/containerd.log"))
            .unwrap_or_default()
    }

    /// Shim daemons serving this containerd.
    fn shims(&self) -> usize {
        let out = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        let sock = self.socket().display().to_string();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first().is_some_and(|b| b.contains("containerd-shim-"))
                    && w.windows(2).any(|p| p[0] == "-address" && p[1] == sock)
            })
            .count()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.done, "");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn client(sock: PathBuf) -> RuntimeServiceClient<Channel> {
    let channel = Endpoint::try_from("http://[::]")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = sock.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
            }
        }))
        .await
        .unwrap();
    RuntimeServiceClient::new(channel)
}

fn pod_config(name: &str, tag: &str, logs: &Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}-{tag}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: logs.join(name).display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/berth-cri-{tag}/{name}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Cri {
    rt: RuntimeServiceClient<Channel>,
    handler: String,
}

impl Cri {
    async fn pod(&mut self, cfg: &PodSandboxConfig) -> String {
        let r = self
            .rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(cfg.clone()),
                runtime_handler: self.handler.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}"));
        r.into_inner().pod_sandbox_id
    }

    async fn container(
        &mut self,
        pod: &str,
        cfg: &PodSandboxConfig,
        name: &str,
        cmd: &str,
    ) -> String {
        self.create_start(pod, cfg, name, cmd, false).await
    }

    async fn create_start(
        &mut self,
        pod: &str,
        cfg: &PodSandboxConfig,
        name: &str,
        cmd: &str,
        stdin: bool,
    ) -> String {
        let r = self
            .rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: name.into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: "localhost/busybox:latest".into(),
                        ..Default::default()
                    }),
                    command: vec!["sh".into(), "-c".into(), cmd.into()],
                    log_path: format!("{name}.log"),
                    stdin,
                    ..Default::default()
                }),
                sandbox_config: Some(cfg.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"));
        let id = r.into_inner().container_id;
        self.rt
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("StartContainer {name}: {e}"));
        id
    }

    async fn container_stdin(
        &mut self,
        pod: &str,
        cfg: &PodSandboxConfig,
        name: &str,
        cmd: &str,
    ) -> String {
        self.create_start(pod, cfg, name, cmd, true).await
    }

    async fn exec(&mut self, id: &str, cmd: &str) -> (i32, String) {
        let r = self
            .rt
            .exec_sync(ExecSyncRequest {
                container_id: id.into(),
                cmd: vec!["sh".into(), "-c".into(), cmd.into()],
                timeout: 20,
            })
            .await
            .unwrap_or_else(|e| panic!("ExecSync {cmd}: {e}"))
            .into_inner();
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned() + &String::from_utf8_lossy(&r.stderr),
        )
    }

    async fn remove_pod(&mut self, id: &str) {
        self.rt
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("StopPodSandbox: {e}"));
        self.rt
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}"));
    }
}

/// Talks to containerd's CRI streaming server (which listens in containerd's network
/// namespace) over a WebSocket with the `v4.channel.k8s.io` protocol: sends `send` as
/// (channel, bytes) frames, then collects what arrives per channel until the server closes.
/// With `until`, stops once the text has arrived (an attach never closes by itself).
fn stream(
    netns_of: i32,
    url: &str,
    send: Vec<(u8, Vec<u8>)>,
    until: Option<&str>,
) -> Vec<(u8, Vec<u8>)> {
    let until = until.map(str::to_string);
    use tungstenite::client::IntoClientRequest;
    let url = url.to_string();
    std::thread::spawn(move || {
        // Only this thread enters containerd's network namespace.
        let ns = std::fs::File::open(format!("/proc/{netns_of}/ns/net")).unwrap();
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rest = url.strip_prefix("http://").unwrap_or(&url);
        let hostport = rest.split('/').next().unwrap_or_default().to_string();
        let tcp = std::net::TcpStream::connect(&hostport).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut req = format!("ws://{rest}").into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "v4.channel.k8s.io".parse().unwrap(),
        );
        let (mut ws, _) = tungstenite::client(req, tcp).unwrap_or_else(|e| panic!("{url}: {e}"));
        for (ch, data) in send {
            let mut frame = vec![ch];
            frame.extend(data);
            ws.send(tungstenite::Message::binary(frame)).unwrap();
        }
        let mut got: Vec<(u8, Vec<u8>)> = Vec::new();
        while let Ok(m) = ws.read() {
            match m {
                tungstenite::Message::Binary(b) if !b.is_empty() => {
                    got.push((b[0], b[1..].to_vec()))
                }
                tungstenite::Message::Close(_) => break,
                _ => {}
            }
            if let Some(u) = &until {
                let text: String = got
                    .iter()
                    .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
                    .collect();
                if text.contains(u.as_str()) {
                    break;
                }
            }
        }
        got
    })
    .join()
    .unwrap()
}

fn channel(frames: &[(u8, Vec<u8>)], ch: u8) -> String {
    frames
        .iter()
        .filter(|(c, _)| *c == ch)
        .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
        .collect()
}

/// Removes the pods' cgroup parents; returns container cgroups that were still there.
fn remove_pod_cgroups(tag: &str) -> Vec<String> {
    let mut left = Vec::new();
    for d in cgroup_dirs(&format!("berth-cri-{tag}")) {
        for pod in ["pod-a", "pod-b"] {
            left.extend(remove_cgroup_parent(&d.join(pod)));
        }
        let _ = std::fs::remove_dir(&d);
    }
    left
}

fn scenario(handler: &str, installed: Option<&Path>) {
    if !can_run(
        "CRI tests",
        &[
            "/usr/bin/containerd",
            "/usr/lib/cni/bridge",
            "/usr/lib/cni/host-local",
        ],
    ) {
        return;
    }
    let tag = format!("{handler}-{}", std::process::id());
    let cd = Containerd::start(handler, installed);
    let logs = cd.dir.path().join("logs");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let mut cri = Cri {
                rt: client(cd.socket()).await,
                handler: handler.into(),
            };
            let a_cfg = pod_config("pod-a", &tag, &logs);
            let a = cri.pod(&a_cfg).await;
            let web = cri
                .container(
                    &a,
                    &a_cfg,
                    "web",
                    "echo hello-from-pod-a > /tmp/index.html; echo web-log-line; exec httpd -f -p 8080 -h /tmp",
                )
                .await;
            let side = cri.container(&a, &a_cfg, "side", "exec sleep 1000").await;
            // Two containers of one pod (and its sandbox) share one shim.
            assert_eq!(cd.shims(), 1, "shims after one pod");
            if handler == "berth" && installed.is_none() {
                // The runtime options' Root from containerd's config holds their state.
                let root = cd.dir.path().join("berth-root/k8s.io");
                for id in [&a, &web, &side] {
                    assert!(root.join(id).is_dir(), "no state of {id} in {}", root.display());
                }
            }
            // ...and its network namespace.
            let (code, out) = cri
                .exec(&side, "wget -q -O - http://127.0.0.1:8080/index.html")
                .await;
            assert_eq!((code, out.trim()), (0, "hello-from-pod-a"), "same-pod fetch");
            let (code, _) = cri.exec(&web, "exit 3").await;
            assert_eq!(code, 3, "ExecSync exit code");
            // UpdateContainerResources reaches the cgroup; ContainerStats reads it back.
            cri.rt
                .update_container_resources(UpdateContainerResourcesRequest {
                    container_id: side.clone(),
                    linux: Some(LinuxContainerResources {
                        memory_limit_in_bytes: 64 << 20,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}"));
            let (code, out) = cri
                .exec(&side, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
                .await;
            assert_eq!((code, out.trim()), (0, "67108864"), "memory limit after update");
            let stats = cri
                .rt
                .container_stats(ContainerStatsRequest {
                    container_id: side.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("ContainerStats: {e}"))
                .into_inner()
                .stats;
            let ws = stats
                .and_then(|s| s.memory)
                .and_then(|m| m.working_set_bytes)
                .map(|v| v.value)
                .unwrap_or(0);
            assert!(ws > 0, "ContainerStats memory working set {ws}");

            let b_cfg = pod_config("pod-b", &tag, &logs);
            let b = cri.pod(&b_cfg).await;
            let client_c = cri.container(&b, &b_cfg, "client", "exec sleep 1000").await;
            assert_eq!(cd.shims(), 2, "shims after two pods");
            let ip = cri
                .rt
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: a.clone(),
                    verbose: false,
                })
                .await
                .unwrap()
                .into_inner()
                .status
                .and_then(|s| s.network)
                .map(|n| n.ip)
                .unwrap_or_default();
            assert!(ip.starts_with("10.99.0."), "pod-a ip {ip:?}");
            let (code, out) = cri
                .exec(
                    &client_c,
                    &format!("wget -q -O - http://{ip}:8080/index.html"),
                )
                .await;
            assert_eq!((code, out.trim()), (0, "hello-from-pod-a"), "pod-to-pod fetch");

            // Streaming exec with stdin (the shim's stdin pipe), and port-forward into pod-a.
            let cd_pid: i32 = std::fs::read_to_string(cd.dir.path().join("containerd/containerd.pid"))
                .unwrap_or_default()
                .trim()
                .parse()
                .unwrap_or(0);
            let url = cri
                .rt
                .exec(ExecRequest {
                    container_id: side.clone(),
                    cmd: vec!["sh".into(), "-c".into(), "read x; echo got-$x".into()],
                    tty: false,
                    stdin: true,
                    stdout: true,
                    stderr: true,
                })
                .await
                .unwrap_or_else(|e| panic!("Exec: {e}"))
                .into_inner()
                .url;
            let frames = stream(cd_pid, &url, vec![(0, b"hello\n".to_vec())], None);
            assert!(channel(&frames, 1).contains("got-hello"), "exec stream: {frames:?}");
            let url = cri
                .rt
                .port_forward(PortForwardRequest {
                    pod_sandbox_id: a.clone(),
                    port: vec![8080],
                })
                .await
                .unwrap_or_else(|e| panic!("PortForward: {e}"))
                .into_inner()
                .url;
            let frames = stream(
                cd_pid,
                &format!("{url}?port=8080"),
                vec![(0, b"GET /index.html HTTP/1.0\r\n\r\n".to_vec())],
                None,
            );
            assert!(
                channel(&frames, 0).contains("hello-from-pod-a"),
                "port-forward stream: {frames:?}"
            );

            // Attach to a container's stdin and stdout (the shim's init stdin pipe).
            let echo = cri.container_stdin(&a, &a_cfg, "echo", "while read l; do echo echo-$l; done").await;
            let url = cri
                .rt
                .attach(AttachRequest {
                    container_id: echo.clone(),
                    stdin: true,
                    tty: false,
                    stdout: true,
                    stderr: true,
                })
                .await
                .unwrap_or_else(|e| panic!("Attach: {e}"))
                .into_inner()
                .url;
            let frames = stream(cd_pid, &url, vec![(0, b"ping\n".to_vec())], Some("echo-ping"));
            assert!(channel(&frames, 1).contains("echo-ping"), "attach stream: {frames:?}");

            // Container logs in the CRI format.
            let log_path = cri
                .rt
                .container_status(ContainerStatusRequest {
                    container_id: web.clone(),
                    verbose: false,
                })
                .await
                .unwrap()
                .into_inner()
                .status
                .map(|s| s.log_path)
                .unwrap_or_default();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            assert!(log.contains(" stdout F web-log-line"), "log {log_path}: {log:?}");

            cri.remove_pod(&a).await;
            cri.remove_pod(&b).await;
            let left = cri
                .rt
                .list_containers(ListContainersRequest { filter: None })
                .await
                .unwrap()
                .into_inner()
                .containers;
            assert!(left.is_empty(), "containers left: {left:?}");
            for _ in 0..50 {
                if cd.shims() == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(cd.shims(), 0, "shims left after removing the pods");
        })
    }));
    // Whatever a failure left: stop and remove every pod (its network namespace included).
    rt.block_on(async {
        let mut c = client(cd.socket()).await;
        if let Ok(r) = c
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await
        {
            for p in r.into_inner().items {
                let _ = c
                    .stop_pod_sandbox(StopPodSandboxRequest {
                        pod_sandbox_id: p.id.clone(),
                    })
                    .await;
                let _ = c
                    .remove_pod_sandbox(RemovePodSandboxRequest {
                        pod_sandbox_id: p.id,
                    })
                    .await;
            }
        }
    });
    let log = cd.log();
    drop(cd);
    let cgroups_left = remove_pod_cgroups(&tag);
    // The shim's state root for the namespace, when no other user has containers there.
    let _ = std::fs::remove_dir("/run/containerd/berth/k8s.io");
    if let Err(e) = result {
        eprintln!(
            "containerd log:\n{}",
            log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
        );
        std::panic::resume_unwind(e);
    }
    assert!(
        cgroups_left.is_empty(),
        "container cgroups left behind: {cgroups_left:?}"
    );
}

#[test]
fn cri_pods_on_berth() {
    scenario("berth", None);
}

#[test]
fn cri_pods_on_runc() {
    scenario("runc", None);
}

/// The handler a RuntimeClass manifest names (its top-level `handler:`), as the kubelet passes
/// it to the CRI.
fn runtime_class_handler(manifest: &Path) -> String {
    let text =
        std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    text.lines()
        .find_map(|l| l.strip_prefix("handler:"))
        .map(|h| h.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{}: no handler", manifest.display()))
}

#[test]
fn cri_pods_on_installed_berth() {
    let Some(prefix) = std::env::var_os("BERTH_INSTALLED_PREFIX").map(PathBuf::from) else {
        eprintln!("skipped: BERTH_INSTALLED_PREFIX is not set (hack/test-install.sh sets it)");
        return;
    };
    let handler = runtime_class_handler(&prefix.join("share/berth/kubernetes/runtimeclass.yaml"));
    scenario(&handler, Some(&prefix));
}
