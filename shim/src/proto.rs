//! The protobuf messages the shim speaks, written by hand as `prost` structs (no protoc, no
//! generated code): ttrpc's envelope, containerd's task API v2, its events and the cgroup
//! metric types `ctr task metrics` and the CRI decode. Field numbers follow containerd's .proto
//! files (runtime/v2/task/shim_messages.proto, api/events/task.proto, containerd/cgroups stats).

use prost::Message;

/// A protobuf message as a `prost` struct: `field: Type = TAG (prost kind),` per field (the
/// kind as prost's attribute spells it: `string`, `message, optional`, `uint64, repeated`,
/// ...). Every message derives Clone, PartialEq and prost's Message; more derives go on top.
macro_rules! message {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $($(#[$fattr:meta])* $field:ident: $ty:ty = $tag:literal ($($kind:tt)*),)*
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone, PartialEq, Message)]
        pub struct $name {
            $($(#[$fattr])* #[prost($($kind)*, tag = $tag)] pub $field: $ty,)*
        }
    };
}

message! {
    /// google.protobuf.Any.
    pub struct Any {
        /// Type URL (containerd uses bare names such as `containerd.events.TaskExit`).
        type_url: String = 1 (string),
        /// Encoded message.
        value: Vec<u8> = 2 (bytes = "vec"),
    }
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

message! {
    /// google.protobuf.Timestamp.
    #[derive(Copy)]
    pub struct Timestamp {
        /// Seconds since the epoch.
        seconds: i64 = 1 (int64),
        /// Nanoseconds within the second.
        nanos: i32 = 2 (int32),
    }
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

message! {
    /// google.rpc.Status, as ttrpc carries errors.
    pub struct Status {
        /// gRPC code (see [`Code`]).
        code: i32 = 1 (int32),
        /// Human-readable message; reaches `ctr` verbatim.
        message: String = 2 (string),
        /// Unused details.
        details: Vec<Any> = 3 (message, repeated),
    }
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

message! {
    /// A ttrpc metadata pair.
    pub struct KeyValue {
        /// Key.
        key: String = 1 (string),
        /// Value.
        value: String = 2 (string),
    }
}

message! {
    /// ttrpc request envelope.
    pub struct Request {
        /// Service, e.g. `containerd.task.v2.Task`.
        service: String = 1 (string),
        /// Method, e.g. `Create`.
        method: String = 2 (string),
        /// The encoded request message.
        payload: Vec<u8> = 3 (bytes = "vec"),
        /// Deadline in nanoseconds (0: none).
        timeout_nano: i64 = 4 (int64),
        /// Metadata.
        metadata: Vec<KeyValue> = 5 (message, repeated),
    }
}

message! {
    /// ttrpc response envelope.
    pub struct Response {
        /// Error status (absent or code 0: success).
        status: Option<Status> = 1 (message, optional),
        /// The encoded response message.
        payload: Vec<u8> = 2 (bytes = "vec"),
    }
}

message! {
    /// containerd.types.Mount.
    pub struct Mount {
        /// Filesystem type (`overlay`, `bind`, ...).
        r#type: String = 1 (string),
        /// Source.
        source: String = 2 (string),
        /// Target inside the rootfs (containerd 1.7+; empty means the rootfs itself).
        target: String = 3 (string),
        /// mount(8)-style options.
        options: Vec<String> = 4 (string, repeated),
    }
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

message! {
    /// CreateTaskRequest.
    pub struct CreateTaskRequest {
        id: String = 1 (string),
        bundle: String = 2 (string),
        rootfs: Vec<Mount> = 3 (message, repeated),
        terminal: bool = 4 (bool),
        stdin: String = 5 (string),
        stdout: String = 6 (string),
        stderr: String = 7 (string),
        checkpoint: String = 8 (string),
        parent_checkpoint: String = 9 (string),
        options: Option<Any> = 10 (message, optional),
    }
}

message! {
    /// CreateTaskResponse.
    pub struct CreateTaskResponse {
        pid: u32 = 1 (uint32),
    }
}

message! {
    /// Requests that name a container and optionally one of its exec processes
    /// (StateRequest, DeleteRequest, StartRequest, WaitRequest).
    pub struct ProcRequest {
        id: String = 1 (string),
        exec_id: String = 2 (string),
    }
}

message! {
    /// Requests that name only a container (PidsRequest, PauseRequest, ResumeRequest,
    /// StatsRequest, ConnectRequest).
    pub struct IdRequest {
        id: String = 1 (string),
    }
}

message! {
    /// DeleteResponse.
    pub struct DeleteResponse {
        pid: u32 = 1 (uint32),
        exit_status: u32 = 2 (uint32),
        exited_at: Option<Timestamp> = 3 (message, optional),
    }
}

message! {
    /// ExecProcessRequest.
    pub struct ExecProcessRequest {
        id: String = 1 (string),
        exec_id: String = 2 (string),
        terminal: bool = 3 (bool),
        stdin: String = 4 (string),
        stdout: String = 5 (string),
        stderr: String = 6 (string),
        spec: Option<Any> = 7 (message, optional),
    }
}

message! {
    /// ResizePtyRequest.
    pub struct ResizePtyRequest {
        id: String = 1 (string),
        exec_id: String = 2 (string),
        width: u32 = 3 (uint32),
        height: u32 = 4 (uint32),
    }
}

message! {
    /// StateResponse.
    pub struct StateResponse {
        id: String = 1 (string),
        bundle: String = 2 (string),
        pid: u32 = 3 (uint32),
        status: i32 = 4 (int32),
        stdin: String = 5 (string),
        stdout: String = 6 (string),
        stderr: String = 7 (string),
        terminal: bool = 8 (bool),
        exit_status: u32 = 9 (uint32),
        exited_at: Option<Timestamp> = 10 (message, optional),
        exec_id: String = 11 (string),
    }
}

message! {
    /// KillRequest.
    pub struct KillRequest {
        id: String = 1 (string),
        exec_id: String = 2 (string),
        signal: u32 = 3 (uint32),
        all: bool = 4 (bool),
    }
}

message! {
    /// CloseIORequest.
    pub struct CloseIoRequest {
        id: String = 1 (string),
        exec_id: String = 2 (string),
        stdin: bool = 3 (bool),
    }
}

message! {
    /// containerd.v1.types.ProcessInfo.
    pub struct ProcessInfo {
        pid: u32 = 1 (uint32),
        info: Option<Any> = 2 (message, optional),
    }
}

message! {
    /// containerd.runc.v1.ProcessDetails (the info of an exec process in PidsResponse).
    pub struct ProcessDetails {
        exec_id: String = 1 (string),
    }
}

message! {
    /// PidsResponse.
    pub struct PidsResponse {
        processes: Vec<ProcessInfo> = 1 (message, repeated),
    }
}

message! {
    /// CheckpointTaskRequest (refused).
    pub struct CheckpointTaskRequest {
        id: String = 1 (string),
        path: String = 2 (string),
    }
}

message! {
    /// UpdateTaskRequest.
    pub struct UpdateTaskRequest {
        id: String = 1 (string),
        resources: Option<Any> = 2 (message, optional),
    }
}

message! {
    /// StartResponse and the pid-only responses.
    pub struct PidResponse {
        pid: u32 = 1 (uint32),
    }
}

message! {
    /// WaitResponse.
    pub struct WaitResponse {
        exit_status: u32 = 1 (uint32),
        exited_at: Option<Timestamp> = 2 (message, optional),
    }
}

message! {
    /// StatsResponse.
    pub struct StatsResponse {
        stats: Option<Any> = 1 (message, optional),
    }
}

message! {
    /// ConnectResponse.
    pub struct ConnectResponse {
        shim_pid: u32 = 1 (uint32),
        task_pid: u32 = 2 (uint32),
        version: String = 3 (string),
    }
}

message! {
    /// ShutdownRequest.
    pub struct ShutdownRequest {
        id: String = 1 (string),
        now: bool = 2 (bool),
    }
}

message! {
    /// The events envelope forwarded to containerd.
    pub struct Envelope {
        timestamp: Option<Timestamp> = 1 (message, optional),
        namespace: String = 2 (string),
        topic: String = 3 (string),
        event: Option<Any> = 4 (message, optional),
    }
}

message! {
    /// containerd.services.events.ttrpc.v1.ForwardRequest.
    pub struct ForwardRequest {
        envelope: Option<Envelope> = 1 (message, optional),
    }
}

message! {
    /// TaskIO (inside TaskCreate).
    pub struct TaskIo {
        stdin: String = 1 (string),
        stdout: String = 2 (string),
        stderr: String = 3 (string),
        terminal: bool = 4 (bool),
    }
}

message! {
    /// TaskCreate event.
    pub struct TaskCreate {
        container_id: String = 1 (string),
        bundle: String = 2 (string),
        rootfs: Vec<Mount> = 3 (message, repeated),
        io: Option<TaskIo> = 4 (message, optional),
        checkpoint: String = 5 (string),
        pid: u32 = 6 (uint32),
    }
}

message! {
    /// TaskStart event.
    pub struct TaskStart {
        container_id: String = 1 (string),
        pid: u32 = 2 (uint32),
    }
}

message! {
    /// TaskDelete event.
    pub struct TaskDelete {
        container_id: String = 1 (string),
        pid: u32 = 2 (uint32),
        exit_status: u32 = 3 (uint32),
        exited_at: Option<Timestamp> = 4 (message, optional),
        id: String = 5 (string),
    }
}

message! {
    /// TaskExit event.
    pub struct TaskExit {
        container_id: String = 1 (string),
        id: String = 2 (string),
        pid: u32 = 3 (uint32),
        exit_status: u32 = 4 (uint32),
        exited_at: Option<Timestamp> = 5 (message, optional),
    }
}

message! {
    /// TaskOOM, TaskPaused and TaskResumed events (only the container id).
    pub struct ContainerEvent {
        container_id: String = 1 (string),
    }
}

message! {
    /// TaskExecAdded and TaskExecStarted events.
    pub struct TaskExec {
        container_id: String = 1 (string),
        exec_id: String = 2 (string),
        pid: u32 = 3 (uint32),
    }
}

/// io.containerd.cgroups.v1 metrics.
pub mod v1 {
    use prost::Message;

    message! {
        /// Metrics.
        pub struct Metrics {
            pids: Option<PidsStat> = 2 (message, optional),
            cpu: Option<CpuStat> = 3 (message, optional),
            memory: Option<MemoryStat> = 4 (message, optional),
            memory_oom_control: Option<MemoryOomControl> = 9 (message, optional),
        }
    }

    message! {
        /// PidsStat.
        pub struct PidsStat {
            current: u64 = 1 (uint64),
            limit: u64 = 2 (uint64),
        }
    }

    message! {
        /// CPUStat.
        pub struct CpuStat {
            usage: Option<CpuUsage> = 1 (message, optional),
            throttling: Option<Throttle> = 2 (message, optional),
        }
    }

    message! {
        /// CPUUsage (nanoseconds).
        pub struct CpuUsage {
            total: u64 = 1 (uint64),
            kernel: u64 = 2 (uint64),
            user: u64 = 3 (uint64),
            per_cpu: Vec<u64> = 4 (uint64, repeated),
        }
    }

    message! {
        /// Throttle.
        pub struct Throttle {
            periods: u64 = 1 (uint64),
            throttled_periods: u64 = 2 (uint64),
            throttled_time: u64 = 3 (uint64),
        }
    }

    message! {
        /// MemoryStat (the memory.stat keys plus the usage entries).
        pub struct MemoryStat {
            cache: u64 = 1 (uint64),
            rss: u64 = 2 (uint64),
            rss_huge: u64 = 3 (uint64),
            mapped_file: u64 = 4 (uint64),
            dirty: u64 = 5 (uint64),
            writeback: u64 = 6 (uint64),
            pg_pg_in: u64 = 7 (uint64),
            pg_pg_out: u64 = 8 (uint64),
            pg_fault: u64 = 9 (uint64),
            pg_maj_fault: u64 = 10 (uint64),
            inactive_anon: u64 = 11 (uint64),
            active_anon: u64 = 12 (uint64),
            inactive_file: u64 = 13 (uint64),
            active_file: u64 = 14 (uint64),
            unevictable: u64 = 15 (uint64),
            hierarchical_memory_limit: u64 = 16 (uint64),
            hierarchical_swap_limit: u64 = 17 (uint64),
            total_cache: u64 = 18 (uint64),
            total_rss: u64 = 19 (uint64),
            total_pg_fault: u64 = 26 (uint64),
            total_pg_maj_fault: u64 = 27 (uint64),
            usage: Option<MemoryEntry> = 33 (message, optional),
            swap: Option<MemoryEntry> = 34 (message, optional),
            kernel: Option<MemoryEntry> = 35 (message, optional),
            kernel_tcp: Option<MemoryEntry> = 36 (message, optional),
        }
    }

    message! {
        /// MemoryEntry.
        pub struct MemoryEntry {
            limit: u64 = 1 (uint64),
            usage: u64 = 2 (uint64),
            max: u64 = 3 (uint64),
            failcnt: u64 = 4 (uint64),
        }
    }

    message! {
        /// MemoryOomControl.
        pub struct MemoryOomControl {
            oom_kill_disable: u64 = 1 (uint64),
            under_oom: u64 = 2 (uint64),
            oom_kill: u64 = 3 (uint64),
        }
    }
}

/// io.containerd.cgroups.v2 metrics.
pub mod v2 {
    use prost::Message;

    message! {
        /// Metrics.
        pub struct Metrics {
            pids: Option<super::v1::PidsStat> = 1 (message, optional),
            cpu: Option<CpuStat> = 2 (message, optional),
            memory: Option<MemoryStat> = 4 (message, optional),
            memory_events: Option<MemoryEvents> = 8 (message, optional),
        }
    }

    message! {
        /// CPUStat (microseconds).
        pub struct CpuStat {
            usage_usec: u64 = 1 (uint64),
            user_usec: u64 = 2 (uint64),
            system_usec: u64 = 3 (uint64),
            nr_periods: u64 = 4 (uint64),
            nr_throttled: u64 = 5 (uint64),
            throttled_usec: u64 = 6 (uint64),
        }
    }

    message! {
        /// MemoryStat (a subset of memory.stat plus usage and limits).
        pub struct MemoryStat {
            anon: u64 = 1 (uint64),
            file: u64 = 2 (uint64),
            kernel_stack: u64 = 3 (uint64),
            slab: u64 = 4 (uint64),
            sock: u64 = 5 (uint64),
            shmem: u64 = 6 (uint64),
            file_mapped: u64 = 7 (uint64),
            pgfault: u64 = 18 (uint64),
            pgmajfault: u64 = 19 (uint64),
            usage: u64 = 32 (uint64),
            usage_limit: u64 = 33 (uint64),
            swap_usage: u64 = 34 (uint64),
            swap_limit: u64 = 35 (uint64),
            max_usage: u64 = 36 (uint64),
        }
    }

    message! {
        /// MemoryEvents.
        pub struct MemoryEvents {
            low: u64 = 1 (uint64),
            high: u64 = 2 (uint64),
            max: u64 = 3 (uint64),
            oom: u64 = 4 (uint64),
            oom_kill: u64 = 5 (uint64),
        }
    }
}
