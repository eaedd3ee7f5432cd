//! Process settings seen from inside the container: user, groups, umask, env, cwd, rlimits,
//! capabilities, noNewPrivileges, oomScoreAdj, hostname, sysctl.

mod common;
use common::*;
use serde_json::json;

fn run_with(args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let w = World::new(args);
    let mut c = w.base_config(args);
    edit(&mut c);
    w.write_config(&c);
    let out = w.run_ok("proc");
    w.assert_clean();
    out
}

#[test]
fn user_groups_and_umask() {
    if !can_run() {
        return;
    }
    let out = run_with(&["sh", "-c", "id -u; id -g; id -G; umask"], |c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 63});
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    assert!(groups.contains(&"5") && groups.contains(&"6"), "{groups:?}");
    assert_eq!(lines[3], "0077");
}

#[test]
fn env_home_and_cwd_created_if_missing() {
    if !can_run() {
        return;
    }
    let out = run_with(&["sh", "-c", "echo $FOO; echo $HOME; pwd"], |c| {
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        c["process"]["cwd"] = json!("/work/dir");
    });
    assert_eq!(out, "bar baz\n/root\n/work/dir\n");
}

#[test]
fn rlimits_are_applied() {
    if !can_run() {
        return;
    }
    let out = run_with(&["sh", "-c", "ulimit -n; ulimit -Hn"], |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888}]);
    });
    assert_eq!(out, "777\n888\n");
}

#[test]
fn rlimit_above_hard_limit_fails_clearly() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 1u64 << 30, "hard": 1u64 << 30}]);
    w.write_config(&c);
    let (code, _, err) = w.run("rl");
    if code == 0 {
        // A machine with CAP_SYS_RESOURCE may raise it; nothing to check then.
        return;
    }
    assert!(err.contains("rlimit"), "{err}");
    w.assert_clean();
}

fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn capabilities_all_five_sets_and_no_new_privileges() {
    if !can_run() {
        return;
    }
    let out = run_with(&["cat", "/proc/self/status"], |c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        });
        c["process"]["noNewPrivileges"] = json!(true);
    });
    // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10.
    assert_eq!(
        status_field(&out, "CapBnd:"),
        format!("{:016x}", (1u64 << 0) | (1 << 5) | (1 << 10))
    );
    assert_eq!(
        status_field(&out, "CapEff:"),
        format!("{:016x}", (1u64 << 5) | (1 << 10))
    );
    assert_eq!(
        status_field(&out, "CapPrm:"),
        format!("{:016x}", (1u64 << 5) | (1 << 10))
    );
    assert_eq!(
        status_field(&out, "CapInh:"),
        format!("{:016x}", 1u64 << 10)
    );
    assert_eq!(
        status_field(&out, "CapAmb:"),
        format!("{:016x}", 1u64 << 10)
    );
    assert_eq!(status_field(&out, "NoNewPrivs:"), "1");
}

#[test]
fn no_capabilities_means_empty_sets_even_for_root() {
    if !can_run() {
        return;
    }
    let out = run_with(&["cat", "/proc/self/status"], |c| {
        c["process"].as_object_mut().unwrap().remove("capabilities");
        c["process"]["noNewPrivileges"] = json!(false);
    });
    for f in ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:", "CapBnd:"] {
        assert_eq!(status_field(&out, f), "0000000000000000", "{f}");
    }
    assert_eq!(status_field(&out, "NoNewPrivs:"), "0");
}

#[test]
fn oom_score_adj_hostname_domainname_sysctl() {
    if !can_run() {
        return;
    }
    let out = run_with(
        &["sh", "-c", "cat /proc/self/oom_score_adj; hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/shmmni"],
        |c| {
            c["process"]["oomScoreAdj"] = json!(500);
            c["hostname"] = json!("box1");
            c["domainname"] = json!("example.org");
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
        },
    );
    assert_eq!(out, "500\nbox1\nexample.org\n1\n1234\n");
}

#[test]
fn missing_executable_is_reported_at_create() {
    if !can_run() {
        return;
    }
    let w = World::new(&["no-such-program"]);
    let (code, _, err) = w.run("noexec");
    assert_ne!(code, 0);
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    w.assert_clean();
}

#[test]
fn preserve_fds_and_stdio_inheritance() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sh", "-c", "cat <&3; ls /proc/self/fd | wc -l"]);
    let id = w.id("fds");
    std::fs::write(w.tmp.path().join("msg"), "through fd 3\n").unwrap();
    // The shell opens fd 3 and 4; only 3 is preserved, 4 must not reach the container.
    let script = format!(
        "exec 3<{msg} 4<{msg}; {berth} --root {root} run --preserve-fds 1 --bundle {bundle} {id}",
        msg = w.tmp.path().join("msg").display(),
        berth = berth_bin().display(),
        root = w.root.display(),
        bundle = w.bundle.display(),
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "through fd 3");
    // 0, 1, 2, 3 and the directory fd ls itself opens.
    assert_eq!(
        lines[1].trim(),
        "5",
        "unexpected descriptors in the container"
    );
}

#[test]
fn listen_fds_are_passed_through() {
    if !can_run() {
        return;
    }
    // Socket activation: the caller's LISTEN_FDS descriptors reach the container, announced
    // with LISTEN_FDS and LISTEN_PID=1, as runc does.
    let w = World::new(&["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat <&3"]);
    let id = w.id("listen");
    std::fs::write(w.tmp.path().join("sock-standin"), "activated\n").unwrap();
    let script = format!(
        "exec 3<{f}; LISTEN_FDS=1 LISTEN_PID=$$ exec {berth} --root {root} run --bundle {bundle} {id}",
        f = w.tmp.path().join("sock-standin").display(),
        berth = berth_bin().display(),
        root = w.root.display(),
        bundle = w.bundle.display(),
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1 1\nactivated\n");
    w.assert_clean();
}
