//! The processes of a container that has no cgroup to list them (rootless without a delegated
//! cgroup): with a pid namespace of its own, every process in that namespace (the init, its
//! children and `exec` processes, which join it); without one, the init and its descendants.

use std::collections::{BTreeMap, BTreeSet};

/// PIDs (host view) of the container whose init is `init_pid`, sorted; empty when the init is
/// gone. Processes this caller may not inspect are left out.
pub fn without_cgroup(init_pid: i32) -> Vec<i32> {
    if init_pid <= 0 {
        return Vec::new();
    }
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(init_ns) = ns(&init_pid.to_string()) else {
        return Vec::new();
    };
    let own_ns = ns("self");
    let mut parents = Vec::new();
    let mut members = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if own_ns.as_ref() != Some(&init_ns) {
            if ns(&pid.to_string()).as_ref() == Some(&init_ns) {
                members.push(pid);
            }
        } else if let Some(ppid) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| parent_of(&s))
        {
            parents.push((pid, ppid));
        }
    }
    if own_ns.as_ref() == Some(&init_ns) {
        members = descendants(&parents, init_pid);
    }
    members.sort_unstable();
    members
}

/// The parent pid from the text of /proc/PID/stat (the field after the state, which follows
/// the parenthesised command name; the name itself may hold spaces and parentheses).
fn parent_of(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `root` and every process below it in the (pid, ppid) list.
fn descendants(parents: &[(i32, i32)], root: i32) -> Vec<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (pid, ppid) in parents {
        children.entry(*ppid).or_default().push(*pid);
    }
    let mut out = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        if out.insert(p) {
            todo.extend(children.get(&p).into_iter().flatten());
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_from_stat_with_odd_names() {
        assert_eq!(parent_of("42 (sleep) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_of("43 (a) b (c) R 9 1 1"), Some(9));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn descendants_follow_the_tree_only() {
        let t = [(10, 1), (11, 10), (12, 11), (13, 1), (14, 12)];
        assert_eq!(descendants(&t, 10), vec![10, 11, 12, 14]);
        assert_eq!(descendants(&t, 13), vec![13]);
    }

    #[test]
    fn this_process_tree_is_found() {
        let me = std::process::id() as i32;
        assert!(without_cgroup(me).contains(&me));
        assert!(without_cgroup(0).is_empty());
    }
}
