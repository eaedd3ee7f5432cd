//! process.terminal with --console-socket: the pty master arrives over SCM_RIGHTS and the
//! container's stdio is the slave, its controlling terminal.

mod common;
use common::*;
use serde_json::json;
use std::io::Read;
use std::os::fd::AsRawFd;

#[test]
fn console_socket_receives_the_pty_master() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sh", "-c", "tty; stty size; echo tty-ok"]);
    let mut c = w.base_config(&["sh", "-c", "tty; stty size; echo tty-ok"]);
    c["process"]["terminal"] = json!(true);
    c["process"]["consoleSize"] = json!({"height": 40, "width": 100});
    w.write_config(&c);
    let sock = w.tmp.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let id = w.id("tty");
    let (code, _, err) = w.create(&id, &["--console-socket", sock.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (conn, _) = listener.accept().unwrap();
    let master = berth::console::recv_fd(conn.as_raw_fd()).unwrap();
    let (code, _, err) = w.detached(&["start", &id]);
    assert_eq!(code, 0, "{err}");
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // The pty reports EIO once the slave side is closed.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&out).contains("tty-ok") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("40 100"), "{text}");
    assert!(text.contains("tty-ok"), "{text}");
}

#[test]
fn terminal_without_console_socket_is_refused_when_detached() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["process"]["terminal"] = json!(true);
    w.write_config(&c);
    let id = w.id("notty");
    let (code, _, err) = w.create(&id, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("console socket"), "{err}");
    w.assert_clean();
}

#[test]
fn foreground_run_with_terminal_proxies_the_pty() {
    if !can_run() {
        return;
    }
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: script(1) from bsdutils is missing");
        return;
    }
    let args = ["sh", "-c", "tty; echo typed: $(head -n1)"];
    let w = World::new(&args);
    let mut c = w.base_config(&args);
    c["process"]["terminal"] = json!(true);
    w.write_config(&c);
    let id = w.id("fgtty");
    let cmd = format!(
        "{} --root {} run --bundle {} {}",
        berth_bin().display(),
        w.root.display(),
        w.bundle.display(),
        id
    );
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("printf 'hello\\n' | script -qec '{cmd}' /dev/null"),
        ])
        .output()
        .unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("typed: hello"), "{out}");
    w.assert_clean();
}

#[test]
fn console_socket_without_terminal_is_refused() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let sock = w.tmp.path().join("unused.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let id = w.id("sockterm");
    let (code, _, err) = w.create(&id, &["--console-socket", sock.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot use console socket"), "{err}");
    w.assert_clean();
}
