//! Pod start latency through containerd's CRI, for hack/bench/cri.sh: for each pod,
//! RunPodSandbox + CreateContainer + StartContainer (busybox `sleep`) timed as one, with the
//! runtime handlers alternating pod by pod (the order swaps every round), then
//! StopPodSandbox + RemovePodSandbox (timed apart). The client is the CRI v1 one
//! shim/tests/cri.rs uses (k8s-cri over gRPC on containerd's unix socket).
//!
//! Usage: cri-pods --socket SOCK --pods N --cgroup-parent /NAME --logs DIR HANDLER...
//! Prints a markdown table: p50, p99 (nearest rank), mean, min and max per handler, and the
//! first handler's p50 and p99 over each handler's (below 1.00x: the first is faster). Exits non-zero, after removing every pod it
//! made, when any call fails or a container is left in the CRI's list.

use anyhow::{bail, Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use std::path::PathBuf;
use std::time::Instant;
use tonic::transport::{Channel, Endpoint, Uri};

struct Args {
    socket: PathBuf,
    pods: usize,
    cgroup_parent: String,
    logs: PathBuf,
    handlers: Vec<String>,
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let (mut socket, mut pods, mut parent, mut logs) = (None, 100, None, None);
    let mut handlers = Vec::new();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--socket" => socket = Some(PathBuf::from(val()?)),
            "--pods" => pods = val()?.parse().context("--pods")?,
            "--cgroup-parent" => parent = Some(val()?),
            "--logs" => logs = Some(PathBuf::from(val()?)),
            h if !h.starts_with('-') => handlers.push(h.to_string()),
            _ => bail!("unknown flag {a}"),
        }
    }
    if handlers.is_empty() {
        bail!("usage: cri-pods --socket SOCK --pods N --cgroup-parent /NAME --logs DIR HANDLER...");
    }
    Ok(Args {
        socket: socket.context("--socket is required")?,
        pods,
        cgroup_parent: parent.context("--cgroup-parent is required")?,
        logs: logs.context("--logs is required")?,
        handlers,
    })
}

async fn client(sock: PathBuf) -> Result<RuntimeServiceClient<Channel>> {
    let channel = Endpoint::try_from("http://[::]")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = sock.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
            }
        }))
        .await
        .context("connecting to containerd's CRI socket")?;
    Ok(RuntimeServiceClient::new(channel))
}

fn pod_config(a: &Args, name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}-{}", std::process::id()),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: a.logs.join(name).display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: a.cgroup_parent.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One pod: its start time (ms) and its stop+remove time (ms).
async fn pod(
    rt: &mut RuntimeServiceClient<Channel>,
    a: &Args,
    handler: &str,
    name: &str,
) -> Result<(f64, f64)> {
    let cfg = pod_config(a, name);
    let t0 = Instant::now();
    let id = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(cfg.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .with_context(|| format!("RunPodSandbox {name} ({handler})"))?
        .into_inner()
        .pod_sandbox_id;
    let started = async {
        let c = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: id.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: "main".into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: "localhost/busybox:latest".into(),
                        ..Default::default()
                    }),
                    command: vec!["sleep".into(), "3600".into()],
                    log_path: "main.log".into(),
                    ..Default::default()
                }),
                sandbox_config: Some(cfg.clone()),
            })
            .await
            .with_context(|| format!("CreateContainer in {name} ({handler})"))?
            .into_inner()
            .container_id;
        rt.start_container(StartContainerRequest { container_id: c })
            .await
            .with_context(|| format!("StartContainer in {name} ({handler})"))?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let start_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = Instant::now();
    let removed = remove(rt, &id).await;
    started?;
    removed?;
    Ok((start_ms, t1.elapsed().as_secs_f64() * 1e3))
}

async fn remove(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> Result<()> {
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .with_context(|| format!("StopPodSandbox {id}"))?;
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await
    .with_context(|| format!("RemovePodSandbox {id}"))?;
    Ok(())
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn bench(rt: &mut RuntimeServiceClient<Channel>, a: &Args) -> Result<()> {
    let mut start: Vec<Vec<f64>> = vec![Vec::new(); a.handlers.len()];
    let mut stop: Vec<Vec<f64>> = vec![Vec::new(); a.handlers.len()];
    // Two warm-up pods per handler (image snapshots, shim binary pages), not counted.
    for round in 0..a.pods + 2 {
        let mut order: Vec<usize> = (0..a.handlers.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let h = &a.handlers[i];
            let (s, r) = pod(rt, a, h, &format!("bench-{h}-{round}")).await?;
            if round >= 2 {
                start[i].push(s);
                stop[i].push(r);
            }
        }
    }
    let left = rt
        .list_containers(ListContainersRequest { filter: None })
        .await?
        .into_inner()
        .containers;
    if !left.is_empty() {
        bail!(
            "{} containers left in the CRI after removing every pod",
            left.len()
        );
    }
    println!(
        "{} pods per handler, alternating (order swapped every round); pod start = RunPodSandbox + CreateContainer + StartContainer, ms.",
        a.pods
    );
    println!();
    println!(
        "| handler | p50 | p99 | mean | min | max | {0} p50 / this | {0} p99 / this | stop+remove p50 |",
        a.handlers[0]
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut first = (0.0, 0.0);
    for (i, h) in a.handlers.iter().enumerate() {
        let mut v = start[i].clone();
        v.sort_by(f64::total_cmp);
        let mut r = stop[i].clone();
        r.sort_by(f64::total_cmp);
        let (p50, p99) = (pct(&v, 50.0), pct(&v, 99.0));
        if i == 0 {
            first = (p50, p99);
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "| {h} | {p50:.1} | {p99:.1} | {mean:.1} | {:.1} | {:.1} | {:.2}x | {:.2}x | {:.1} |",
            v[0],
            v[v.len() - 1],
            first.0 / p50,
            first.1 / p99,
            pct(&r, 50.0)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = args()?;
    if a.pods == 0 {
        bail!("--pods must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut c = client(a.socket.clone()).await?;
        let result = bench(&mut c, &a).await;
        // Whatever a failure left: stop and remove every pod.
        if let Ok(r) = c
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await
        {
            for p in r.into_inner().items {
                let _ = remove(&mut c, &p.id).await;
            }
        }
        result
    })
}
