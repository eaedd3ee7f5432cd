//! The state directory `<root>/<id>/`: the persisted [`State`], the exec socket whose presence
//! means "created, not started", and a per-container flock.

use super::Error;
use crate::cgroups::Placement;
use crate::sys::{process_start_time, process_state, write_atomic, AtomicFile};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Container status as the OCI state reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being set up.
    Creating,
    /// Set up; the user program has not been started.
    Created,
    /// The user program runs.
    Running,
    /// The cgroup is frozen.
    Paused,
    /// The container's process has exited.
    Stopped,
}

impl Status {
    /// Lower-case name, as in runc's output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What berth remembers about a container between commands (`state.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// Container id.
    pub id: String,
    /// Host PID of the container's init.
    pub pid: i32,
    /// Start time of that PID (clock ticks), to detect PID reuse.
    pub pid_start: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Owner (user name of the creator, empty for root as runc prints).
    pub owner: String,
    /// The container's cgroups.
    pub cgroup: Placement,
    /// Whether the container has its own PID namespace (then killing init ends everything).
    pub pid_ns_private: bool,
    /// The spec the container was created from (hooks, process defaults for exec).
    pub spec: oci_spec::runtime::Spec,
    /// The systemd unit holding the container's cgroup (`--systemd-cgroup`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<crate::cgroups::systemd::SystemdUnit>,
    /// No mount namespace: the id of the rootfs bind below which the init mounted in the
    /// runtime's mount namespace (rootfs/host.rs), detached on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mount: Option<u64>,
}

/// The runtime-spec state document, shaped like runc's `state` output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OciState {
    /// Spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Init PID, 0 once stopped.
    pub pid: i32,
    /// Status.
    pub status: Status,
    /// Bundle path.
    pub bundle: PathBuf,
    /// Rootfs path.
    pub rootfs: PathBuf,
    /// Creation time.
    pub created: String,
    /// Annotations from config.json.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// Owner.
    pub owner: String,
}

impl State {
    /// The status now: from the init's liveness, the exec socket and the freezer.
    pub fn status(&self, dir: &Path) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        // A created container can be paused too (runc allows it); it reports paused then.
        if crate::cgroups::placement::is_frozen(&self.cgroup) {
            return Status::Paused;
        }
        if dir.join("exec.sock").exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// Whether the init process still exists (not a zombie, not a reused PID).
    pub fn alive(&self) -> bool {
        self.pid > 0
            && process_start_time(self.pid) == Some(self.pid_start)
            && process_state(self.pid) != Some('Z')
    }

    /// The OCI state document for `status` (pid 0 when stopped, as runc reports).
    pub fn oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.spec.version().clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: self.spec.annotations().clone().unwrap_or_default(),
            owner: self.owner.clone(),
        }
    }
}

/// A container's state directory, locked for the lifetime of this value.
pub struct ContainerDir {
    /// `<root>/<id>`.
    pub path: PathBuf,
    _lock: Option<Flock<File>>,
}

/// The extended attribute of a state directory that holds its cgroups intent record.
const INTENT_XATTR: &str = "user.berth.intent";

