//! `berth-build`: the command-line front end (docker-build-like).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_build::build::{build, BuildRequest};
use berth_build::cache_io;
use berth_build::images;
use berth_build::layer::Compression;
use berth_build::oci::normalize_tag;
use berth_build::output;
use berth_build::plan::{NamedContext, Platform};
use berth_build::progress::{stderr_is_tty, ProgressMode};
use berth_build::registry::{
    self, PullOptions, PullPolicy, PushOptions, Reference, RegistryOptions,
};
use berth_build::secret::parse_secret_flag;
use berth_build::ssh::parse_ssh_flag;
use berth_build::store::Store;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth-build",
    // "berth-build 0.1.0 (commit C)": the commit from build.rs (hack/commit.rs).
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("BERTH_COMMIT"), ")"),
    about = "Build OCI images from Dockerfiles"
)]
pub(crate) struct Cli {
    /// Content store and cache directory (default /var/lib/berth-build; rootless:
    /// $XDG_DATA_HOME/berth-build).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Log debug information to stderr (or set RUST_LOG).
    #[arg(long, global = true)]
    debug: bool,
    /// A registry (host[:port]) that may be reached over plain HTTP; may be
    /// repeated (localhost and 127.0.0.1 always may).
    #[arg(long = "insecure-registry", global = true)]
    insecure_registries: Vec<String>,
    /// certs.d root with HOST[:PORT]/ca.crt files (default:
    /// $BERTH_CERTS_D, else /etc/containers/certs.d and /etc/docker/certs.d).
    #[arg(long = "certs-dir", global = true)]
    certs_dirs: Vec<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build an image from a Dockerfile.
    Build(Box<BuildArgs>),
    /// List the images in the store.
    Images,
    /// Unpack an image into a runtime bundle (DEST/rootfs + DEST/config.json).
    Unpack {
        /// Mount DEST/rootfs as an overlay over the store's unpacked layers
        /// instead of copying (remove it with `berth-build unmount DEST`).
        #[arg(long)]
        overlay: bool,
        /// oci:DIR[:tag], oci-archive:FILE[:tag], or a name in the store.
        image: String,
        /// Bundle directory to create.
        dest: PathBuf,
    },
    /// Remove a bundle made by `unpack` (unmounting an overlay rootfs).
    Unmount {
        /// The bundle directory.
        dest: PathBuf,
    },
    /// Pull an image from a registry into the store.
    Pull {
        /// Image reference (`busybox`, `host:port/repo:tag`, `repo@sha256:...`).
        image: String,
        /// Platform to pick from a multi-arch image (os/arch[/variant]).
        #[arg(long)]
        platform: Option<String>,
        /// Layers downloaded at the same time.
        #[arg(long, default_value_t = registry::pull::DEFAULT_JOBS)]
        jobs: usize,
        /// Progress output: auto (default), plain, tty or quiet.
        #[arg(long, default_value = "auto")]
        progress: String,
        /// Only print the manifest digest.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Push a stored image to a registry.
    Push {
        /// The image in the store.
        name: String,
        /// Destination reference (default: NAME).
        dest: Option<String>,
        /// Blobs larger than this many bytes are uploaded in chunks of
        /// this size; 0 uploads every blob in one request.
        #[arg(long, default_value_t = 32 << 20)]
        chunk_size: u64,
        /// Blobs uploaded at the same time.
        #[arg(long, default_value_t = 3)]
        jobs: usize,
        /// Progress output: auto (default), plain, tty or quiet.
        #[arg(long, default_value = "auto")]
        progress: String,
        /// Only print the manifest digest.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Give a stored image another name.
    Tag {
        /// The image.
        src: String,
        /// The new name (name[:tag]).
        dest: String,
    },
    /// Print an image's manifest and configuration as JSON.
    Inspect {
        /// The image.
        name: String,
    },
    /// Write stored images to an archive.
    Save {
        /// The archive file.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// oci-archive (default) or docker-archive.
        #[arg(long, default_value = "oci-archive")]
        format: String,
        /// The images.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Load the images of an OCI or Docker archive into the store.
    Load {
        /// The archive file.
        #[arg(short = 'i', long = "input")]
        input: PathBuf,
    },
    /// Store credentials for a registry (checked against it first).
    Login {
        /// The registry (host[:port]).
        registry: String,
        /// User name.
        #[arg(short, long)]
        username: Option<String>,
        /// Password (prefer --password-stdin).
        #[arg(short, long)]
        password: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove stored credentials for a registry.
    Logout {
        /// The registry (host[:port]).
        registry: String,
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
    /// Also write the image or its files (buildx's exporters):
    /// type=oci,dest=DIR[,tar=true], type=oci-archive,dest=FILE,
    /// type=docker,dest=FILE, type=local,dest=DIR (or just DIR),
    /// type=tar,dest=FILE, type=image,name=N[,push=true],
    /// type=registry,name=N; may be repeated.
    #[arg(short = 'o', long = "output")]
    outputs: Vec<String>,
    /// Set a label on the image (KEY=VALUE; over the Dockerfile's LABEL).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Annotate the image: [manifest|manifest-descriptor:]KEY=VALUE.
    #[arg(long = "annotation")]
    annotations: Vec<String>,
    /// Write the image id (the config digest) to this file.
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Write build result metadata (digests, descriptor, names) as JSON
    /// to this file, with buildx's keys.
    #[arg(long)]
    metadata_file: Option<PathBuf>,
    /// Expose a secret to RUN --mount=type=secret: id=ID,src=PATH,
    /// id=ID,env=VAR, or id=ID (environment variable ID); may be repeated.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Forward an ssh agent to RUN --mount=type=ssh: ID (the agent at
    /// $SSH_AUTH_SOCK, e.g. `default`) or ID=SOCKET; may be repeated.
    #[arg(long = "ssh")]
    ssh: Vec<String>,
    /// Attach an SLSA provenance attestation to the OCI outputs (in an
    /// image index, as BuildKit): true (mode=min), mode=max or false
    /// (default).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    provenance: Option<String>,
    /// SBOM attestations: only false is supported.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    sbom: Option<String>,
    /// Export the build cache: type=local,dest=DIR[,mode=min|max]
    /// (BuildKit's local cache layout); may be repeated.
    #[arg(long = "cache-to")]
    cache_to: Vec<String>,
    /// Import a build cache first: type=local,src=DIR; may be repeated.
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// A named context: NAME=DIR, NAME=docker-image://REF or
    /// NAME=oci-layout://DIR[:TAG]; replaces stage or image NAME in FROM
    /// (images only), COPY --from and RUN --mount from=.
    #[arg(long = "build-context")]
    build_contexts: Vec<String>,
    /// Allow an entitlement: `security.insecure` (RUN --security=insecure:
    /// all capabilities, nothing masked) or `network.host` (always allowed).
    #[arg(long = "allow")]
    allow: Vec<String>,
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
    /// When FROM pulls from a registry: missing (default), always or never.
    #[arg(long, default_value = "missing", num_args = 0..=1, default_missing_value = "always")]
    pull: String,
    /// Push the image to the registry of each -t name after the build.
    #[arg(long)]
    push: bool,
    /// Stages built at the same time (0: every stage whose dependencies
    /// are built; 1: one stage after the other).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Target platform (os/arch[/variant]; default: this machine's): sets
    /// TARGETPLATFORM and picks FROM images' index entries.
    #[arg(long)]
    platform: Option<String>,
    /// The build context directory.
    context: PathBuf,
}

fn registry_options(cli: &Cli) -> RegistryOptions {
    let mut o = RegistryOptions {
        insecure: cli.insecure_registries.clone(),
        ..RegistryOptions::default()
    };
    if !cli.certs_dirs.is_empty() {
        o.certs_dirs = cli.certs_dirs.clone();
    }
    o
}

fn progress_mode(s: &str, quiet: bool) -> Result<ProgressMode> {
    if quiet {
        return Ok(ProgressMode::Quiet);
    }
    Ok(match s {
        "plain" => ProgressMode::Plain,
        "tty" => ProgressMode::Tty,
        "auto" if stderr_is_tty() => ProgressMode::Tty,
        "auto" => ProgressMode::Plain,
        "quiet" => ProgressMode::Quiet,
        other => bail!("unsupported --progress {other:?}: use auto, plain, tty or quiet"),
    })
}

fn run_build(root: &std::path::Path, reg: RegistryOptions, a: BuildArgs) -> Result<()> {
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
    let mut names: Vec<String> = a.tags.clone();
    let mut outputs = Vec::new();
    let mut push = a.push;
    for o in &a.outputs {
        let spec = output::parse_output(o).map_err(anyhow::Error::msg)?;
        names.extend(spec.names);
        push |= spec.push;
        outputs.extend(spec.output);
    }
    if outputs
        .iter()
        .filter(|o| output::writes_stdout(std::slice::from_ref(*o)))
        .count()
        > 1
    {
        bail!("only one --output can go to stdout (dest=-)");
    }
    let mut tags = Vec::new();
    for t in &names {
        let t = normalize_tag(t).map_err(anyhow::Error::msg)?;
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = output::parse_label(l).map_err(anyhow::Error::msg)?;
        labels.insert(k, v);
    }
    let mut annotations = Vec::new();
    for s in &a.annotations {
        annotations.extend(output::parse_annotation(s).map_err(anyhow::Error::msg)?);
    }
    let compression = match a.compression.as_str() {
        "gzip" => Compression::Gzip,
        "none" | "uncompressed" => Compression::None,
        "zstd" => Compression::Zstd,
        other => bail!("unsupported --compression {other:?}: use gzip, zstd or none"),
    };
    let progress = progress_mode(&a.progress, a.quiet)?;
    let mut secrets = BTreeMap::new();
    for spec in &a.secrets {
        let (id, source) = parse_secret_flag(spec, |v| std::env::var_os(v).is_some())?;
        secrets.insert(id, source);
    }
    let mut ssh = BTreeMap::new();
    let env_sock = std::env::var("SSH_AUTH_SOCK").ok();
    for spec in &a.ssh {
        let (id, path) = parse_ssh_flag(spec, env_sock.as_deref())?;
        ssh.insert(id, path);
    }
    let provenance = match &a.provenance {
        Some(p) => berth_build::attest::parse_provenance(p).map_err(anyhow::Error::msg)?,
        None => None,
    };
    if !matches!(a.sbom.as_deref(), None | Some("false") | Some("0")) {
        bail!("--sbom is not supported by berth-build yet (no SBOM scanner): use --sbom=false");
    }
    if provenance.is_some() && push {
        bail!(
            "--provenance is attached to type=oci and oci-archive outputs; pushing it to a registry \
             is not supported yet (use --provenance=false with --push)"
        );
    }
    let cache_to = a
        .cache_to
        .iter()
        .map(|s| cache_io::parse_cache_to(s))
        .collect::<Result<Vec<_>, _>>()?;
    let cache_from = a
        .cache_from
        .iter()
        .map(|s| cache_io::parse_cache_from(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut named_contexts = BTreeMap::new();
    for spec in &a.build_contexts {
        let (name, ctx) = NamedContext::parse(spec).map_err(anyhow::Error::msg)?;
        named_contexts.insert(name, ctx);
    }
    let mut allow_insecure = false;
    for a in a.allow.iter().flat_map(|v| v.split(',')) {
        match a {
            "security.insecure" => allow_insecure = true,
            "network.host" => {}
            other => bail!("unknown --allow {other:?}: use security.insecure or network.host"),
        }
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
        labels,
        annotations,
        compression,
        source_date_epoch,
        progress,
        secrets,
        ssh,
        provenance,
        cache_from,
        cache_to,
        named_contexts,
        allow_insecure,
        pull: PullPolicy::parse(&a.pull).map_err(anyhow::Error::msg)?,
        registry: reg.clone(),
        jobs: a.jobs,
        platform: match &a.platform {
            Some(p) => Platform::parse(p)?,
            None => Platform::host(),
        },
    };
    if push && req.tags.is_empty() {
        bail!("--push needs at least one -t NAME to push to");
    }
    let store = Store::open(root)?;
    let out = build(&store, &req)?;
    if let Some(f) = &a.iidfile {
        std::fs::write(f, out.config.to_string())
            .with_context(|| format!("--iidfile {}", f.display()))?;
    }
    if let Some(f) = &a.metadata_file {
        let v = output::metadata_json(&out.manifest, &out.config, &req.tags);
        let text = serde_json::to_string_pretty(&v).context("metadata")?;
        std::fs::write(f, text).with_context(|| format!("--metadata-file {}", f.display()))?;
    }
    if push {
        let _lock = store.lock()?;
        let opts = PushOptions {
            progress: if a.quiet {
                ProgressMode::Quiet
            } else {
                ProgressMode::Plain
            },
            ..PushOptions::default()
        };
        for t in &req.tags {
            let dest = Reference::parse(t).map_err(anyhow::Error::msg)?;
            let p = registry::push(&store, &out.manifest, &dest, &reg, &opts)?;
            if !a.quiet {
                eprintln!(
                    "pushed {dest} ({} uploaded, {} mounted, {} already there)",
                    p.uploaded, p.mounted, p.existing
                );
            }
        }
    }
    // An archive on stdout (-o -) is all stdout carries, as with buildx.
    if !output::writes_stdout(&req.outputs) {
        println!("{}", out.manifest.digest);
    }
    Ok(())
}

fn run_pull(
    store: &Store,
    reg: &RegistryOptions,
    image: &str,
    platform: Option<&str>,
    jobs: usize,
    progress: ProgressMode,
) -> Result<()> {
    let reference = Reference::parse(image).map_err(anyhow::Error::msg)?;
    let platform = match platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let _lock = store.lock()?;
    let opts = PullOptions {
        platform,
        jobs,
        progress,
    };
    let p = registry::pull(store, &reference, reg, &opts)?;
    if progress != ProgressMode::Quiet {
        eprintln!(
            "pulled {} ({} blobs, {} fetched)",
            p.name,
            p.fetched,
            berth_build::registry::progress::human(p.bytes)
        );
    }
    println!("{}", p.descriptor.digest);
    Ok(())
}

fn run_login(
    reg: &RegistryOptions,
    registry: &str,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<()> {
    use std::io::BufRead;
    let Some(username) = username else {
        bail!("login needs --username");
    };
    let password = match (password, password_stdin) {
        (Some(_), true) => bail!("give --password or --password-stdin, not both"),
        (Some(p), false) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("login needs --password or --password-stdin"),
    };
    let reference = Reference::parse(&format!("{registry}/login-check"))
        .map_err(|_| anyhow::anyhow!("invalid registry name {registry:?}"))?;
    let mut client = registry::Client::new(&reference, reg)?;
    let creds = registry::auth::Credentials { username, password };
    client.set_credentials(creds.clone());
    client.check_login()?;
    let Some(file) = reg.auth_files.first().cloned() else {
        bail!("no auth file: set REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR or HOME");
    };
    let place = registry::auth::store(&file, &reference.registry, &creds)?;
    println!("Login Succeeded ({place})");
    Ok(())
}

fn unpack(store: &Store, image: &str, dest: &std::path::Path, overlay: bool) -> Result<()> {
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
    let existed = dest.exists();
    if existed && std::fs::read_dir(dest)?.next().is_some() {
        bail!("{} exists and is not empty", dest.display());
    }
    if overlay && !matches!(ImageSource::parse(image, &cwd), ImageSource::Stored(_)) {
        bail!("--overlay needs an image in the store (load or pull it first)");
    }
    let made = (|| -> Result<()> {
        if overlay {
            berth_build::images::unpack_overlay(store, &resolved, dest)?;
        } else {
            oci::unpack(&layout, &resolved, &dest.join("rootfs"))?;
        }
        let spec = oci::bundle_config(&resolved.config);
        std::fs::write(dest.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;
        Ok(())
    })();
    if let Err(e) = made {
        // A bad layer leaves no half-unpacked bundle (remove_dir_all never follows symlinks).
        if existed {
            for entry in std::fs::read_dir(dest).into_iter().flatten().flatten() {
                let p = entry.path();
                let _ = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        } else {
            let _ = std::fs::remove_dir_all(dest);
        }
        return Err(e);
    }
    println!("{}", dest.display());
    Ok(())
}

fn real_main() -> Result<()> {
    // Before any thread exists: an unprivileged caller builds in a user namespace of its own.
    // The store path is taken first, from the caller's environment.
    let mut cli = Cli::parse();
    let root = cli
        .root
        .take()
        .unwrap_or_else(berth_build::rootless::default_store);
    berth_build::rootless::enter()?;
    let root_dir = root;
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
    let reg = registry_options(&cli);
    match cli.command {
        Cmd::Build(a) => run_build(&root_dir, reg, *a),
        Cmd::Images => {
            let store = Store::open(&root_dir)?;
            println!(
                "{:<48} {:<20} {:<21} {:>10}",
                "NAME", "DIGEST", "CREATED", "SIZE"
            );
            for img in store.images()? {
                let (size, created) = images::summary(&store, &img);
                let short = &img.manifest.digest.hex()[..12];
                let created = created
                    .map(|c| c.chars().take(19).collect::<String>().replace('T', " "))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<48} sha256:{:<13} {:<21} {:>10}",
                    img.name,
                    short,
                    created,
                    berth_build::registry::progress::human(size)
                );
            }
            Ok(())
        }
        Cmd::Unpack {
            image,
            dest,
            overlay,
        } => {
            let store = Store::open(&root_dir)?;
            unpack(&store, &image, &dest, overlay)
        }
        Cmd::Unmount { dest } => {
            let store = Store::open(&root_dir)?;
            images::remove_bundle(&store, &dest)?;
            Ok(())
        }
        Cmd::Pull {
            image,
            platform,
            jobs,
            progress,
            quiet,
        } => {
            let store = Store::open(&root_dir)?;
            let mode = progress_mode(&progress, quiet)?;
            run_pull(&store, &reg, &image, platform.as_deref(), jobs, mode)
        }
        Cmd::Push {
            name,
            dest,
            chunk_size,
            jobs,
            progress,
            quiet,
        } => {
            let store = Store::open(&root_dir)?;
            let _lock = store.lock()?;
            let img = store.find(&name)?;
            let dest =
                Reference::parse(dest.as_deref().unwrap_or(&name)).map_err(anyhow::Error::msg)?;
            let opts = PushOptions {
                chunk_size,
                jobs,
                progress: progress_mode(&progress, quiet)?,
            };
            let p = registry::push(&store, &img.manifest, &dest, &reg, &opts)?;
            if !quiet {
                eprintln!(
                    "pushed {dest} ({} uploaded, {} mounted, {} already there)",
                    p.uploaded, p.mounted, p.existing
                );
            }
            if let Some(d) = p.digest {
                println!("{d}");
            }
            Ok(())
        }
        Cmd::Tag { src, dest } => {
            let store = Store::open(&root_dir)?;
            let _lock = store.lock()?;
            let name = images::tag(&store, &src, &dest)?;
            println!("{name}");
            Ok(())
        }
        Cmd::Inspect { name } => {
            let store = Store::open(&root_dir)?;
            let v = images::inspect(&store, &name)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Cmd::Save {
            output,
            format,
            names,
        } => {
            let store = Store::open(&root_dir)?;
            let format = images::ArchiveFormat::parse(&format).map_err(anyhow::Error::msg)?;
            images::save(&store, &names, &output, format)?;
            Ok(())
        }
        Cmd::Load { input } => {
            let store = Store::open(&root_dir)?;
            let _lock = store.lock()?;
            for n in images::load(&store, &input)? {
                println!("Loaded image: {n}");
            }
            Ok(())
        }
        Cmd::Login {
            registry,
            username,
            password,
            password_stdin,
        } => run_login(&reg, &registry, username, password, password_stdin),
        Cmd::Logout { registry } => {
            let changed = registry::auth::remove_in(&reg.auth_files, &registry)?;
            if changed.is_empty() {
                bail!("not logged in to {registry}");
            }
            println!("Removed login credentials for {registry}");
            Ok(())
        }
        Cmd::Prune { all } => {
            let store = Store::open(&root_dir)?;
            let _lock = store.lock()?;
            let r = store.prune(all)?;
            println!(
                "Removed {} blobs, {} cache entries, {} unpacked layers, {} cache mounts",
                r.blobs, r.cache_entries, r.layer_dirs, r.cache_mounts
            );
            println!(
                "Total reclaimed space: {} ({} bytes)",
                berth_build::registry::progress::human(r.freed_bytes),
                r.freed_bytes
            );
            Ok(())
        }
        Cmd::Rm { names } => {
            let store = Store::open(&root_dir)?;
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
    // The helper process that runs one RUN container (see exec::run).
    if std::env::args_os().nth(1).as_deref() == Some(berth_build::exec::run::HELPER_ARG.as_ref()) {
        return berth_build::exec::run::helper_main();
    }
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
