//! `berth features`: the OCI runtime features document, listing only what berth implements.

use serde_json::json;

/// Flags of features (none).
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Prints the features JSON.
pub fn run(_a: Args) -> anyhow::Result<i32> {
    let caps: Vec<&str> = berth::capabilities::NAMES.to_vec();
    let doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": berth::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": berth::rootfs::plan::KNOWN_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "io.github.berth.version": env!("CARGO_PKG_VERSION")
        }
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
