//! The protobuf messages the shim speaks, written by hand as `prost` structs (no protoc, no
//! generated code): ttrpc's envelope, containerd's task API v2, its events and the cgroup
//! metric types `ctr task metrics` and the CRI decode. Field numbers follow containerd's .proto
//! files (runtime/v2/task/shim_messages.proto, api/events/task.proto, containerd/cgroups stats).

use prost::Message;

/// google.protobuf.Any.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    /// Type URL (containerd uses bare names such as `containerd.events.TaskExit`).
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// Encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

impl Any {
    /// Wraps a message under `type_url`.
    pub fn pack(type_url: &str, m: &impl Message) -> Any {
        Any {
            type_url: type_url.to_string(),
            value: m.encode_to_vec(),
        }
    }
}

/// google.protobuf.Timestamp.
#[derive(Clone, Copy, PartialEq, Message)]
pub struct Timestamp {
    /// Seconds since the epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }
}

/// google.rpc.Status, as ttrpc carries errors.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    /// gRPC code (see [`Code`]).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Human-readable message; reaches `ctr` verbatim.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Unused details.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// gRPC status codes the shim returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Anything else (berth's own errors).
    Unknown = 2,
    /// Malformed request.
    InvalidArgument = 3,
    /// No such container or process.
    NotFound = 5,
    /// The id is taken.
    AlreadyExists = 6,
    /// Not allowed in the current state.
    FailedPrecondition = 9,
    /// Not supported by this shim.
    Unimplemented = 12,
}

/// A ttrpc metadata pair.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    /// Key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// ttrpc request envelope.
#[derive(Clone, PartialEq, Message)]
pub struct Request {
    /// Service, e.g. `containerd.task.v2.Task`.
    #[prost(string, tag = "1")]
    pub service: String,
    /// Method, e.g. `Create`.
    #[prost(string, tag = "2")]
    pub method: String,
    /// The encoded request message.
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    /// Deadline in nanoseconds (0: none).
    #[prost(int64, tag = "4")]
    pub timeout_nano: i64,
    /// Metadata.
    #[prost(message, repeated, tag = "5")]
    pub metadata: Vec<KeyValue>,
}

/// ttrpc response envelope.
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    /// Error status (absent or code 0: success).
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    /// The encoded response message.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

/// containerd.types.Mount.
#[derive(Clone, PartialEq, Message)]
pub struct Mount {
    /// Filesystem type (`overlay`, `bind`, ...).
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// Source.
    #[prost(string, tag = "2")]
    pub source: String,
    /// Target inside the rootfs (containerd 1.7+; empty means the rootfs itself).
    #[prost(string, tag = "3")]
    pub target: String,
    /// mount(8)-style options.
    #[prost(string, repeated, tag = "4")]
    pub options: Vec<String>,
}

/// containerd.v1.types.Status values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Created, not started.
    Created = 1,
    /// Running.
    Running = 2,
    /// Exited.
    Stopped = 3,
    /// Frozen.
    Paused = 4,
}

/// CreateTaskRequest.
#[derive(Clone, PartialEq, Message)]
pub struct CreateTaskRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub bundle: String,
    #[prost(message, repeated, tag = "3")]
    pub rootfs: Vec<Mount>,
    #[prost(bool, tag = "4")]
    pub terminal: bool,
    #[prost(string, tag = "5")]
    pub stdin: String,
    #[prost(string, tag = "6")]
    pub stdout: String,
    #[prost(string, tag = "7")]
    pub stderr: String,
    #[prost(string, tag = "8")]
    pub checkpoint: String,
    #[prost(string, tag = "9")]
    pub parent_checkpoint: String,
    #[prost(message, optional, tag = "10")]
    pub options: Option<Any>,
}

/// CreateTaskResponse.
#[derive(Clone, PartialEq, Message)]
pub struct CreateTaskResponse {
    #[prost(uint32, tag = "1")]
    pub pid: u32,
}

