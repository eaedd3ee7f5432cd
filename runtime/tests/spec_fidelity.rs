//! What the runtime-spec allows and berth ignores or does differently from a namespaced
//! container: options a bind mount cannot use, unknown capability names, a container without a
//! mount namespace. Each is logged as a warning in runc's (logrus) format, text or JSON.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;

/// Runs the world's bundle with `--log FILE --log-format json`; returns the exit code, stdout and
/// the parsed log lines.
fn run_json_log(w: &World, name: &str) -> (i32, String, Vec<Value>) {
    let log = w.tmp.path().join(format!("{name}.log"));
    let id = w.id(name);
    let out = w
        .berth()
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "run", "--bundle"])
        .arg(&w.bundle)
        .arg(&id)
        .output()
        .unwrap();
    let (code, stdout, _) = decode(out);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    (code, stdout, lines)
}

/// The messages of the warning lines.
fn warnings(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["level"] == "warning")
        .map(|l| {
            assert!(l["time"].as_str().is_some_and(|t| t.contains('T')), "{l}");
            l["msg"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

/// Mount points at or below `dir` in this (the host's) mount namespace.
fn mounts_below(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| *m == d || m.starts_with(&format!("{d}/")))
        .collect()
}

/// Removes the mount namespace from a config's namespaces.
fn drop_mount_namespace(c: &mut Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
}

/// Detaches whatever is still mounted below `dir` when dropped (a failing test must not leave
/// mounts in the host's namespace, nor let the temp dir's removal walk into them).
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        for _ in 0..8 {
            let mut left = mounts_below(&self.0);
            if left.is_empty() {
                break;
            }
            left.sort();
            for m in left.iter().rev() {
                let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

#[test]
fn bind_options_a_bind_cannot_use_are_ignored_with_a_warning() {
    if !can_run() {
        return;
    }
    let w = World::new(&[]);
    let data = w.tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("f"), "host\n").unwrap();
    let mut c = w.base_config(&["sh", "-c", "cat /data/f && echo x > /data/g && echo rw"]);
    let mounts = c["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/data", "type": "bind", "source": data,
        "options": ["rbind", "mode=755", "rro-typo"]}),
    );
    let index = mounts.len() - 1;
    w.write_config(&c);
    let (code, out, lines) = run_json_log(&w, "bindopts");
    assert_eq!(code, 0, "{out} {lines:?}");
    assert_eq!(out, "host\nrw\n");
    let warned = warnings(&lines);
    let field = format!("mounts[{index}]");
    assert!(
        warned
            .iter()
            .any(|m| m.contains(&field) && m.contains("\"mode=755\"") && m.contains("/data")),
        "{warned:?}"
    );
    assert!(
        warned
            .iter()
            .any(|m| m.contains("\"rro-typo\"") && m.contains("did you mean \"rro\"")),
        "{warned:?}"
    );
    // The text format: logrus's `level=warning msg="..."` on stderr.
    let (code, _, err) = w.run("bindopts-text");
    assert_eq!(code, 0);
    assert!(
        err.lines()
            .any(|l| l.starts_with("time=\"") && l.contains("level=warning msg=\"mounts[")),
        "{err}"
    );
    w.assert_clean();
}

#[test]
fn unknown_capability_is_a_warning_not_an_error() {
    if !can_run() {
        return;
    }
    let w = World::new(&[]);
    let mut c = w.base_config(&["sh", "-c", "grep CapBnd /proc/self/status"]);
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_BERTH_TEST"));
    }
    w.write_config(&c);
    let (code, out, lines) = run_json_log(&w, "caps");
    assert_eq!(code, 0, "{out} {lines:?}");
    // The default set (runc spec's) is kept: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE.
    assert_eq!(out.trim(), "CapBnd:\t0000000020000420");
    let warned = warnings(&lines);
    assert_eq!(
        warned,
        vec!["ignoring unknown or unavailable capabilities: [CAP_BERTH_TEST]".to_string()]
    );
    w.assert_clean();
}

