//! Runs the whole suite against the reference runtime (runc, Debian package) and asserts that
//! no case fails but the deliberate deviations (`cases::RUNC_DEVIATIONS`, which must fail): any
//! other case that fails on runc is a bug in the case. Skips itself when not root or when runc
//! is not installed.

use berth_conformance::cases::RUNC_DEVIATIONS;
use berth_conformance::{cases, Suite, Verdict};
use std::path::Path;

const RUNC: &str = "/usr/sbin/runc";

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