/// Requests that name a container and optionally one of its exec processes
/// (StateRequest, DeleteRequest, StartRequest, WaitRequest).
#[derive(Clone, PartialEq, Message)]
pub struct ProcRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
}

/// Requests that name only a container (PidsRequest, PauseRequest, ResumeRequest,
/// StatsRequest, ConnectRequest).
#[derive(Clone, PartialEq, Message)]
pub struct IdRequest {
    #[prost(string, tag = "1")]
    pub id: String,
}

/// DeleteResponse.
#[derive(Clone, PartialEq, Message)]
pub struct DeleteResponse {
    #[prost(uint32, tag = "1")]
    pub pid: u32,
    #[prost(uint32, tag = "2")]
    pub exit_status: u32,
    #[prost(message, optional, tag = "3")]
    pub exited_at: Option<Timestamp>,
}

/// ExecProcessRequest.
#[derive(Clone, PartialEq, Message)]
pub struct ExecProcessRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
    #[prost(bool, tag = "3")]
    pub terminal: bool,
    #[prost(string, tag = "4")]
    pub stdin: String,
    #[prost(string, tag = "5")]
    pub stdout: String,
    #[prost(string, tag = "6")]
    pub stderr: String,
    #[prost(message, optional, tag = "7")]
    pub spec: Option<Any>,
}

/// ResizePtyRequest.
#[derive(Clone, PartialEq, Message)]
pub struct ResizePtyRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
    #[prost(uint32, tag = "3")]
    pub width: u32,
    #[prost(uint32, tag = "4")]
    pub height: u32,
}

/// StateResponse.
#[derive(Clone, PartialEq, Message)]
pub struct StateResponse {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub bundle: String,
    #[prost(uint32, tag = "3")]
    pub pid: u32,
    #[prost(int32, tag = "4")]
    pub status: i32,
    #[prost(string, tag = "5")]
    pub stdin: String,
    #[prost(string, tag = "6")]
    pub stdout: String,
    #[prost(string, tag = "7")]
    pub stderr: String,
    #[prost(bool, tag = "8")]
    pub terminal: bool,
    #[prost(uint32, tag = "9")]
    pub exit_status: u32,
    #[prost(message, optional, tag = "10")]
    pub exited_at: Option<Timestamp>,
    #[prost(string, tag = "11")]
    pub exec_id: String,
}

/// KillRequest.
#[derive(Clone, PartialEq, Message)]
pub struct KillRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
    #[prost(uint32, tag = "3")]
    pub signal: u32,
    #[prost(bool, tag = "4")]
    pub all: bool,
}

/// CloseIORequest.
#[derive(Clone, PartialEq, Message)]
pub struct CloseIoRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
    #[prost(bool, tag = "3")]
    pub stdin: bool,
}

/// containerd.v1.types.ProcessInfo.
#[derive(Clone, PartialEq, Message)]
pub struct ProcessInfo {
    #[prost(uint32, tag = "1")]
    pub pid: u32,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Any>,
}

/// containerd.runc.v1.ProcessDetails (the info of an exec process in PidsResponse).
#[derive(Clone, PartialEq, Message)]
pub struct ProcessDetails {
    #[prost(string, tag = "1")]
    pub exec_id: String,
}

/// PidsResponse.
#[derive(Clone, PartialEq, Message)]
pub struct PidsResponse {
    #[prost(message, repeated, tag = "1")]
    pub processes: Vec<ProcessInfo>,
}

/// CheckpointTaskRequest (refused).
#[derive(Clone, PartialEq, Message)]
pub struct CheckpointTaskRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub path: String,
}

/// UpdateTaskRequest.
#[derive(Clone, PartialEq, Message)]
pub struct UpdateTaskRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub resources: Option<Any>,
}

/// StartResponse and the pid-only responses.
#[derive(Clone, PartialEq, Message)]
pub struct PidResponse {
    #[prost(uint32, tag = "1")]
    pub pid: u32,
}

