//! Runs the whole suite against the reference runtime (runc, Debian package) and asserts that
//! no case fails: a case that fails on runc is a bug in the case. Skips itself when not root or
//! when runc is not installed.

use berth_conformance::{cases, Suite, Verdict};
use std::path::Path;

const RUNC: &str = "/usr/sbin/runc";

/// Cases where runc's behaviour is a bug that berth deliberately does not copy
/// (docs/compatibility.md lists them): they must fail on runc and are not counted.
pub const RUNC_DEVIATIONS: &[(&str, &str)] = &[
    (
        "namespaces/no-mount-namespace-no-leak",
        "runc leaves its rootfs bind mount (and any configured mount) in the host's mount table",
    ),
    (
        "mounts/proc-bind-new-pidns-refused",
        "runc binds the host's procfs onto /proc even with a new pid namespace, exposing host processes",
    ),
    (
        "mounts/unknown-bind-option-refused",
        "runc silently ignores options it does not know on bind mounts (a typo in rro leaves the mount writable)",
    ),
];

#[test]
fn every_case_passes_or_skips_on_runc() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the conformance suite needs root");
        return;
    }
    if !Path::new(RUNC).exists() {
        eprintln!("skipped: {RUNC} is missing (apt-get install runc)");
        return;
    }
    let suite = Suite::new(Path::new("/var/tmp")).expect("preparing the suite");
    let rt = suite.runtime("runc", Path::new(RUNC)).expect("runtime");
    let all = cases::all();
    let mut deviations = Vec::new();
    let report = suite.run(&rt, &all, |r| {
        if RUNC_DEVIATIONS.iter().any(|(id, _)| *id == r.id) {
            deviations.push((r.id.clone(), matches!(r.verdict, Verdict::Fail(_))));
            return;
        }
        if let Verdict::Fail(why) = &r.verdict {
            eprintln!("FAIL {}: {why}", r.id);
            for a in r.assertions.iter().filter(|a| !a.ok) {
                eprintln!("    {}: {}", a.what, a.detail);
            }
        }
    });
    let c = report.counts();
    eprintln!(
        "runc: {} passed, {} failed, {} skipped; {}/{} assertions",
        c.pass, c.fail, c.skip, c.asserts_ok, c.asserts
    );
    let deviation_failures = deviations.iter().filter(|(_, failed)| *failed).count();
    for (id, failed) in &deviations {
        assert!(
            *failed,
            "{id} passes on runc: the deviation no longer holds, remove it from RUNC_DEVIATIONS"
        );
    }
    assert_eq!(
        c.fail, deviation_failures,
        "cases failing on runc are bugs in the cases"
    );
    assert!(
        c.asserts >= 150,
        "fewer assertions than expected: {}",
        c.asserts
    );
}
