//! `process.rlimits`: resource limits applied with setrlimit before the user switch.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

/// The resource number for a limit type.
pub fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Applies one limit; raising a hard limit above the current one needs CAP_SYS_RESOURCE, and the
/// error says so, like runc's `error setting rlimit type N`.
pub fn apply(index: usize, r: &PosixRlimit) -> Result<(), String> {
    let res = resource(r.typ());
    let lim = libc::rlimit {
        rlim_cur: r.soft(),
        rlim_max: r.hard(),
    };
    // SAFETY: valid resource number and rlimit struct.
    if unsafe { libc::setrlimit(res, &lim) } < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "process.rlimits[{index}]: error setting rlimit type {res} ({:?} soft {} hard {}): {e}",
            r.typ(),
            r.soft(),
            r.hard()
        ));
    }
    Ok(())
}