/// WaitResponse.
#[derive(Clone, PartialEq, Message)]
pub struct WaitResponse {
    #[prost(uint32, tag = "1")]
    pub exit_status: u32,
    #[prost(message, optional, tag = "2")]
    pub exited_at: Option<Timestamp>,
}

/// StatsResponse.
#[derive(Clone, PartialEq, Message)]
pub struct StatsResponse {
    #[prost(message, optional, tag = "1")]
    pub stats: Option<Any>,
}

/// ConnectResponse.
#[derive(Clone, PartialEq, Message)]
pub struct ConnectResponse {
    #[prost(uint32, tag = "1")]
    pub shim_pid: u32,
    #[prost(uint32, tag = "2")]
    pub task_pid: u32,
    #[prost(string, tag = "3")]
    pub version: String,
}

/// ShutdownRequest.
#[derive(Clone, PartialEq, Message)]
pub struct ShutdownRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(bool, tag = "2")]
    pub now: bool,
}

/// The events envelope forwarded to containerd.
#[derive(Clone, PartialEq, Message)]
pub struct Envelope {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub topic: String,
    #[prost(message, optional, tag = "4")]
    pub event: Option<Any>,
}

/// containerd.services.events.ttrpc.v1.ForwardRequest.
#[derive(Clone, PartialEq, Message)]
pub struct ForwardRequest {
    #[prost(message, optional, tag = "1")]
    pub envelope: Option<Envelope>,
}

/// TaskIO (inside TaskCreate).
#[derive(Clone, PartialEq, Message)]
pub struct TaskIo {
    #[prost(string, tag = "1")]
    pub stdin: String,
    #[prost(string, tag = "2")]
    pub stdout: String,
    #[prost(string, tag = "3")]
    pub stderr: String,
    #[prost(bool, tag = "4")]
    pub terminal: bool,
}

/// TaskCreate event.
#[derive(Clone, PartialEq, Message)]
pub struct TaskCreate {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(string, tag = "2")]
    pub bundle: String,
    #[prost(message, repeated, tag = "3")]
    pub rootfs: Vec<Mount>,
    #[prost(message, optional, tag = "4")]
    pub io: Option<TaskIo>,
    #[prost(string, tag = "5")]
    pub checkpoint: String,
    #[prost(uint32, tag = "6")]
    pub pid: u32,
}

/// TaskStart event.
#[derive(Clone, PartialEq, Message)]
pub struct TaskStart {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(uint32, tag = "2")]
    pub pid: u32,
}

/// TaskDelete event.
#[derive(Clone, PartialEq, Message)]
pub struct TaskDelete {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(uint32, tag = "2")]
    pub pid: u32,
    #[prost(uint32, tag = "3")]
    pub exit_status: u32,
    #[prost(message, optional, tag = "4")]
    pub exited_at: Option<Timestamp>,
    #[prost(string, tag = "5")]
    pub id: String,
}

/// TaskExit event.
#[derive(Clone, PartialEq, Message)]
pub struct TaskExit {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(uint32, tag = "3")]
    pub pid: u32,
    #[prost(uint32, tag = "4")]
    pub exit_status: u32,
    #[prost(message, optional, tag = "5")]
    pub exited_at: Option<Timestamp>,
}

/// TaskOOM, TaskPaused and TaskResumed events (only the container id).
#[derive(Clone, PartialEq, Message)]
pub struct ContainerEvent {
    #[prost(string, tag = "1")]
    pub container_id: String,
}

/// TaskExecAdded and TaskExecStarted events.
#[derive(Clone, PartialEq, Message)]
pub struct TaskExec {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(string, tag = "2")]
    pub exec_id: String,
    #[prost(uint32, tag = "3")]
    pub pid: u32,
}

/// io.containerd.cgroups.v1 metrics.
pub mod v1 {
    use prost::Message;

