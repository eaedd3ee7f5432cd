//! `berth-build`: the command-line front end (docker-build-like).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_build::build::{build, BuildRequest, Output};
use berth_build::layer::Compression;
use berth_build::oci::normalize_tag;
use berth_build::progress::{stderr_is_tty, ProgressMode};
use berth_build::secret::parse_secret_flag;
use berth_build::store::Store;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth-build",
    version,
    about = "Build OCI images from Dockerfiles"
)]
struct Cli {
    /// Content store and cache directory.
    #[arg(long, global = true, default_value = "/var/lib/berth-build")]
    root: PathBuf,
    /// Log debug information to stderr (or set RUST_LOG).
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build an image from a Dockerfile.
    Build(BuildArgs),
    /// List the images in the store.
    Images,
    /// Unpack an image into a runtime bundle (DEST/rootfs + DEST/config.json).
    Unpack {
        /// oci:DIR[:tag], oci-archive:FILE[:tag], or a name in the store.
        image: String,
        /// Bundle directory to create.
        dest: PathBuf,
    },
    /// Remove unreferenced blobs, unpacked layers and stale build cache
    /// entries from the store, and report the bytes freed.
    Prune {
        /// Also remove the whole build cache (cache entries and
        /// RUN --mount=type=cache directories): only tagged images stay.
        #[arg(short, long)]
        all: bool,
    },
    /// Remove images from the store.
    Rm {
        /// Image names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(clap::Args)]
struct BuildArgs {
    /// Dockerfile path (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Name the image (name[:tag]); may be repeated.
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Set a build argument (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Build this stage.
    #[arg(long)]
    target: Option<String>,
    /// Do not use the build cache.
    #[arg(long)]
    no_cache: bool,
    /// Also write the image: type=oci,dest=DIR or type=oci-archive,dest=FILE.
    #[arg(short = 'o', long = "output")]
    outputs: Vec<String>,
    /// Expose a secret to RUN --mount=type=secret: id=ID,src=PATH,
    /// id=ID,env=VAR, or id=ID (environment variable ID); may be repeated.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Progress output: plain (default), tty (redraw the current step's
    /// line), auto (tty when stderr is a terminal, else plain) or quiet.
    #[arg(long, default_value = "plain")]
    progress: String,
    /// Layer compression: gzip (default), zstd or none.
    #[arg(long, default_value = "gzip")]
    compression: String,
    /// Only print the image digest.
    #[arg(short, long)]
    quiet: bool,
    /// The build context directory.
    context: PathBuf,
}

fn parse_output(s: &str) -> Result<Output> {
    let mut kind = None;
    let mut dest = None;
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(PathBuf::from(v)),
            _ => {
                bail!("invalid --output {s:?}: use type=oci,dest=DIR or type=oci-archive,dest=FILE")
            }
        }
    }
    let Some(dest) = dest else {
        bail!("--output {s:?} needs dest=PATH");
    };
    match kind.as_deref() {
        Some("oci") => Ok(Output::Oci(dest)),
        Some("oci-archive") | Some("tar") => Ok(Output::OciArchive(dest)),
        other => bail!("unsupported --output type {other:?}: use oci or oci-archive"),
    }
}

fn run_build(root: &std::path::Path, a: BuildArgs) -> Result<()> {
    let mut build_args = BTreeMap::new();
    for kv in &a.build_args {
        match kv.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            None => match std::env::var(kv) {
                Ok(v) => build_args.insert(kv.clone(), v),
                Err(_) => None,
            },
        };
    }
    let tags = a
        .tags
        .iter()
        .map(|t| normalize_tag(t).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let outputs = a
        .outputs
        .iter()
        .map(|o| parse_output(o))
        .collect::<Result<Vec<_>>>()?;
    let compression = match a.compression.as_str() {
        "gzip" => Compression::Gzip,
        "none" | "uncompressed" => Compression::None,
        "zstd" => Compression::Zstd,
        other => bail!("unsupported --compression {other:?}: use gzip, zstd or none"),
    };
    let progress = match a.progress.as_str() {
        "plain" => ProgressMode::Plain,
        "tty" => ProgressMode::Tty,
        "auto" if stderr_is_tty() => ProgressMode::Tty,
        "auto" => ProgressMode::Plain,
        "quiet" => ProgressMode::Quiet,
        other => bail!("unsupported --progress {other:?}: use auto, plain, tty or quiet"),
    };
    let progress = if a.quiet {
        ProgressMode::Quiet
    } else {
        progress
    };
    let mut secrets = BTreeMap::new();
    for spec in &a.secrets {
        let (id, source) = parse_secret_flag(spec, |v| std::env::var_os(v).is_some())?;
        secrets.insert(id, source);
    }
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Some(
            v.trim()
                .parse::<i64>()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?,
        ),
        _ => None,
    };
    let dockerfile = a
        .file
        .clone()
        .unwrap_or_else(|| a.context.join("Dockerfile"));
    let req = BuildRequest {
        context: a.context.clone(),
        dockerfile,
        tags,
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        outputs,
        compression,
        source_date_epoch,
        progress,
        secrets,
    };
    let store = Store::open(root)?;
    let out = build(&store, &req)?;
    println!("{}", out.manifest.digest);
    Ok(())
}