#[test]
fn without_a_mount_namespace_mounts_are_made_in_the_runtimes_and_removed_on_delete() {
    if !can_run() {
        return;
    }
    let w = World::new(&[]);
    let rootfs = w.bundle.join("rootfs");
    let _guard = Unmount(rootfs.clone());
    let before = mounts_below(&rootfs);
    let mut c = w.base_config(&[
        "sh",
        "-c",
        "grep -c ' /data ' /proc/self/mountinfo; wc -c < /proc/keys; \
         touch /x 2>/dev/null || echo ro; touch /data/y && echo data-rw",
    ]);
    drop_mount_namespace(&mut c);
    c["root"]["readonly"] = json!(true);
    c["linux"]["rootfsPropagation"] = json!("private");
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs"}));
    assert!(c["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .contains(&json!("/proc/keys")));
    w.write_config(&c);

    // Created: the mounts are in this namespace, below the rootfs.
    let id = w.id("nomntns");
    let (code, _, err) = w.create(&id, &[]);
    assert_eq!(code, 0, "{err}");
    let during = mounts_below(&rootfs);
    for want in ["", "/proc", "/dev", "/data"] {
        let p = format!("{}{want}", rootfs.display());
        assert!(during.contains(&p), "{p} not mounted: {during:?}");
    }
    assert!(
        err.contains("level=warning")
            && err.contains("no mount namespace")
            && err.contains("rootfsPropagation is ignored"),
        "{err}"
    );
    // The process sees them: /data is a tmpfs, /proc/keys masked, / read-only.
    let (code, _, err) = w.detached(&["start", &id]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = w.detached(&["delete", &id]);
    if code != 0 {
        // Not stopped yet: wait for it.
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            if w.detached(&["delete", &id]).0 == 0 {
                break;
            }
        }
        assert!(!w.root.join(&id).exists(), "{err}");
    }
    assert_eq!(mounts_below(&rootfs), before, "mounts left after delete");

    // The same with `run`, to read its output.
    let (code, out, err) = w.run("nomntns-run");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\n0\nro\ndata-rw\n", "{err}");
    assert_eq!(mounts_below(&rootfs), before, "mounts left after run");
    w.assert_clean();
}

#[test]
fn without_a_mount_namespace_a_failed_create_leaves_no_mount() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let rootfs = w.bundle.join("rootfs");
    let _guard = Unmount(rootfs.clone());
    let before = mounts_below(&rootfs);
    let mut c = w.base_config(&["true"]);
    drop_mount_namespace(&mut c);
    // The tmpfs is mounted, then the bind of a missing source fails.
    let mounts = c["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(json!({"destination": "/gone", "type": "bind",
        "source": w.tmp.path().join("missing"), "options": ["rbind"]}));
    w.write_config(&c);
    let (code, _, err) = w.run("nomntns-fail");
    assert_ne!(code, 0);
    assert!(err.contains("level=error"), "{err}");
    assert_eq!(
        mounts_below(&rootfs),
        before,
        "mounts left after a failed create"
    );
    w.assert_clean();
}

#[test]
fn without_a_mount_namespace_the_propagation_of_the_runtimes_root_is_kept() {
    if !can_run() {
        return;
    }
    // In a mount namespace of its own whose `/` is shared, as on a systemd host (runc makes it
    // private): after a run with mounts, `/` is still shared and nothing is left below the rootfs.
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    drop_mount_namespace(&mut c);
    w.write_config(&c);
    let id = w.id("nomntns-prop");
    let script = format!(
        "{} --root {} run --bundle {} {id} && awk '$5 == \"/\" {{print $7}}' /proc/self/mountinfo \
         && grep -c ' {}' /proc/self/mountinfo",
        berth_bin().display(),
        w.root.display(),
        w.bundle.display(),
        w.bundle.join("rootfs").display(),
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "shared", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (_, out, err) = decode(out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out} {err}");
    assert!(lines[0].starts_with("shared:"), "{out} {err}");
    assert_eq!(lines[1], "0", "{out} {err}");
    w.assert_clean();
}

#[test]
fn relative_mount_destination_is_taken_relative_to_root_with_a_warning() {
    if !can_run() {
        return;
    }
    let w = World::new(&[]);
    let mut c = w.base_config(&[
        "sh",
        "-c",
        "grep -c ' /relative/path ' /proc/self/mountinfo",
    ]);
    let mounts = c["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "relative/path", "type": "tmpfs", "source": "tmpfs"}));
    let field = format!("mounts[{}].destination", mounts.len() - 1);
    w.write_config(&c);
    let (code, out, lines) = run_json_log(&w, "reldest");
    assert_eq!(code, 0, "{out} {lines:?}");
    assert_eq!(out.trim(), "1");
    let warned = warnings(&lines);
    assert!(
        warned
            .iter()
            .any(|m| m.starts_with(&field) && m.contains("relative")),
        "{warned:?}"
    );
    w.assert_clean();
}

#[test]
fn a_property_berth_cannot_apply_is_an_error_naming_it() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["linux"]["personality"] = json!({"domain": "LINUX32"});
    w.write_config(&c);
    let (code, _, err) = w.run("personality");
    assert_ne!(code, 0);
    assert!(
        err.contains("level=error") && err.contains("linux.personality: not supported"),
        "{err}"
    );
    w.assert_clean();
}
