//! OCI hooks: order, state on stdin, args/env, failure and timeout handling.

mod common;
use common::*;
use serde_json::json;

fn hook(log: &std::path::Path, name: &str) -> serde_json::Value {
    // Appends "<name> <state json>" to the log: shows order and what was on stdin.
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("printf '%s ' {name} >> {l}; cat >> {l}; echo >> {l}", l = log.display())]})
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sh", "-c", "cat /tmp/start-hook"]);
    let log = w.tmp.path().join("hooks.log");
    let mut c = w.base_config(&["sh", "-c", "cat /tmp/start-hook"]);
    c["hooks"] = json!({
        "prestart": [hook(&log, "prestart")],
        "createRuntime": [hook(&log, "createRuntime")],
        "createContainer": [hook(&log, "createContainer")],
        // Runs inside the container, after pivot_root: paths are the container's.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo started-in-container > /tmp/start-hook"]}],
        "poststart": [hook(&log, "poststart")],
        "poststop": [hook(&log, "poststop")]
    });
    w.write_config(&c);
    let out = w.run_ok("hooks");
    assert_eq!(out, "started-in-container\n");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        vec![
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    for l in &lines {
        let (name, state) = l.split_once(' ').unwrap();
        let s: serde_json::Value = serde_json::from_str(state).unwrap();
        assert!(
            s["id"].as_str().unwrap().starts_with("hooks-"),
            "{name}: {s}"
        );
        assert_eq!(s["bundle"], json!(w.bundle.canonicalize().unwrap()));
        let want = match name {
            "poststart" => "running",
            "poststop" => "stopped",
            _ => "creating",
        };
        assert_eq!(s["status"], want, "{name}");
        if name != "poststop" {
            assert!(s["pid"].as_i64().unwrap() > 0, "{name}");
        }
    }
    w.assert_clean();
}

#[test]
fn hook_args_and_env() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let out = w.tmp.path().join("env.out");
    let mut c = w.base_config(&["true"]);
    c["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo \"$0 $1 $GREETING\" > {}", out.display()), "first", "second"],
        "env": ["GREETING=hello"]
    }]});
    w.write_config(&c);
    w.run_ok("hookenv");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "first second hello\n"
    );
}

#[test]
fn failing_prestart_hook_fails_create_and_cleans_up() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    w.write_config(&c);
    let (code, _, err) = w.run("hookfail");
    assert_ne!(code, 0);
    assert!(err.contains("hooks.prestart[0]"), "{err}");
    w.assert_clean();
}

#[test]
fn hook_timeout_is_enforced() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    w.write_config(&c);
    let started = std::time::Instant::now();
    let (code, _, err) = w.run("hooktimeout");
    assert_ne!(code, 0);
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed().as_secs() < 20);
    w.assert_clean();
}

#[test]
fn failing_poststop_hook_is_a_warning() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["hooks"] = json!({"poststop": [{"path": "/bin/false"}]});
    w.write_config(&c);
    let (code, _, err) = w.run("poststop");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning") && err.contains("hooks.poststop[0]"),
        "{err}"
    );
    w.assert_clean();
}