impl ContainerDir {
    /// Creates `<root>/<id>` (failing with "already exists" if present) and locks it.
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir, Error> {
        let path = root.join(id);
        use std::os::unix::fs::DirBuilderExt;
        let mkdir = || std::fs::DirBuilder::new().mode(0o700).create(&path);
        // The root usually exists: make it only when the container's directory cannot be made.
        let made = match mkdir() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(root)
                    .map_err(|e| Error::io(format!("create state root {}", root.display()), e))?;
                mkdir()
            }
            other => other,
        };
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(Error::Exists),
            Err(e) => return Err(Error::io(format!("create {}", path.display()), e)),
        }
        Self::lock(path)
    }

    /// Opens and locks the existing directory of `id`.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir, Error> {
        let path = root.join(id);
        if !path.is_dir() {
            return Err(Error::NotExist(id.to_string()));
        }
        Self::lock(path)
    }

    /// Opens the directory of `id` without locking, for read-only use (`state`, `list`):
    /// state.json is replaced atomically, so a reader never sees a torn file.
    pub fn peek(root: &Path, id: &str) -> Result<ContainerDir, Error> {
        let path = root.join(id);
        if !path.join("state.json").is_file() {
            return Err(Error::NotExist(id.to_string()));
        }
        Ok(ContainerDir { path, _lock: None })
    }

    fn lock(path: PathBuf) -> Result<ContainerDir, Error> {
        let f = File::open(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io(format!("lock {}", path.display()), e))?;
        Ok(ContainerDir {
            path,
            _lock: Some(lock),
        })
    }

    /// The descriptor holding the lock, for a forked child to close: the lock belongs to the
    /// open file, so a child that kept it would hold the container locked after this process
    /// died (a `delete --force` would wait forever).
    pub fn lock_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self._lock.as_ref().map(|l| l.as_raw_fd())
    }

    /// The socket the init waits on until `start`.
    pub fn exec_socket(&self) -> PathBuf {
        self.path.join("exec.sock")
    }

    /// Reads state.json.
    pub fn load(&self) -> Result<State, Error> {
        let f = self.path.join("state.json");
        let text = std::fs::read(&f).map_err(|e| Error::io(format!("read {}", f.display()), e))?;
        serde_json::from_slice(&text)
            .map_err(|e| Error::io(format!("parse {}", f.display()), std::io::Error::other(e)))
    }

    /// Records the cgroup directories `create` is about to make, before it makes them, so a
    /// create killed before state.json exists can still be cleaned up ([`super::delete_incomplete`]).
    ///
    /// The record is an extended attribute of the state directory (`user.berth.intent`): on
    /// this project's ext4 every new inode costs about 0.4 ms, an xattr 5 us. Where the
    /// directory takes no user xattrs (older tmpfs) it is the file `cgroups.intent`.
    pub fn save_intent(&self, cgroups: &[std::path::PathBuf]) -> Result<(), Error> {
        let text = serde_json::to_vec(cgroups)
            .map_err(|e| Error::io("serialize intent", std::io::Error::other(e)))?;
        if let Some(fd) = self.lock_fd() {
            if crate::sys::fsetxattr(fd, INTENT_XATTR, &text).is_ok() {
                return Ok(());
            }
        }
        let f = self.path.join("cgroups.intent");
        // Written once into the fresh directory, in one write(2): no temporary and rename.
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&f)
            .and_then(|mut file| file.write_all(&text))
            .map_err(|e| Error::io(format!("write {}", f.display()), e))
    }

    /// The intent record, if `create` wrote one.
    pub fn load_intent(&self) -> Vec<std::path::PathBuf> {
        let text = self
            .lock_fd()
            .and_then(|fd| crate::sys::fgetxattr(fd, INTENT_XATTR).ok())
            .or_else(|| std::fs::read(self.path.join("cgroups.intent")).ok());
        text.and_then(|t| serde_json::from_slice(&t).ok())
            .unwrap_or_default()
    }

    /// Whether state.json has been written.
    pub fn has_state(&self) -> bool {
        self.path.join("state.json").exists()
    }

    /// Writes state.json atomically.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        self.save_prepared(None, state)
    }

    /// Makes state.json's file ahead of [`ContainerDir::save_prepared`] (see
    /// [`crate::sys::AtomicFile`]); `None` if that fails, and the save makes it then.
    pub fn prepare_save(&self) -> Option<AtomicFile> {
        AtomicFile::create(&self.path.join("state.json")).ok()
    }

    /// Writes state.json atomically, into the file `prepared` made earlier if there is one.
    pub fn save_prepared(&self, prepared: Option<AtomicFile>, state: &State) -> Result<(), Error> {
        let f = self.path.join("state.json");
        let text = serde_json::to_vec(state)
            .map_err(|e| Error::io("serialize state", std::io::Error::other(e)))?;
        match prepared {
            Some(p) => p.commit(&text),
            None => write_atomic(&f, &text),
        }
        .map_err(|e| Error::io(format!("write {}", f.display()), e))
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<(), Error> {
        // The files berth puts there by name, then the directory; anything else (a temporary
        // left by a killed writer) makes the rmdir fail and the whole tree is removed instead.
        for name in ["state.json", "cgroups.intent", "exec.sock"] {
            let _ = std::fs::remove_file(self.path.join(name));
        }
        if std::fs::remove_dir(&self.path).is_ok() {
            return Ok(());
        }
        std::fs::remove_dir_all(&self.path)
            .map_err(|e| Error::io(format!("remove {}", self.path.display()), e))
    }
}
