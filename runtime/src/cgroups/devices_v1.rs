//! The v1 devices controller, emulated: the spec's rule list is folded the way the kernel
//! applies `devices.allow`/`devices.deny` writes, and only the end state is written (one
//! reset plus the exceptions). Redundant rules (a deny under deny-all, an allow that a later
//! deny takes back) are never written, so they cannot fail against a restrictive parent, and
//! a long list costs a few writes. Pure: unit-tested without root.

use std::collections::BTreeMap;

/// One device rule in the kernel's text form (`c 1:3 rwm`, `a *:* rwm`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    kind: char,
    major: Option<u32>,
    minor: Option<u32>,
    access: u8,
}

const R: u8 = 1;
const W: u8 = 2;
const M: u8 = 4;

fn parse(rule: &str) -> Option<Rule> {
    let mut it = rule.split_whitespace();
    let kind = it.next()?.chars().next()?;
    let (major, minor) = match it.next() {
        Some(n) => {
            let (a, b) = n.split_once(':')?;
            let num = |s: &str| {
                if s == "*" {
                    Ok(None)
                } else {
                    s.parse().map(Some)
                }
            };
            (num(a).ok()?, num(b).ok()?)
        }
        None => (None, None),
    };
    let mut access = 0;
    for c in it.next().unwrap_or("rwm").chars() {
        access |= match c {
            'r' => R,
            'w' => W,
            'm' => M,
            _ => return None,
        };
    }
    Some(Rule {
        kind,
        major,
        minor,
        access,
    })
}

fn text(kind: char, major: Option<u32>, minor: Option<u32>, access: u8) -> String {
    let n = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
    let mut a = String::new();
    for (bit, c) in [(R, 'r'), (W, 'w'), (M, 'm')] {
        if access & bit != 0 {
            a.push(c);
        }
    }
    format!("{kind} {}:{} {a}", n(major), n(minor))
}

type Key = (char, Option<u32>, Option<u32>);

/// The kernel's state of one devices cgroup: the default and the exceptions to it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    allow_all: bool,
    exceptions: BTreeMap<Key, u8>,
}

impl State {
    fn apply(&mut self, allow: bool, r: &Rule) {
        if r.kind == 'a' {
            self.allow_all = allow;
            self.exceptions.clear();
            return;
        }
        let key = (r.kind, r.major, r.minor);
        if allow == self.allow_all {
            // Same as the default: take the access bits out of a matching exception.
            if let Some(a) = self.exceptions.get_mut(&key) {
                *a &= !r.access;
                if *a == 0 {
                    self.exceptions.remove(&key);
                }
            }
        } else {
            *self.exceptions.entry(key).or_insert(0) |= r.access;
        }
    }
}

/// The writes that leave a fresh devices cgroup in the state the rules describe, as
/// (file, rule) pairs: the reset first (`a` to devices.deny or devices.allow), then the
/// exceptions. Starts from the kernel's default for a new cgroup (its parent's rules, which
/// berth never widens): a list that does not start with an `a` rule is written verbatim,
/// because its result depends on the inherited state.
pub fn plan(rules: &[(bool, String)]) -> Vec<(&'static str, String)> {
    let file = |allow: bool| {
        if allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    };
    let parsed: Option<Vec<(bool, Rule)>> = rules
        .iter()
        .map(|(a, t)| parse(t).map(|r| (*a, r)))
        .collect();
    let Some(parsed) = parsed else {
        return rules.iter().map(|(a, t)| (file(*a), t.clone())).collect();
    };
    let Some(start) = parsed.iter().position(|(_, r)| r.kind == 'a') else {
        return rules.iter().map(|(a, t)| (file(*a), t.clone())).collect();
    };
    // Rules before the first reset are overwritten by it.
    let mut st = State {
        allow_all: parsed[start].0,
        exceptions: BTreeMap::new(),
    };
    for (allow, r) in &parsed[start..] {
        st.apply(*allow, r);
    }
    let mut out = vec![(file(st.allow_all), "a".to_string())];
    for ((kind, major, minor), access) in &st.exceptions {
        out.push((file(!st.allow_all), text(*kind, *major, *minor, *access)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(bool, &str)]) -> Vec<(bool, String)> {
        list.iter().map(|(a, t)| (*a, t.to_string())).collect()
    }

    #[test]
    fn deny_all_then_allows_becomes_reset_plus_exceptions() {
        let p = plan(&rules(&[
            (false, "a *:* rwm"),
            (true, "c 1:3 rwm"),
            (true, "c 1:5 rwm"),
        ]));
        assert_eq!(
            p,
            vec![
                ("devices.deny", "a".to_string()),
                ("devices.allow", "c 1:3 rwm".to_string()),
                ("devices.allow", "c 1:5 rwm".to_string()),
            ]
        );
    }

    #[test]
    fn redundant_rules_are_folded_away() {
        let p = plan(&rules(&[
            (false, "a *:* rwm"),
            (false, "c 1:3 rwm"), // redundant under deny-all
            (true, "c 10:200 rwm"),
            (false, "c 10:200 w"), // takes back w
            (true, "c 5:1 rwm"),
            (false, "c 5:1 rwm"), // takes it all back
        ]));
        assert_eq!(
            p,
            vec![
                ("devices.deny", "a".to_string()),
                ("devices.allow", "c 10:200 rm".to_string()),
            ]
        );
    }

    #[test]
    fn allow_all_with_denies_and_wildcards() {
        let p = plan(&rules(&[
            (true, "a"),
            (false, "b *:* m"),
            (false, "c 4:* rw"),
        ]));
        assert_eq!(
            p,
            vec![
                ("devices.allow", "a".to_string()),
                ("devices.deny", "b *:* m".to_string()),
                ("devices.deny", "c 4:* rw".to_string()),
            ]
        );
    }

    #[test]
    fn without_a_reset_rules_are_written_as_given() {
        let r = rules(&[(true, "c 1:3 rwm"), (false, "c 1:3 w")]);
        assert_eq!(
            plan(&r),
            vec![
                ("devices.allow", "c 1:3 rwm".to_string()),
                ("devices.deny", "c 1:3 w".to_string()),
            ]
        );
    }
}
