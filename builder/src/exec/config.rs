//! Instructions that only change the image configuration (ENV, LABEL,
//! USER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD, SHELL,
//! MAINTAINER, CMD, ENTRYPOINT, ARG) and WORKDIR.

use crate::build::{json_list, Builder, StageState, StepError, StepErrorKind};
use crate::context::clean_path;
use crate::dockerfile::{parse_port, Command, CommandLine, Healthcheck, Instruction};
use crate::exec::{self, ExecError};
use crate::oci::types::{Empty, HealthConfig};
use crate::plan::StageScope;

impl<'a> Builder<'a> {
    /// Applies a configuration-only instruction to the stage's config
    /// (and its cache key and history). Never from the cache.
    pub(crate) fn config_instruction(
        &mut self,
        st: &mut StageState,
        scope: &mut StageScope<'a>,
        inst: &Instruction,
        cmd_set: &mut bool,
    ) -> Result<bool, StepError> {
        let e = |k: StepErrorKind| self.err(inst, k);
        match &inst.command {
            Command::Arg(decls) => {
                scope.declare_args(decls).map_err(|x| e(x.into()))?;
                Ok(false)
            }
            Command::Env(pairs) => {
                let expanded = scope.apply_env(pairs).map_err(|x| e(x.into()))?;
                let text = expanded
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                st.config.config.env = scope
                    .env()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                self.config_step(st, inst, &format!("ENV {text}"));
                Ok(false)
            }
            Command::Label(pairs) => {
                let expanded = scope.expand_pairs(pairs).map_err(|x| e(x.into()))?;
                let mut text = Vec::new();
                for (k, v) in expanded {
                    text.push(format!("{k}={v}"));
                    st.config.config.labels.insert(k, v);
                }
                self.config_step(st, inst, &format!("LABEL {}", text.join(" ")));
                Ok(false)
            }
            Command::User(u) => {
                let u = scope.expand(u).map_err(|x| e(x.into()))?;
                st.config.config.user = u.clone();
                self.config_step(st, inst, &format!("USER {u}"));
                Ok(false)
            }
            Command::Expose(words) => {
                let mut ports = Vec::new();
                for w in words {
                    for word in scope.expand_words(w).map_err(|x| e(x.into()))? {
                        let p = parse_port(&word).map_err(|m| e(StepErrorKind::Invalid(m)))?;
                        for port in p.start..=p.end {
                            let key = format!("{port}/{}", p.protocol.as_str());
                            st.config.config.exposed_ports.insert(key.clone(), Empty {});
                            ports.push(key);
                        }
                    }
                }
                self.config_step(st, inst, &format!("EXPOSE {}", ports.join(" ")));
                Ok(false)
            }
            Command::Volume(paths) => {
                let mut vols = Vec::new();
                for p in paths {
                    let v = scope.expand(p).map_err(|x| e(x.into()))?;
                    if v.is_empty() {
                        return Err(e(StepErrorKind::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        )));
                    }
                    st.config.config.volumes.insert(v.clone(), Empty {});
                    vols.push(v);
                }
                self.config_step(st, inst, &format!("VOLUME {}", json_list(&vols)));
                Ok(false)
            }
            Command::StopSignal(s) => {
                let s = scope.expand(s).map_err(|x| e(x.into()))?;
                st.config.config.stop_signal = s.clone();
                self.config_step(st, inst, &format!("STOPSIGNAL {s}"));
                Ok(false)
            }
            Command::Healthcheck(h) => {
                st.config.config.healthcheck = Some(match h {
                    Healthcheck::None => HealthConfig {
                        test: vec!["NONE".into()],
                        ..HealthConfig::default()
                    },
                    Healthcheck::Check(c) => {
                        let ns = |d: Option<std::time::Duration>| {
                            d.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                                .unwrap_or(0)
                        };
                        HealthConfig {
                            test: c.test.clone(),
                            interval: ns(c.interval),
                            timeout: ns(c.timeout),
                            start_period: ns(c.start_period),
                            start_interval: ns(c.start_interval),
                            retries: c.retries.unwrap_or(0),
                        }
                    }
                });
                self.config_step(st, inst, &inst.original);
                Ok(false)
            }
            Command::Onbuild(o) => {
                st.config.config.on_build.push(o.text.clone());
                self.config_step(st, inst, &inst.original);
                Ok(false)
            }
            Command::Shell(sh) => {
                st.config.config.shell = sh.clone();
                self.config_step(st, inst, &format!("SHELL {}", json_list(sh)));
                Ok(false)
            }
            Command::Maintainer(m) => {
                st.config.author = Some(m.clone());
                self.config_step(st, inst, &format!("MAINTAINER {m}"));
                Ok(false)
            }
            Command::Cmd(c) | Command::Entrypoint(c) => {
                let argv = match c {
                    CommandLine::Exec(v) => v.clone(),
                    CommandLine::Shell(s) => {
                        let mut v = self.shell(st);
                        v.push(s.clone());
                        v
                    }
                };
                let is_cmd = matches!(inst.command, Command::Cmd(_));
                if is_cmd {
                    st.config.config.cmd = Some(argv.clone());
                    *cmd_set = true;
                } else {
                    st.config.config.entrypoint = Some(argv.clone());
                    if !*cmd_set {
                        st.config.config.cmd = None;
                    }
                }
                let word = if is_cmd { "CMD" } else { "ENTRYPOINT" };
                self.config_step(st, inst, &format!("{word} {}", json_list(&argv)));
                Ok(false)
            }
            Command::From(_)
            | Command::Workdir(_)
            | Command::Run(_)
            | Command::Copy(_)
            | Command::Add(_) => Err(e(StepErrorKind::Invalid(format!(
                "{} is not a configuration instruction",
                inst.original
            )))),
        }
    }

    /// WORKDIR: sets the working directory and creates it in the snapshot.
    pub(crate) fn workdir_step(
        &mut self,
        st: &mut StageState,
        scope: &StageScope<'a>,
        inst: &Instruction,
        w: &str,
    ) -> Result<bool, StepError> {
        let e = |k: StepErrorKind| self.err(inst, k);
        let w = scope.expand(w).map_err(|x| e(x.into()))?;
        let base = if st.config.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            st.config.config.working_dir.clone()
        };
        let path = if w.starts_with('/') {
            clean_path(&w)
        } else {
            clean_path(&format!("{base}/{w}"))
        };
        st.config.config.working_dir = path.clone();
        let user = st.config.config.user.clone();
        let material = format!("WORKDIR {path}\nuser={user}");
        let created_by = format!("WORKDIR {path}");
        self.fs_step(st, inst, material, created_by, move |_, merged| {
            let owner = if user.is_empty() {
                (0, 0)
            } else {
                let passwd = exec::read_root_file(merged, "/etc/passwd");
                let group = exec::read_root_file(merged, "/etc/group");
                let u =
                    crate::user::resolve_user(&user, &passwd, &group).map_err(ExecError::User)?;
                (u.uid, u.gid)
            };
            exec::make_workdir(merged, &path, owner).map_err(StepErrorKind::from)?;
            Ok(Vec::new())
        })
    }
}
