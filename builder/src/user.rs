//! `USER name[:group]` to numeric ids, from the image's /etc/passwd and
//! /etc/group.

/// Numeric identity of a RUN process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership).
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || l.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 || l.starts_with('#') {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// The name of user `uid` in passwd-format text.
pub fn user_name(passwd: &str, uid: u32) -> Option<&str> {
    passwd_entries(passwd)
        .find(|e| e.uid == uid && !e.name.is_empty())
        .map(|e| e.name)
}

/// The name of group `gid` in group-format text.
pub fn group_name(group: &str, gid: u32) -> Option<&str> {
    group_entries(group)
        .find(|(name, g, _)| *g == gid && !name.is_empty())
        .map(|(name, _, _)| name)
}

/// Resolves `spec` (`user`, `uid`, `user:group`, `uid:gid`, ...) with the
/// given file contents. Names must exist; numbers need not.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser, String> {
    if spec.is_empty() {
        return Ok(ResolvedUser::default());
    }
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd)
            .find(|e| e.uid == uid)
            .map(|e| (e.name.to_string(), e.uid, e.gid))
            .or(Some((String::new(), uid, 0))),
        Err(_) => passwd_entries(passwd)
            .find(|e| e.name == user)
            .map(|e| (e.name.to_string(), e.uid, e.gid)),
    };
    let Some((name, uid, mut gid)) = entry else {
        return Err(format!(
            "unable to find user {user}: no matching entries in passwd file"
        ));
    };
    let mut additional = Vec::new();
    match grp {
        Some(g) => {
            gid = group_id(g, group)?;
        }
        None if !name.is_empty() => {
            for (_, id, members) in group_entries(group) {
                if members.contains(&name.as_str()) && id != gid && !additional.contains(&id) {
                    additional.push(id);
                }
            }
        }
        None => {}
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

/// Resolves a `COPY/ADD --chown=user[:group]` value in the image's
/// passwd/group text. Unlike USER, a missing group means the gid is the
/// uid (Docker's documented rule, and BuildKit's behaviour), not the
/// user's primary group.
pub fn resolve_chown(spec: &str, passwd: &str, group: &str) -> Result<(u32, u32), String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => passwd_entries(passwd)
            .find(|e| e.name == user)
            .map(|e| e.uid)
            .ok_or_else(|| {
                format!("unable to find user {user}: no matching entries in passwd file")
            })?,
    };
    let gid = match grp {
        None => uid,
        Some(g) => group_id(g, group)?,
    };
    Ok((uid, gid))
}

/// A group given by number or by name (looked up in the group text).
fn group_id(g: &str, group: &str) -> Result<u32, String> {
    match g.parse::<u32>() {
        Ok(n) => Ok(n),
        Err(_) => group_entries(group)
            .find(|(n, _, _)| *n == g)
            .map(|(_, id, _)| id)
            .ok_or_else(|| format!("unable to find group {g}: no matching entries in group file")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_values() {
        let r = |s| resolve_chown(s, PASSWD, GROUP);
        assert_eq!(r("app"), Ok((1000, 1000)));
        assert_eq!(r("1234"), Ok((1234, 1234)));
        assert_eq!(r("app:wheel"), Ok((1000, 10)));
        assert_eq!(r("5:6"), Ok((5, 6)));
        assert_eq!(r("0:wheel"), Ok((0, 10)));
        assert!(r("nobody").expect_err("user").contains("passwd"));
        assert!(r("app:nogroup").expect_err("group").contains("group file"));
    }

    #[test]
    fn names_of_ids_come_from_passwd_and_group_text() {
        let t = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        assert_eq!(user_name(t, 1000), Some("bob"));
        assert_eq!(user_name(t, 0), Some("root"));
        assert_eq!(user_name(t, 7), None);
        assert_eq!(group_name("grp:x:50:a,b\n", 50), Some("grp"));
        assert_eq!(group_name("grp:x:50:a,b\n", 51), None);
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\n";

    #[test]
    fn users() {
        let r = |s| resolve_user(s, PASSWD, GROUP);
        assert_eq!(r("").expect("root").uid, 0);
        assert_eq!(
            r("app").expect("app"),
            ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10]
            }
        );
        assert_eq!(r("1000:10").expect("num").gid, 10);
        assert_eq!(
            r("4242").expect("unknown uid"),
            ResolvedUser {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(r("app:wheel").expect("group").gid, 10);
        assert!(r("nobody")
            .expect_err("missing")
            .contains("no matching entries in passwd"));
        assert!(r("app:nogroup")
            .expect_err("missing")
            .contains("group file"));
    }
}
