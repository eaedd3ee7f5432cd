//! RUN: the step (arguments, environment, mounts, cache key) and the berth
//! container that executes it ([`spec`] builds its runtime config).

pub mod helper;
mod mounts;
pub mod spec;

pub use helper::{helper_main, run_in_helper, HELPER_ARG};
pub use spec::*;
use std::path::{Path, PathBuf};

use crate::build::{json_list, Builder, StageState, StepError, StepErrorKind};
use crate::dockerfile::{CommandLine, Instruction, NetworkMode, RunScript};
use crate::exec::run;
use crate::exec::{self, ExecError};
use crate::oci::types::to_json;
use crate::plan::StageScope;
use crate::secret::{SecretError, SecretFile};
use crate::ssh::AgentRelay;
use mounts::MountPlanKind;

impl<'a> Builder<'a> {
    pub(crate) fn run_step(
        &mut self,
        stage: usize,
        st: &mut StageState,
        scope: &StageScope<'a>,
        inst: &Instruction,
        r: &crate::dockerfile::Run,
    ) -> Result<bool, StepError> {
        let e = |k: StepErrorKind| self.err(inst, k);
        let insecure = matches!(r.security, Some(crate::dockerfile::SecurityMode::Insecure));
        if insecure && !self.req.allow_insecure {
            return Err(e(StepErrorKind::Invalid(
                "RUN --security=insecure is not allowed: pass --allow security.insecure to \
                 berth-build build"
                    .into(),
            )));
        }
        let host_network = matches!(r.network, Some(NetworkMode::Host));
        let shell = self.shell(st);
        let mut script_file: Option<(String, String)> = None;
        let args: Vec<String> = match r.script() {
            RunScript::Command(CommandLine::Exec(v)) => v,
            RunScript::Command(CommandLine::Shell(s)) | RunScript::Shell(s) => {
                let mut v = shell.clone();
                v.push(s);
                v
            }
            RunScript::File { name, content } => {
                let safe: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let dest = format!("/dev/pipes/{safe}");
                script_file = Some((safe, content));
                vec![dest]
            }
        };
        let mut env: Vec<String> = scope
            .run_env()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !env.iter().any(|kv| kv.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        let cwd = if st.config.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            st.config.config.working_dir.clone()
        };
        let user = st.config.config.user.clone();
        let mut mounts = Vec::new();
        let mut ssh_n = 0;
        for m in &r.mounts {
            let planned = if m.kind == crate::dockerfile::MountType::Ssh {
                ssh_n += 1;
                self.plan_ssh(scope, &cwd, m, ssh_n - 1)
            } else {
                self.plan_mount(stage, scope, &cwd, m)
            };
            match planned {
                Ok(p) => mounts.push(p),
                Err(k) => return Err(self.err(inst, k)),
            }
        }
        let mut material = format!(
            "RUN {}\nenv={}\nuser={user}\ncwd={cwd}\nnetwork={host_network}\ninsecure={insecure}\nscript={}",
            json_list(&args),
            json_list(&env),
            script_file.as_ref().map(|(_, c)| c.as_str()).unwrap_or("")
        );
        for m in &mounts {
            material.push_str(&format!("\nmount={}", m.material));
        }
        let created_by = match &r.command {
            CommandLine::Exec(v) => format!("RUN {}", json_list(v)),
            CommandLine::Shell(s) => format!("RUN {} {s}", shell.join(" ")),
        };
        let shown = args.join(" ");
        let step = self.step;
        self.fs_step(st, inst, material, created_by, move |b, root| {
            let passwd = exec::read_root_file(root, "/etc/passwd");
            let group = exec::read_root_file(root, "/etc/group");
            let resolved =
                crate::user::resolve_user(&user, &passwd, &group).map_err(ExecError::User)?;
            let merged = PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&root)
            ));
            let merged = std::fs::read_link(&merged).map_err(|e| ExecError::io("rootfs", e))?;
            let bundle = merged
                .parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| StepErrorKind::Invalid("bundle".into()))?;
            let mut binds = Vec::new();
            if let Some((name, content)) = &script_file {
                let p = bundle.join(format!("script-{name}"));
                std::fs::write(&p, content).map_err(|e| ExecError::io(p.display(), e))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| ExecError::io(p.display(), e))?;
                binds.push((p.display().to_string(), format!("/dev/pipes/{name}")));
            }
            if host_network {
                for f in ["/etc/resolv.conf", "/etc/hosts"] {
                    if Path::new(f).exists() {
                        binds.push((f.to_string(), f.to_string()));
                    }
                }
            }
            // Host sides of the mounts; they stay mounted until the
            // container is done (overlays drop before their scratch dirs).
            let mut scratches = Vec::new();
            let mut overlays = Vec::new();
            let mut run_mounts = Vec::new();
            // Secret files live until the container is done; their
            // environment variables are for this RUN only (not in the key).
            let mut secret_files = Vec::new();
            // Ssh relays serve until the container is done.
            let mut relays = Vec::new();
            let mut env = env.clone();
            // Cache mounts with sharing=locked|private: one RUN at a time.
            let locks = b
                .shared
                .cache_locks(mounts.iter().filter_map(|m| match &m.kind {
                    MountPlanKind::Cache {
                        id,
                        exclusive: true,
                        ..
                    } => Some(id.as_str()),
                    _ => None,
                }));
            let _held: Vec<_> = locks
                .iter()
                .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()))
                .collect();
            for m in &mounts {
                if let MountPlanKind::Ssh {
                    id,
                    agent,
                    mode,
                    uid,
                    gid,
                } = &m.kind
                {
                    let Some(agent) = agent else { continue };
                    let dir = b.store.scratch("ssh")?;
                    let sock = dir.path().join("agent.sock");
                    let relay = AgentRelay::start(id, agent, &sock, *mode, *uid, *gid)
                        .map_err(|x| StepErrorKind::Invalid(x.to_string()))?;
                    run_mounts.push(RunMount::Bind {
                        source: sock.display().to_string(),
                        destination: m.target.clone(),
                        read_only: false,
                    });
                    // The first agent is the one ssh clients use by default.
                    if !env.iter().any(|kv| kv.starts_with("SSH_AUTH_SOCK=")) {
                        env.push(format!("SSH_AUTH_SOCK={}", m.target));
                    }
                    relays.push((relay, dir));
                    continue;
                }
                if let MountPlanKind::Secret {
                    id,
                    source,
                    env: var,
                    file,
                    mode,
                    uid,
                    gid,
                } = &m.kind
                {
                    let Some(source) = source else { continue };
                    let content = source.read(id)?;
                    if let Some(var) = var {
                        let text = String::from_utf8(content.clone()).map_err(|_| {
                            SecretError::Unreadable {
                                id: id.clone(),
                                reason: format!("not valid UTF-8, cannot be put in ${var}"),
                            }
                        })?;
                        env.retain(|kv| kv.split_once('=').map(|(k, _)| k) != Some(var));
                        env.push(format!("{var}={text}"));
                    }
                    if *file {
                        let f = SecretFile::create(&content, *mode, *uid, *gid).map_err(|e| {
                            SecretError::Unreadable {
                                id: id.clone(),
                                reason: format!("cannot write its temporary file: {e}"),
                            }
                        })?;
                        run_mounts.push(RunMount::Bind {
                            source: f.path().display().to_string(),
                            destination: m.target.clone(),
                            read_only: true,
                        });
                        secret_files.push(f);
                    }
                    continue;
                }
                run_mounts.push(b.mount_source(m, &mut scratches, &mut overlays)?);
            }
            let pid = std::process::id();
            let settings = RunSettings {
                args: args.clone(),
                env,
                cwd: cwd.clone(),
                user: resolved,
                host_network,
                // No parent shared between steps: concurrent RUNs would
                // leave it behind (only its creator removes it, when empty).
                cgroups_path: format!("/berth-build-{pid}-step-{step}"),
                nofile: run::nofile_limit(),
                binds,
                mounts: run_mounts,
                insecure,
            };
            let spec = run::run_spec(&settings);
            let missing = exec::missing_paths(root, &run::mount_destinations(&spec));
            let cfg = bundle.join("config.json");
            std::fs::write(&cfg, to_json(&spec)).map_err(|e| ExecError::io(cfg.display(), e))?;
            let id = format!("berth-build-{pid}-{step}");
            let progress = b.progress;
            let code =
                run::run_in_helper(&bundle, &id, &b.store.run_dir(), &b.shared.cancel, |data| {
                    progress.output(step, data)
                })?;
            if code != 0 && b.canceled() {
                return Err(StepErrorKind::Canceled);
            }
            if code != 0 {
                return Err(StepErrorKind::RunFailed {
                    command: shown.clone(),
                    code,
                });
            }
            Ok(missing)
        })
    }
}
