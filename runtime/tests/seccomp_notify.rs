//! SCMP_ACT_NOTIFY end to end: a small seccomp agent of our own (threads of this test) listens
//! at `linux.seccomp.listenerPath`, receives the listener fd and the containerProcessState
//! JSON, and answers the container's notified mkdir calls. The same cases run against runc
//! (it implements the same protocol) to prove the test.

mod common;
use berth_conformance::agent::Agent;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A runtime under test: berth, or runc to prove the test.
struct Rt {
    name: &'static str,
    bin: PathBuf,
}

fn runtimes() -> Vec<Rt> {
    let mut v = vec![Rt {
        name: "berth",
        bin: berth_bin(),
    }];
    let runc = PathBuf::from("/usr/sbin/runc");
    if runc.exists() {
        v.push(Rt {
            name: "runc",
            bin: runc,
        });
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("runc is missing: hack/test.sh installs it");
    } else {
        eprintln!("runc not installed: the agent is tested against berth only");
    }
    v
}

impl Rt {
    fn cmd(&self, w: &World) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&w.root);
        c.stdin(std::process::Stdio::null());
        c
    }

    fn run(&self, w: &World, id: &str) -> (i32, String, String) {
        decode(
            self.cmd(w)
                .args(["run", "--bundle"])
                .arg(&w.bundle)
                .arg(id)
                .output()
                .unwrap(),
        )
    }

    fn delete(&self, w: &World, id: &str) {
        let _ = self.cmd(w).args(["delete", "--force", id]).output();
    }
}

fn notify_config(w: &World, agent: &Agent, args: &[&str], metadata: &str, nnp: bool) {
    let mut c = w.base_config(args);
    c["process"]["noNewPrivileges"] = json!(nnp);
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent.path,
        "listenerMetadata": metadata,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    w.write_config(&c);
}

/// Notified mkdir, then the process's descriptors (the listener must not be among them).
const MKDIR: &str = "mkdir /tmp/made; echo rc=$?; if [ -d /tmp/made ]; then echo made; else echo absent; fi; ls -l /proc/self/fd/";

fn check_state(st: &Value, id: &str, bundle: &Path, status: &str, metadata: &str) {
    assert_eq!(st["fds"], json!(["seccompFd"]), "{st}");
    assert!(st["ociVersion"].is_string(), "{st}");
    assert_eq!(st["metadata"], json!(metadata), "{st}");
    assert!(st["pid"].as_i64().unwrap_or(0) > 0, "{st}");
    assert_eq!(st["state"]["id"], json!(id), "{st}");
    assert_eq!(st["state"]["status"], json!(status), "{st}");
    assert_eq!(
        st["state"]["bundle"].as_str().map(PathBuf::from),
        Some(bundle.canonicalize().unwrap()),
        "{st}"
    );
}

#[test]
fn agent_answers_notified_syscalls_of_the_init() {
    if !can_run() {
        return;
    }
    for rt in runtimes() {
        for nnp in [true, false] {
            let w = World::new(&["true"]);
            let agent = Agent::start(w.tmp.path()).unwrap();
            notify_config(&w, &agent, &["sh", "-c", MKDIR], "MKDIR=fake", nnp);
            let id = w.id("notify");
            let (code, out, err) = rt.run(&w, &id);
            rt.delete(&w, &id);
            let ctx = format!("{} nnp={nnp}: {out} {err}", rt.name);
            assert_eq!(code, 0, "{ctx}");
            // The agent made mkdir succeed without creating the directory.
            assert!(out.contains("rc=0"), "{ctx}");
            assert!(out.contains("absent"), "{ctx}");
            assert!(!w.bundle.join("rootfs/tmp/made").exists(), "{ctx}");
            assert!(
                !out.contains("seccomp"),
                "{ctx}: the listener reached the container"
            );
            let states = agent.states();
            assert_eq!(states.len(), 1, "{ctx}: {states:?}");
            check_state(&states[0], &id, &w.bundle, "creating", "MKDIR=fake");
            assert!(!agent.answered().is_empty(), "{ctx}");
            drop(agent);
            if rt.name == "berth" {
                w.assert_clean();
            }
        }
    }
}

#[test]
fn agent_answers_notified_syscalls_of_exec_processes() {
    if !can_run() {
        return;
    }
    for rt in runtimes() {
        let w = World::new(&["true"]);
        let agent = Agent::start(w.tmp.path()).unwrap();
        notify_config(&w, &agent, &["sleep", "30"], "ERRNO=18", true);
        let id = w.id("notify-exec");
        let bundle = w.bundle.to_string_lossy().into_owned();
        let st = rt
            .cmd(&w)
            .args(["run", "-d", "--bundle", &bundle, &id])
            .stdout(std::fs::File::create(w.tmp.path().join("out")).unwrap())
            .stderr(std::fs::File::create(w.tmp.path().join("err")).unwrap())
            .status()
            .unwrap();
        assert!(st.success(), "{}: run -d failed", rt.name);
        let (code, out, err) = decode(
            rt.cmd(&w)
                .args(["exec", &id, "sh", "-c", MKDIR])
                .output()
                .unwrap(),
        );
        rt.delete(&w, &id);
        let ctx = format!("{}: {out} {err} agent saw {:?}", rt.name, agent.states());
        assert_eq!(code, 0, "{ctx}");
        // EXDEV from the agent.
        assert!(out.contains("rc=1") && out.contains("absent"), "{ctx}");
        assert!(err.contains("cross-device"), "{ctx}");
        assert!(
            !out.contains("seccomp"),
            "{ctx}: the listener reached the container"
        );
        let states = agent.states();
        assert_eq!(states.len(), 2, "{ctx}: {states:?}");
        check_state(&states[0], &id, &w.bundle, "creating", "ERRNO=18");
        check_state(&states[1], &id, &w.bundle, "running", "ERRNO=18");
        let init_pid = states[0]["pid"].as_i64().unwrap();
        let exec_pid = states[1]["pid"].as_i64().unwrap();
        assert_ne!(init_pid, exec_pid, "{ctx}: {states:?}");
        // The notified mkdir came from the exec process (or a child of it).
        assert!(
            agent
                .answered()
                .iter()
                .any(|(_, p)| i64::from(*p) >= exec_pid),
            "{ctx}: {:?}",
            agent.answered()
        );
        drop(agent);
        if rt.name == "berth" {
            // runc leaves the cgroup parent behind; World's drop removes it.
            w.assert_clean();
        }
    }
}

#[test]
fn unreachable_agent_fails_create_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": w.tmp.path().join("nobody.sock"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    w.write_config(&c);
    let (code, _, err) = w.run("noagent");
    assert_ne!(code, 0);
    assert!(
        err.contains("linux.seccomp.listenerPath") && err.contains("nobody.sock"),
        "{err}"
    );
    w.assert_clean();
}
