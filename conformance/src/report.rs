//! Output: TAP lines, the per-chapter summary table, and the side-by-side comparison (plain
//! text and Markdown).

use crate::case::{CaseResult, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// All results of one runtime.
#[derive(Debug, Clone)]
pub struct RuntimeReport {
    /// The runtime's short name.
    pub name: String,
    /// Its binary.
    pub path: String,
    /// First line of its `--version`.
    pub version: String,
    /// One result per case, in registry order.
    pub results: Vec<CaseResult>,
}

/// Counts of cases and assertions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Cases that passed.
    pub pass: usize,
    /// Cases that failed.
    pub fail: usize,
    /// Cases skipped.
    pub skip: usize,
    /// Assertions that held.
    pub asserts_ok: usize,
    /// Assertions made.
    pub asserts: usize,
}

impl Counts {
    /// Adds one case result.
    pub fn add(&mut self, r: &CaseResult) {
        match r.verdict {
            Verdict::Pass => self.pass += 1,
            Verdict::Fail(_) => self.fail += 1,
            Verdict::Skip(_) => self.skip += 1,
        }
        self.asserts += r.assertions.len();
        self.asserts_ok += r.assertions.iter().filter(|a| a.ok).count();
    }
}

impl RuntimeReport {
    /// Totals over all cases.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.results {
            c.add(r);
        }
        c
    }

    /// Totals per chapter, chapters in first-seen order.
    pub fn by_chapter(&self) -> Vec<(String, Counts)> {
        let mut order: Vec<String> = Vec::new();
        let mut map: BTreeMap<String, Counts> = BTreeMap::new();
        for r in &self.results {
            if !map.contains_key(&r.chapter) {
                order.push(r.chapter.clone());
            }
            map.entry(r.chapter.clone()).or_default().add(r);
        }
        order
            .into_iter()
            .map(|c| {
                let v = map.get(&c).copied().unwrap_or_default();
                (c, v)
            })
            .collect()
    }
}

/// Numbers TAP lines across a run.
#[derive(Debug, Default)]
pub struct Tap {
    n: usize,
}

impl Tap {
    /// A writer starting at test point 1.
    pub fn new() -> Tap {
        Tap::default()
    }

    /// The TAP header.
    pub fn header() -> &'static str {
        "TAP version 13"
    }

    /// The TAP lines (with diagnostics) for one case result on runtime `rt`.
    pub fn lines(&mut self, rt: &str, r: &CaseResult) -> Vec<String> {
        let mut out = Vec::new();
        if let Verdict::Skip(reason) = &r.verdict {
            if r.assertions.is_empty() {
                self.n += 1;
                out.push(format!(
                    "ok {} - {rt}: {} # SKIP {}",
                    self.n,
                    r.id,
                    one_line(reason)
                ));
                return out;
            }
        }
        for a in &r.assertions {
            self.n += 1;
            if a.ok {
                out.push(format!(
                    "ok {} - {rt}: {}: {}",
                    self.n,
                    r.id,
                    one_line(&a.what)
                ));
            } else {
                out.push(format!(
                    "not ok {} - {rt}: {}: {}",
                    self.n,
                    r.id,
                    one_line(&a.what)
                ));
                for l in a.detail.lines().take(8) {
                    out.push(format!("  # {l}"));
                }
            }
        }
        if let Verdict::Skip(reason) = &r.verdict {
            self.n += 1;
            out.push(format!(
                "ok {} - {rt}: {} (rest) # SKIP {}",
                self.n,
                r.id,
                one_line(reason)
            ));
        }
        out
    }

    /// The closing plan line.
    pub fn plan(&self) -> String {
        format!("1..{}", self.n)
    }
}

/// Collapses whitespace so a message fits on one TAP line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The per-chapter summary of one runtime as a plain-text table.
pub fn summary_table(rep: &RuntimeReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} ({})", rep.name, rep.version);
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>5} {:>5} {:>5} {:>11}",
        "chapter", "cases", "pass", "fail", "skip", "assertions"
    );
    for (ch, c) in rep.by_chapter() {
        let _ = writeln!(
            s,
            "{:<14} {:>5} {:>5} {:>5} {:>5} {:>5}/{:<5}",
            ch,
            c.pass + c.fail + c.skip,
            c.pass,
            c.fail,
            c.skip,
            c.asserts_ok,
            c.asserts
        );
    }
    let t = rep.counts();
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>5} {:>5} {:>5} {:>5}/{:<5}",
        "total",
        t.pass + t.fail + t.skip,
        t.pass,
        t.fail,
        t.skip,
        t.asserts_ok,
        t.asserts
    );
    s
}

fn cell(v: Option<&Verdict>) -> &'static str {
    match v {
        Some(Verdict::Pass) => "pass",
        Some(Verdict::Fail(_)) => "FAIL",
        Some(Verdict::Skip(_)) => "skip",
        None => "-",
    }
}

