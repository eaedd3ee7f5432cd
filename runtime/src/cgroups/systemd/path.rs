//! `linux.cgroupsPath` for the systemd driver: `slice:prefix:name`, parsed as runc does, and
//! slice names expanded to their cgroup path (`a-b.slice` -> `/a.slice/a-b.slice`).

use crate::cgroups::CgroupError;

/// What the container's cgroupsPath names under the systemd driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitPath {
    /// The parent slice (`system.slice`, `user.slice`, `-.slice`, ...).
    pub slice: String,
    /// The unit berth starts: `prefix-name.scope`, or `name` itself when it ends in `.slice`.
    pub unit: String,
    /// The unit's cgroup below the hierarchy root, e.g. `/system.slice/berth-abc.scope`.
    pub cgroup: String,
}

/// The unit prefix used when cgroupsPath is empty (runc uses `runc`).
pub const DEFAULT_PREFIX: &str = "berth";

fn err(msg: String) -> CgroupError {
    CgroupError::Path(msg)
}

/// Parses `configured` (`slice:prefix:name`; empty means `:berth:<id>`). An empty slice means
/// `system.slice` for root and `user.slice` for `rootless`.
pub fn parse(configured: Option<&str>, id: &str, rootless: bool) -> Result<UnitPath, CgroupError> {
    let (slice, prefix, name) = match configured {
        None | Some("") => ("", DEFAULT_PREFIX, id),
        Some(p) => {
            let parts: Vec<&str> = p.split(':').collect();
            if parts.len() != 3 {
                return Err(err(format!(
                    "{p:?}: the systemd cgroup driver expects \"slice:prefix:name\" (e.g. \"system.slice:berth:{id}\")"
                )));
            }
            (parts[0], parts[1], parts[2])
        }
    };
    let slice = if slice.is_empty() {
        if rootless {
            "user.slice"
        } else {
            "system.slice"
        }
    } else {
        slice
    };
    let slice_path = expand_slice(slice)?;
    if name.is_empty() {
        return Err(err(format!(
            "{:?}: the name part (after the second ':') is empty",
            configured.unwrap_or_default()
        )));
    }
    let unit = if name.ends_with(".slice") {
        // A slice of its own (kubelet's pod slices): systemd places a slice by its name, so the
        // name must continue the parent's (`kubepods.slice` -> `kubepods-pod1.slice`).
        let own = expand_slice(name)?;
        let want = if slice_path == "/" {
            format!("/{name}")
        } else {
            format!("{slice_path}/{name}")
        };
        if own != want {
            return Err(err(format!(
                "slice {name:?} (the name part) is not directly below {slice:?}: its name must be \"{}-<name>.slice\"",
                slice.trim_end_matches(".slice")
            )));
        }
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    check_unit_name(&unit)?;
    let cgroup = if slice_path == "/" {
        format!("/{unit}")
    } else {
        format!("{slice_path}/{unit}")
    };
    Ok(UnitPath {
        slice: slice.to_string(),
        unit,
        cgroup,
    })
}

/// Expands a slice name to its cgroup path, as systemd lays slices out: `-.slice` is the root,
/// `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`.
pub fn expand_slice(slice: &str) -> Result<String, CgroupError> {
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err(err(format!(
            "slice {slice:?} (before the first ':') is not a slice name: it must end in \".slice\""
        )));
    };
    if slice == "-.slice" {
        return Ok("/".into());
    }
    if base.is_empty() || base.contains('/') {
        return Err(err(format!("slice {slice:?} is not a valid slice name")));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for comp in base.split('-') {
        if comp.is_empty() {
            return Err(err(format!(
                "slice {slice:?} is not a valid slice name: '-' must separate non-empty parts"
            )));
        }
        prefix.push_str(comp);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
        prefix.push('-');
    }
    Ok(path)
}

/// A unit name systemd accepts: `[A-Za-z0-9:_.\-@]`, at most 255 bytes, no `..`.
fn check_unit_name(unit: &str) -> Result<(), CgroupError> {
    let ok = unit.len() <= 255
        && unit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.-@\\".contains(&b));
    if !ok || unit.contains("..") {
        return Err(err(format!("{unit:?} is not a valid systemd unit name")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_prefix_name() {
        let u = parse(Some("system.slice:docker:abc"), "id", false).unwrap();
        assert_eq!(u.slice, "system.slice");
        assert_eq!(u.unit, "docker-abc.scope");
        assert_eq!(u.cgroup, "/system.slice/docker-abc.scope");
    }

    #[test]
    fn defaults() {
        let u = parse(None, "ctr1", false).unwrap();
        assert_eq!(u.cgroup, "/system.slice/berth-ctr1.scope");
        let u = parse(Some(""), "ctr1", true).unwrap();
        assert_eq!(u.cgroup, "/user.slice/berth-ctr1.scope");
        let u = parse(Some(":p:n"), "x", false).unwrap();
        assert_eq!(u.cgroup, "/system.slice/p-n.scope");
        let u = parse(Some("machine.slice::n"), "x", false).unwrap();
        assert_eq!(u.unit, "n.scope");
    }

    #[test]
    fn root_and_nested_slices() {
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("a.slice").unwrap(), "/a.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        let u = parse(Some("-.slice:p:n"), "x", false).unwrap();
        assert_eq!(u.cgroup, "/p-n.scope");
        let u = parse(Some("a-b.slice:p:n"), "x", false).unwrap();
        assert_eq!(u.cgroup, "/a.slice/a-b.slice/p-n.scope");
    }

    #[test]
    fn a_slice_as_name() {
        let u = parse(Some("kubepods.slice::kubepods-pod1.slice"), "x", false).unwrap();
        assert_eq!(u.unit, "kubepods-pod1.slice");
        assert_eq!(u.cgroup, "/kubepods.slice/kubepods-pod1.slice");
        let u = parse(Some("-.slice::top.slice"), "x", false).unwrap();
        assert_eq!(u.cgroup, "/top.slice");
        let e = parse(Some("system.slice::other-pod.slice"), "x", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not directly below \"system.slice\""), "{e}");
    }

    #[test]
    fn errors_name_the_field_and_the_problem() {
        for (p, want) in [
            ("a:b", "slice:prefix:name"),
            ("a:b:c:d", "slice:prefix:name"),
            ("system:p:n", "must end in \".slice\""),
            ("a--b.slice:p:n", "non-empty"),
            ("-a.slice:p:n", "non-empty"),
            ("a/b.slice:p:n", "not a valid slice"),
            (".slice:p:n", "not a valid slice"),
            ("system.slice:p:", "name part"),
            ("system.slice:p:a/b", "not a valid systemd unit name"),
        ] {
            let e = parse(Some(p), "x", false).unwrap_err().to_string();
            assert!(e.starts_with("linux.cgroupsPath: "), "{p}: {e}");
            assert!(e.contains(want), "{p}: {e}");
        }
    }
}
