//! The case registry: one module per chapter of the runtime spec (plus runc's CLI contract).

use crate::case::Case;
use std::time::Duration;

pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod devices;
pub mod exec;
pub mod hooks;
pub mod io;
pub mod lifecycle;
pub mod mounts;
pub mod namespaces;
pub mod output;
pub mod process;
pub mod security;

/// Builds a [`Case`] literal: `case!(chapter, name, doc, [needs...], function)`.
#[macro_export]
macro_rules! case {
    ($ch:expr, $name:expr, $doc:expr, [$($need:expr),* $(,)?], $f:expr) => {
        $crate::case::Case { chapter: $ch, name: $name, doc: $doc, needs: &[$($need),*], run: $f }
    };
}

/// Every case, chapter by chapter.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(lifecycle::cases());
    v.extend(cli::cases());
    v.extend(commands::cases());
    v.extend(process::cases());
    v.extend(security::cases());
    v.extend(namespaces::cases());
    v.extend(mounts::cases());
    v.extend(devices::cases());
    v.extend(cgroups::cases());
    v.extend(hooks::cases());
    v.extend(io::cases());
    v.extend(exec::cases());
    v.extend(output::cases());
    v
}

/// Cases where runc's behaviour is a bug that berth deliberately does not copy: they must fail
/// on runc (the runc test checks that) and pass on berth. Each says what runc does wrong and
/// which sentence of the runtime-spec berth follows instead; a deviation is kept only where the
/// spec requires (or allows) berth's behaviour.
pub const RUNC_DEVIATIONS: &[(&str, &str)] = &[(
    "namespaces/no-mount-namespace-no-leak",
    "without a mount namespace runc makes its rootfs bind and every configured mount in the host's \
     mount namespace and leaves them there after delete; berth makes them too (config-linux.md: a \
     namespace not listed is inherited from the runtime) and removes them on delete, as runtime.md \
     says: \"Deleting a container MUST delete the resources that were created during the create step.\"",
)];

/// How long a container is given to reach a state.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A long-running process for containers that must stay up.
pub(crate) const SLEEP: &[&str] = &["/bin/sleep", "600"];

/// True when `text` contains any of `words` (case-insensitive).
pub(crate) fn mentions(text: &str, words: &[&str]) -> bool {
    let t = text.to_lowercase();
    words.iter().any(|w| t.contains(&w.to_lowercase()))
}

/// Whether host process `pid` is alive and not a zombie.
pub(crate) fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Waits until host process `pid` is gone; returns true if it went.
pub(crate) fn wait_gone(pid: i64, timeout: Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_ids_are_unique_and_documented() {
        let cases = all();
        let mut ids: Vec<String> = cases.iter().map(|c| c.id()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate case ids");
        assert!(cases.iter().all(|c| !c.doc.is_empty()));
        assert!(cases.iter().all(|c| !c.name.contains(' ')));
    }

    #[test]
    fn mentions_is_case_insensitive() {
        assert!(mentions("Container Does Not Exist", &["does not exist"]));
        assert!(!mentions("ok", &["exist"]));
    }
}