    /// Metrics.
    #[derive(Clone, PartialEq, Message)]
    pub struct Metrics {
        #[prost(message, optional, tag = "2")]
        pub pids: Option<PidsStat>,
        #[prost(message, optional, tag = "3")]
        pub cpu: Option<CpuStat>,
        #[prost(message, optional, tag = "4")]
        pub memory: Option<MemoryStat>,
        #[prost(message, optional, tag = "9")]
        pub memory_oom_control: Option<MemoryOomControl>,
    }

    /// PidsStat.
    #[derive(Clone, PartialEq, Message)]
    pub struct PidsStat {
        #[prost(uint64, tag = "1")]
        pub current: u64,
        #[prost(uint64, tag = "2")]
        pub limit: u64,
    }

    /// CPUStat.
    #[derive(Clone, PartialEq, Message)]
    pub struct CpuStat {
        #[prost(message, optional, tag = "1")]
        pub usage: Option<CpuUsage>,
        #[prost(message, optional, tag = "2")]
        pub throttling: Option<Throttle>,
    }

    /// CPUUsage (nanoseconds).
    #[derive(Clone, PartialEq, Message)]
    pub struct CpuUsage {
        #[prost(uint64, tag = "1")]
        pub total: u64,
        #[prost(uint64, tag = "2")]
        pub kernel: u64,
        #[prost(uint64, tag = "3")]
        pub user: u64,
        #[prost(uint64, repeated, tag = "4")]
        pub per_cpu: Vec<u64>,
    }

    /// Throttle.
    #[derive(Clone, PartialEq, Message)]
    pub struct Throttle {
        #[prost(uint64, tag = "1")]
        pub periods: u64,
        #[prost(uint64, tag = "2")]
        pub throttled_periods: u64,
        #[prost(uint64, tag = "3")]
        pub throttled_time: u64,
    }

    /// MemoryStat (the memory.stat keys plus the usage entries).
    #[derive(Clone, PartialEq, Message)]
    pub struct MemoryStat {
        #[prost(uint64, tag = "1")]
        pub cache: u64,
        #[prost(uint64, tag = "2")]
        pub rss: u64,
        #[prost(uint64, tag = "3")]
        pub rss_huge: u64,
        #[prost(uint64, tag = "4")]
        pub mapped_file: u64,
        #[prost(uint64, tag = "5")]
        pub dirty: u64,
        #[prost(uint64, tag = "6")]
        pub writeback: u64,
        #[prost(uint64, tag = "7")]
        pub pg_pg_in: u64,
        #[prost(uint64, tag = "8")]
        pub pg_pg_out: u64,
        #[prost(uint64, tag = "9")]
        pub pg_fault: u64,
        #[prost(uint64, tag = "10")]
        pub pg_maj_fault: u64,
        #[prost(uint64, tag = "11")]
        pub inactive_anon: u64,
        #[prost(uint64, tag = "12")]
        pub active_anon: u64,
        #[prost(uint64, tag = "13")]
        pub inactive_file: u64,
        #[prost(uint64, tag = "14")]
        pub active_file: u64,
        #[prost(uint64, tag = "15")]
        pub unevictable: u64,
        #[prost(uint64, tag = "16")]
        pub hierarchical_memory_limit: u64,
        #[prost(uint64, tag = "17")]
        pub hierarchical_swap_limit: u64,
        #[prost(uint64, tag = "18")]
        pub total_cache: u64,
        #[prost(uint64, tag = "19")]
        pub total_rss: u64,
        #[prost(uint64, tag = "26")]
        pub total_pg_fault: u64,
        #[prost(uint64, tag = "27")]
        pub total_pg_maj_fault: u64,
        #[prost(message, optional, tag = "33")]
        pub usage: Option<MemoryEntry>,
        #[prost(message, optional, tag = "34")]
        pub swap: Option<MemoryEntry>,
        #[prost(message, optional, tag = "35")]
        pub kernel: Option<MemoryEntry>,
        #[prost(message, optional, tag = "36")]
        pub kernel_tcp: Option<MemoryEntry>,
    }