fn unpack(store: &Store, image: &str, dest: &std::path::Path) -> Result<()> {
    use berth_build::oci::{self, ImageSource, Layout};
    let cwd = std::env::current_dir()?;
    let tmp;
    let (layout, resolved) = match ImageSource::parse(image, &cwd) {
        ImageSource::Layout(dir, tag) => {
            let l = Layout::open(&dir)?;
            let r = l.resolve(tag.as_deref())?;
            (l, r)
        }
        ImageSource::Archive(file, tag) => {
            tmp = store.scratch("unpack-archive")?;
            let l = oci::open_archive(&file, tmp.path())?;
            let r = l.resolve(tag.as_deref())?;
            (l, r)
        }
        ImageSource::Stored(name) => {
            let img = store.find(&name)?;
            let l = store.layout().clone();
            let r = l.resolve_descriptor(img.manifest, 0)?;
            (l, r)
        }
    };
    if dest.exists() && std::fs::read_dir(dest)?.next().is_some() {
        bail!("{} exists and is not empty", dest.display());
    }
    oci::unpack(&layout, &resolved, &dest.join("rootfs"))?;
    let spec = oci::bundle_config(&resolved.config);
    std::fs::write(dest.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;
    println!("{}", dest.display());
    Ok(())
}

/// `1536` -> `1.5 KiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let filter = if cli.debug {
        tracing_subscriber::EnvFilter::new("debug")
    } else {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Cmd::Build(a) => run_build(&cli.root, a),
        Cmd::Images => {
            let store = Store::open(&cli.root)?;
            println!("{:<40} {:<20} {:>12}", "NAME", "DIGEST", "SIZE");
            for img in store.images()? {
                let size: u64 = store
                    .layout()
                    .manifest(&img.manifest.digest)
                    .map(|m| m.layers.iter().map(|l| l.size).sum::<u64>() + m.config.size)
                    .unwrap_or(0);
                let short = &img.manifest.digest.hex()[..12];
                println!("{:<40} sha256:{:<13} {:>12}", img.name, short, size);
            }
            Ok(())
        }
        Cmd::Unpack { image, dest } => {
            let store = Store::open(&cli.root)?;
            unpack(&store, &image, &dest)
        }
        Cmd::Prune { all } => {
            let store = Store::open(&cli.root)?;
            let _lock = store.lock()?;
            let r = store.prune(all)?;
            println!(
                "Removed {} blobs, {} cache entries, {} unpacked layers, {} cache mounts",
                r.blobs, r.cache_entries, r.layer_dirs, r.cache_mounts
            );
            println!(
                "Total reclaimed space: {} ({} bytes)",
                human_size(r.freed_bytes),
                r.freed_bytes
            );
            Ok(())
        }
        Cmd::Rm { names } => {
            let store = Store::open(&cli.root)?;
            let _lock = store.lock()?;
            for n in names {
                let d = store.remove(&n)?;
                println!("Untagged: {n} ({})", d.digest);
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