/// Case ids in first-seen order over all reports.
fn case_ids(reps: &[RuntimeReport]) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = Vec::new();
    for rep in reps {
        for r in &rep.results {
            if !ids.iter().any(|(i, _)| *i == r.id) {
                ids.push((r.id.clone(), r.doc.clone()));
            }
        }
    }
    ids
}

fn verdict_of<'a>(rep: &'a RuntimeReport, id: &str) -> Option<&'a Verdict> {
    rep.results.iter().find(|r| r.id == id).map(|r| &r.verdict)
}

/// The side-by-side table as plain text.
pub fn compare_table(reps: &[RuntimeReport]) -> String {
    let ids = case_ids(reps);
    let w = ids.iter().map(|(i, _)| i.len()).max().unwrap_or(4).max(4);
    let mut s = String::new();
    let _ = write!(s, "{:<w$}", "case");
    for rep in reps {
        let _ = write!(s, " {:>8}", rep.name);
    }
    s.push('\n');
    for (id, _) in &ids {
        let _ = write!(s, "{id:<w$}");
        for rep in reps {
            let _ = write!(s, " {:>8}", cell(verdict_of(rep, id)));
        }
        s.push('\n');
    }
    let _ = write!(s, "{:<w$}", "pass/fail/skip");
    for rep in reps {
        let c = rep.counts();
        let _ = write!(s, " {:>8}", format!("{}/{}/{}", c.pass, c.fail, c.skip));
    }
    s.push('\n');
    s
}