    /// MemoryEntry.
    #[derive(Clone, PartialEq, Message)]
    pub struct MemoryEntry {
        #[prost(uint64, tag = "1")]
        pub limit: u64,
        #[prost(uint64, tag = "2")]
        pub usage: u64,
        #[prost(uint64, tag = "3")]
        pub max: u64,
        #[prost(uint64, tag = "4")]
        pub failcnt: u64,
    }

    /// MemoryOomControl.
    #[derive(Clone, PartialEq, Message)]
    pub struct MemoryOomControl {
        #[prost(uint64, tag = "1")]
        pub oom_kill_disable: u64,
        #[prost(uint64, tag = "2")]
        pub under_oom: u64,
        #[prost(uint64, tag = "3")]
        pub oom_kill: u64,
    }
}

/// io.containerd.cgroups.v2 metrics.
pub mod v2 {
    use prost::Message;

    /// Metrics.
    #[derive(Clone, PartialEq, Message)]
    pub struct Metrics {
        #[prost(message, optional, tag = "1")]
        pub pids: Option<super::v1::PidsStat>,
        #[prost(message, optional, tag = "2")]
        pub cpu: Option<CpuStat>,
        #[prost(message, optional, tag = "4")]
        pub memory: Option<MemoryStat>,
        #[prost(message, optional, tag = "8")]
        pub memory_events: Option<MemoryEvents>,
    }

    /// CPUStat (microseconds).
    #[derive(Clone, PartialEq, Message)]
    pub struct CpuStat {
        #[prost(uint64, tag = "1")]
        pub usage_usec: u64,
        #[prost(uint64, tag = "2")]
        pub user_usec: u64,
        #[prost(uint64, tag = "3")]
        pub system_usec: u64,
        #[prost(uint64, tag = "4")]
        pub nr_periods: u64,
        #[prost(uint64, tag = "5")]
        pub nr_throttled: u64,
        #[prost(uint64, tag = "6")]
        pub throttled_usec: u64,
    }

    /// MemoryStat (a subset of memory.stat plus usage and limits).
    #[derive(Clone, PartialEq, Message)]
    pub struct MemoryStat {
        #[prost(uint64, tag = "1")]
        pub anon: u64,
        #[prost(uint64, tag = "2")]
        pub file: u64,
        #[prost(uint64, tag = "3")]
        pub kernel_stack: u64,
        #[prost(uint64, tag = "4")]
        pub slab: u64,
        #[prost(uint64, tag = "5")]
        pub sock: u64,
        #[prost(uint64, tag = "6")]
        pub shmem: u64,
        #[prost(uint64, tag = "7")]
        pub file_mapped: u64,
        #[prost(uint64, tag = "18")]
        pub pgfault: u64,
        #[prost(uint64, tag = "19")]
        pub pgmajfault: u64,
        #[prost(uint64, tag = "32")]
        pub usage: u64,
        #[prost(uint64, tag = "33")]
        pub usage_limit: u64,
        #[prost(uint64, tag = "34")]
        pub swap_usage: u64,
        #[prost(uint64, tag = "35")]
        pub swap_limit: u64,
        #[prost(uint64, tag = "36")]
        pub max_usage: u64,
    }

    /// MemoryEvents.
    #[derive(Clone, PartialEq, Message)]
    pub struct MemoryEvents {
        #[prost(uint64, tag = "1")]
        pub low: u64,
        #[prost(uint64, tag = "2")]
        pub high: u64,
        #[prost(uint64, tag = "3")]
        pub max: u64,
        #[prost(uint64, tag = "4")]
        pub oom: u64,
        #[prost(uint64, tag = "5")]
        pub oom_kill: u64,
    }
}
