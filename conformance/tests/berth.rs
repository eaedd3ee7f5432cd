//! Runs the whole suite against berth on every CI run. Every case must pass or skip, except
//! the ones listed in KNOWN_GAPS (features tracked by an open issue), which must still fail:
//! a gap that starts passing has to be removed from the list.

use berth_conformance::{cases, Suite, Verdict};
use std::path::{Path, PathBuf};

/// Cases berth fails on purpose today, with the reason.
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// target/<triple>/<profile>/berth next to this test's .../<profile>/deps/.
fn berth_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("berth")))
        .unwrap_or_else(|| Path::new("berth").to_path_buf())
}

#[test]
fn berth_passes_everything_but_known_gaps() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the conformance suite needs root");
        return;
    }
    let bin = berth_binary();
    if !bin.exists() {
        eprintln!(
            "skipped: {} is not built (cargo build -p berth)",
            bin.display()
        );
        return;
    }
    let suite = Suite::new(Path::new("/var/tmp")).expect("preparing the suite");
    let rt = suite.runtime("berth", &bin).expect("runtime");
    let all = cases::all();
    let mut unexpected = Vec::new();
    let mut gaps_failed = Vec::new();
    let report = suite.run(&rt, &all, |r| {
        if let Verdict::Fail(why) = &r.verdict {
            if KNOWN_GAPS.iter().any(|(id, _)| *id == r.id) {
                gaps_failed.push(r.id.to_string());
            } else {
                unexpected.push(format!("{}: {why}", r.id));
            }
        }
    });
    let c = report.counts();
    eprintln!(
        "berth: {} passed, {} failed, {} skipped; {}/{} assertions",
        c.pass, c.fail, c.skip, c.asserts_ok, c.asserts
    );
    assert!(
        unexpected.is_empty(),
        "berth fails cases runc passes:\n{}",
        unexpected.join("\n")
    );
    for (id, why) in KNOWN_GAPS {
        assert!(
            gaps_failed.iter().any(|g| g == id),
            "{id} passes now ({why} no longer holds): remove it from KNOWN_GAPS"
        );
    }
}