/// Escapes text for a Markdown table cell.
fn md(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

/// The line after which docs/compatibility.md holds hand-written sections, kept as they are
/// when the generated part above it is rewritten.
pub const HAND_WRITTEN_MARKER: &str =
    "<!-- Hand-written sections follow; the generator keeps everything below this line. -->";

/// `generated` followed by the hand-written tail of `old` (from [`HAND_WRITTEN_MARKER`] on),
/// if `old` has one.
pub fn keep_hand_written(old: &str, generated: &str) -> String {
    match old.find(HAND_WRITTEN_MARKER) {
        Some(i) => format!("{}\n\n{}", generated.trim_end(), &old[i..]),
        None => generated.to_string(),
    }
}

/// The comparison as a Markdown document (docs/compatibility.md).
pub fn markdown(reps: &[RuntimeReport], command: &str) -> String {
    let mut s = String::new();
    s.push_str("# OCI runtime conformance: berth, runc and crun side by side\n\n");
    s.push_str(
        "Generated by the `berth-conformance` suite (crate `conformance/`); do not edit by hand.\n",
    );
    let _ = writeln!(s, "Regenerate with:\n\n```sh\n{command}\n```\n");
    s.push_str("Each case writes a busybox bundle, drives the runtime through its CLI and checks the effect from inside the container with a static checker binary. A case fails when any of its assertions fails; cases that this machine or runtime cannot support are skipped with the reason, never counted as passed.\n\n");
    s.push_str("## Runtimes\n\n| runtime | binary | version | cases pass | fail | skip | assertions ok |\n|---|---|---|---|---|---|---|\n");
    for rep in reps {
        let c = rep.counts();
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {} | {} | {}/{} |",
            rep.name,
            rep.path,
            md(&rep.version),
            c.pass,
            c.fail,
            c.skip,
            c.asserts_ok,
            c.asserts
        );
    }
    s.push_str("\n## Cases\n\n| case | what it checks |");
    for rep in reps {
        let _ = write!(s, " {} |", rep.name);
    }
    s.push_str("\n|---|---|");
    for _ in reps {
        s.push_str("---|");
    }
    s.push('\n');
    for (id, doc) in case_ids(reps) {
        let _ = write!(s, "| `{id}` | {} |", md(&doc));
        for rep in reps {
            let c = match verdict_of(rep, &id) {
                Some(Verdict::Fail(_)) => "**FAIL**",
                v => cell(v),
            };
            let _ = write!(s, " {c} |");
        }
        s.push('\n');
    }
    s.push_str("\n## Deliberate differences from runc\n\n");
    s.push_str(
        "Cases where runc's behaviour is a bug or a hole that berth does not copy. They fail on \
         runc by design; the suite's runc test expects exactly these to fail.\n\n",
    );
    for (id, why) in crate::cases::RUNC_DEVIATIONS {
        let _ = writeln!(s, "- `{id}`: {}", md(why));
    }
    s.push_str("\n## Failures and skips\n\n");
    let mut any = false;
    for rep in reps {
        for r in &rep.results {
            match &r.verdict {
                Verdict::Fail(why) => {
                    any = true;
                    let _ = writeln!(s, "- {} `{}` **fails**: {}", rep.name, r.id, md(why));
                }
                Verdict::Skip(why) => {
                    any = true;
                    let _ = writeln!(s, "- {} `{}` skipped: {}", rep.name, r.id, md(why));
                }
                Verdict::Pass => {}
            }
        }
    }
    if !any {
        s.push_str("None.\n");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn hand_written_tail_is_kept() {
        use super::{keep_hand_written, HAND_WRITTEN_MARKER};
        let old = format!("# old table\n\n{HAND_WRITTEN_MARKER}\n## Mine\ntext\n");
        let new = keep_hand_written(&old, "# new table\n");
        assert_eq!(
            new,
            format!("# new table\n\n{HAND_WRITTEN_MARKER}\n## Mine\ntext\n")
        );
        assert_eq!(keep_hand_written("# no marker\n", "# new\n"), "# new\n");
    }

    use super::*;
    use crate::case::Assertion;
    use std::time::Duration;

    fn res(id: &str, verdict: Verdict, asserts: &[(bool, &str)]) -> CaseResult {
        CaseResult {
            id: id.to_string(),
            chapter: id.split('/').next().unwrap().to_string(),
            doc: format!("doc of {id}"),
            verdict,
            assertions: asserts
                .iter()
                .map(|(ok, w)| Assertion {
                    what: w.to_string(),
                    ok: *ok,
                    detail: if *ok {
                        String::new()
                    } else {
                        "expected 1\ngot 2".into()
                    },
                })
                .collect(),
            duration: Duration::ZERO,
        }
    }

    fn report(name: &str, results: Vec<CaseResult>) -> RuntimeReport {
        RuntimeReport {
            name: name.into(),
            path: format!("/bin/{name}"),
            version: format!("{name} 1.0"),
            results,
        }
    }

    #[test]
    fn tap_lines_number_assertions_and_skips() {
        let mut tap = Tap::new();
        let a = tap.lines(
            "runc",
            &res("a/x", Verdict::Pass, &[(true, "one"), (true, "two")]),
        );
        assert_eq!(a, ["ok 1 - runc: a/x: one", "ok 2 - runc: a/x: two"]);
        let b = tap.lines(
            "runc",
            &res(
                "a/y",
                Verdict::Fail("one".into()),
                &[(false, "one  \n more")],
            ),
        );
        assert_eq!(
            b,
            [
                "not ok 3 - runc: a/y: one more",
                "  # expected 1",
                "  # got 2"
            ]
        );
        let c = tap.lines(
            "crun",
            &res("b/z", Verdict::Skip("no | cgroup".into()), &[]),
        );
        assert_eq!(c, ["ok 4 - crun: b/z # SKIP no | cgroup"]);
        assert_eq!(tap.plan(), "1..4");
        assert_eq!(Tap::header(), "TAP version 13");
    }

    #[test]
    fn counts_and_summary() {
        let rep = report(
            "runc",
            vec![
                res("a/x", Verdict::Pass, &[(true, "1"), (true, "2")]),
                res(
                    "a/y",
                    Verdict::Fail("f".into()),
                    &[(true, "1"), (false, "2")],
                ),
                res("b/z", Verdict::Skip("s".into()), &[]),
            ],
        );
        let c = rep.counts();
        assert_eq!(
            c,
            Counts {
                pass: 1,
                fail: 1,
                skip: 1,
                asserts_ok: 3,
                asserts: 4
            }
        );
        let ch = rep.by_chapter();
        assert_eq!(ch.len(), 2);
        assert_eq!(ch[0].0, "a");
        assert_eq!(ch[0].1.fail, 1);
        let t = summary_table(&rep);
        assert!(t.contains("total"));
        assert!(t
            .lines()
            .any(|l| l.starts_with("total") && l.contains("3/4")));
    }

    #[test]
    fn comparison_tables() {
        let reps = vec![
            report(
                "runc",
                vec![
                    res("a/x", Verdict::Pass, &[]),
                    res("a/y", Verdict::Pass, &[]),
                ],
            ),
            report(
                "berth",
                vec![
                    res("a/x", Verdict::Fail("bad | thing".into()), &[]),
                    res("a/y", Verdict::Skip("why".into()), &[]),
                ],
            ),
        ];
        let t = compare_table(&reps);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("case") && lines[0].contains("runc") && lines[0].contains("berth")
        );
        assert!(
            lines[1].starts_with("a/x") && lines[1].contains("pass") && lines[1].contains("FAIL")
        );
        assert!(lines[2].contains("skip"));
        assert!(lines[3].contains("2/0/0") && lines[3].contains("0/1/1"));
        let m = markdown(&reps, "hack/conformance.sh");
        assert!(m.contains("| `a/x` | doc of a/x | pass | **FAIL** |"));
        assert!(m.contains("- berth `a/x` **fails**: bad \\| thing"));
        assert!(m.contains("- berth `a/y` skipped: why"));
        assert!(m.contains("hack/conformance.sh"));
    }
}
