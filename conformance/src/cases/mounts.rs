//! Filesystem: mounts and their options, root.readonly, maskedPaths, readonlyPaths,
//! rootfsPropagation, the default /dev and special filesystems, symlinked mount targets.

use crate::bundle::Bundle;
use crate::case;
use crate::case::{Case, Ctx, Need};
use crate::error::{io, Result};
use serde_json::{json, Value};

/// The mounts chapter.
pub fn cases() -> Vec<Case> {
    const C: &str = "mounts";
    vec![
        case!(
            C,
            "tmpfs-options",
            "a tmpfs mount gets its flags and data options; its target is created",
            [],
            tmpfs_options
        ),
        case!(
            C,
            "bind",
            "a bind mount shows the host directory, read-write both ways",
            [],
            bind
        ),
        case!(
            C,
            "bind-ro",
            "a bind mount with ro is read-only",
            [],
            bind_ro
        ),
        case!(
            C,
            "bind-file",
            "a single file can be bind-mounted",
            [],
            bind_file
        ),
        case!(
            C,
            "bind-missing-source",
            "a bind mount of a missing source fails",
            [],
            bind_missing_source
        ),
        case!(
            C,
            "root-readonly",
            "root.readonly makes / read-only but not /dev",
            [],
            root_readonly
        ),
        case!(
            C,
            "masked-paths",
            "maskedPaths hide files (as /dev/null) and directories (empty, read-only)",
            [],
            masked_paths
        ),
        case!(
            C,
            "readonly-paths",
            "readonlyPaths are read-only, their parents stay writable",
            [],
            readonly_paths
        ),
        case!(
            C,
            "default-devices",
            "the default /dev nodes and symlinks exist",
            [],
            default_devices
        ),
        case!(
            C,
            "special-filesystems",
            "proc, tmpfs /dev, devpts, shm, mqueue and read-only sysfs are mounted",
            [],
            special_filesystems
        ),
        case!(
            C,
            "mount-propagation",
            "rshared/rprivate mount options set the mount's propagation",
            [],
            mount_propagation
        ),
        case!(
            C,
            "rootfs-propagation",
            "rootfsPropagation accepts private/slave/shared and rejects others",
            [],
            rootfs_propagation
        ),
        case!(
            C,
            "symlink-target",
            "a mount target that is a symlink resolves inside the rootfs",
            [],
            symlink_target
        ),
        case!(
            C,
            "tmpcopyup",
            "a tmpfs with tmpcopyup starts with the image's files, modes kept (runc extension)",
            [],
            tmpcopyup
        ),
        case!(
            C,
            "tmpcopyup-readonly-root",
            "podman --read-only: a read-only root with tmpcopyup tmpfs mounts on /run and /tmp",
            [],
            tmpcopyup_readonly_root
        ),
        case!(
            C,
            "tmpfs-keeps-dir-mode",
            "a tmpfs without mode= over an image directory takes that directory's mode",
            [],
            tmpfs_keeps_dir_mode
        ),
        case!(
            C,
            "dev-readonly",
            "a read-only /dev still gets its devices, symlinks and /dev/pts",
            [],
            dev_readonly
        ),
        case!(
            C,
            "recursive-readonly",
            "rro makes a bind and the mounts below it read-only (mount_setattr)",
            [],
            recursive_readonly
        ),
        case!(
            C,
            "recursive-attributes",
            "rnosuid, rnodev, rnoexec and rnoatime reach the mounts below a bind",
            [],
            recursive_attributes
        ),
        case!(
            C,
            "proc-bind-host-pidns",
            "the host's procfs may be bound onto /proc when the pid namespace is shared; masks still apply",
            [],
            proc_bind_host_pidns
        ),
        case!(
            C,
            "proc-bind-new-pidns",
            "a procfs bound onto /proc with a new pid namespace is mounted: it shows its source's processes",
            [],
            proc_bind_new_pidns
        ),
        case!(
            C,
            "relative-destination",
            "a relative mount destination (deprecated) is taken relative to / and mounted",
            [],
            relative_destination
        ),
        case!(
            C,
            "bind-inapplicable-options-ignored",
            "filesystem data options (mode=755) and unknown options on a bind mount are ignored, not fatal",
            [],
            bind_inapplicable_options_ignored
        ),
        case!(
            C,
            "idmap",
            "an idmapped bind shows files with the mount's mappings; new files land mapped back",
            [Need::MountOption("idmap")],
            idmap
        ),
        case!(
            C,
            "cgroup-mount",
            "a cgroup mount shows the container's controllers",
            [Need::CgroupV1("memory")],
            cgroup_mount
        ),
    ]
}

fn mount_entry(f: &Value, path: &str) -> Value {
    f[path]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or(Value::Null)
}

fn has_opt(v: &Value, field: &str, opt: &str) -> bool {
    v[field]
        .as_str()
        .map(|s| s.split(',').any(|o| o == opt))
        .unwrap_or(false)
}

fn tmpfs_options(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["mount", "/mnt/t/deep"], |b| {
        b.add_mount(
            json!({"destination": "/mnt/t/deep", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]}),
        );
    })?;
    let m = mount_entry(&f, "/mnt/t/deep");
    ctx.check_eq(
        "it is a tmpfs at the created target",
        m["fstype"].as_str(),
        Some("tmpfs"),
    );
    for o in ["nosuid", "nodev", "noexec"] {
        ctx.check(
            format!("{o} is set"),
            has_opt(&m, "options", o),
            format!("{m}"),
        );
    }
    ctx.check(
        "size=1m is applied",
        has_opt(&m, "super_options", "size=1024k"),
        format!("{m}"),
    );
    ctx.check(
        "mode=700 is applied",
        has_opt(&m, "super_options", "mode=700"),
        format!("{m}"),
    );
    Ok(())
}

fn host_dir(ctx: &Ctx, name: &str, file: &str, text: &str) -> Result<std::path::PathBuf> {
    let d = ctx.work.join(name);
    std::fs::create_dir_all(&d).map_err(io("creating", &d))?;
    let p = d.join(file);
    std::fs::write(&p, text).map_err(io("writing", &p))?;
    Ok(d)
}

fn bind(ctx: &mut Ctx) -> Result<()> {
    let d = host_dir(ctx, "hostdata", "file", "from-host")?;
    let mut b = ctx.bundle(&[])?;
    b.sh("cat /data/file; echo from-container > /data/new");
    b.add_mount(
        json!({"destination": "/data", "type": "bind", "source": d, "options": ["rbind", "rw"]}),
    );
    let out = ctx.run(&b)?;
    ctx.check_eq("the host file is visible", out.stdout.trim(), "from-host");
    let new = std::fs::read_to_string(d.join("new")).unwrap_or_default();
    ctx.check_eq(
        "a file written inside appears on the host",
        new.trim(),
        "from-container",
    );
    Ok(())
}

fn bind_ro(ctx: &mut Ctx) -> Result<()> {
    let d = host_dir(ctx, "hostdata", "file", "x")?;
    let f = ctx.checker(&["access", "/data", "/data/file"], |b| {
        b.add_mount(json!({"destination": "/data", "type": "bind", "source": d, "options": ["rbind", "ro"]}));
    })?;
    ctx.check_eq(
        "the directory is readable",
        f["/data"]["readable"].as_bool(),
        Some(true),
    );
    ctx.check_eq(
        "it is not writable",
        f["/data"]["writable"].as_bool(),
        Some(false),
    );
    ctx.check_eq(
        "the file in it is not writable",
        f["/data/file"]["writable"].as_bool(),
        Some(false),
    );
    let m = ctx.checker(&["mount", "/data"], |b| {
        b.add_mount(
            json!({"destination": "/data", "type": "bind", "source": d, "options": ["bind", "ro"]}),
        );
    })?;
    let e = mount_entry(&m, "/data");
    ctx.check(
        "mountinfo says ro",
        has_opt(&e, "options", "ro"),
        format!("{e}"),
    );
    Ok(())
}

fn bind_file(ctx: &mut Ctx) -> Result<()> {
    let d = host_dir(ctx, "hostfile", "conf", "file-content")?;
    let mut b = ctx.bundle(&["/bin/cat", "/etc/bound.conf"])?;
    b.add_mount(json!({"destination": "/etc/bound.conf", "type": "bind",
        "source": d.join("conf"), "options": ["bind", "ro"]}));
    let out = ctx.run(&b)?;
    ctx.check_eq(
        "the bound file's content is visible",
        out.stdout.trim(),
        "file-content",
    );
    Ok(())
}

fn bind_missing_source(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.checker_bundle(&["ns"])?;
    let missing = ctx.work.join("does-not-exist");
    b.add_mount(
        json!({"destination": "/data", "type": "bind", "source": missing, "options": ["bind"]}),
    );
    let out = ctx.run(&b)?;
    ctx.check_fails("run fails", &out);
    Ok(())
}

fn root_readonly(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["access", "/", "/tmp", "/dev", "/dev/shm"], |b| {
        b.config["root"]["readonly"] = json!(true);
    })?;
    ctx.check_eq(
        "/ is not writable",
        f["/"]["writable"].as_bool(),
        Some(false),
    );
    ctx.check_eq(
        "/tmp (on the root) is not writable",
        f["/tmp"]["writable"].as_bool(),
        Some(false),
    );
    ctx.check_eq(
        "/dev (tmpfs) stays writable",
        f["/dev"]["writable"].as_bool(),
        Some(true),
    );
    ctx.check_eq(
        "/dev/shm stays writable",
        f["/dev/shm"]["writable"].as_bool(),
        Some(true),
    );
    let m = ctx.checker(&["mount", "/"], |b| {
        b.config["root"]["readonly"] = json!(true)
    })?;
    let e = mount_entry(&m, "/");
    ctx.check(
        "mountinfo of / says ro",
        has_opt(&e, "options", "ro"),
        format!("{e}"),
    );
    Ok(())
}

fn masked_paths(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    let secret = b.rootfs().join("var/secret");
    std::fs::create_dir_all(&secret).map_err(io("creating", &secret))?;
    std::fs::write(secret.join("key"), "s3cret").map_err(io("writing", secret.join("key")))?;
    b.config["linux"]["maskedPaths"] = json!([
        "/proc/keys",
        "/proc/timer_list",
        "/var/secret",
        "/no/such/path"
    ]);
    b.sh("echo keys=$(busybox cat /proc/keys | wc -c); echo timer=$(busybox cat /proc/timer_list | wc -c); echo ls=$(ls -A /var/secret | wc -l); touch /var/secret/x 2>/dev/null && echo wrote; true");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds (a missing masked path is ignored)", &out);
    ctx.check(
        "/proc/keys reads empty",
        out.stdout.contains("keys=0"),
        format!("{out:?}"),
    );
    ctx.check(
        "/proc/timer_list reads empty",
        out.stdout.contains("timer=0"),
        format!("{out:?}"),
    );
    ctx.check(
        "the masked directory is empty",
        out.stdout.contains("ls=0"),
        format!("{out:?}"),
    );
    ctx.check(
        "the masked directory is read-only",
        !out.stdout.contains("wrote"),
        format!("{out:?}"),
    );
    let f = ctx.checker(&["stat", "/proc/keys"], |b: &mut Bundle| {
        b.config["linux"]["maskedPaths"] = json!(["/proc/keys"]);
    })?;
    let st = &f["/proc/keys"];
    ctx.check(
        "a masked file is /dev/null (char 1:3)",
        st["type"] == "c" && st["major"] == 1 && st["minor"] == 3,
        format!("{st}"),
    );
    Ok(())
}

fn readonly_paths(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.checker_bundle(&[
        "access",
        "/proc/sys",
        "/proc/sys/kernel/hostname",
        "/var/ro",
        "/var",
    ])?;
    let ro = b.rootfs().join("var/ro");
    std::fs::create_dir_all(&ro).map_err(io("creating", &ro))?;
    b.config["linux"]["readonlyPaths"] = json!(["/proc/sys", "/var/ro"]);
    let f = ctx.run_json(&b)?;
    ctx.check_eq(
        "/proc/sys is not writable",
        f["/proc/sys/kernel/hostname"]["writable"].as_bool(),
        Some(false),
    );
    ctx.check_eq(
        "/proc/sys is still readable",
        f["/proc/sys/kernel/hostname"]["readable"].as_bool(),
        Some(true),
    );
    ctx.check_eq(
        "/var/ro is not writable",
        f["/var/ro"]["writable"].as_bool(),
        Some(false),
    );
    ctx.check_eq(
        "/var stays writable",
        f["/var"]["writable"].as_bool(),
        Some(true),
    );
    Ok(())
}

fn default_devices(ctx: &mut Ctx) -> Result<()> {
    let devs = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let links = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ];
    let mut args = vec!["stat"];
    args.extend(devs.iter().map(|d| d.0));
    args.extend(links.iter().map(|l| l.0));
    let f = ctx.checker(&args, |_| {})?;
    for (p, major, minor) in devs {
        let st = &f[p];
        ctx.check(
            format!("{p} is char {major}:{minor}"),
            st["type"] == "c" && st["major"] == major && st["minor"] == minor,
            format!("{st}"),
        );
    }
    for (p, target) in links {
        let st = &f[p];
        ctx.check(
            format!("{p} links to {target}"),
            st["type"] == "l" && st["target"] == target,
            format!("{st}"),
        );
    }
    Ok(())
}

fn special_filesystems(ctx: &mut Ctx) -> Result<()> {
    let points = [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ];
    let mut args = vec!["mount"];
    args.extend(points.iter().map(|p| p.0));
    let f = ctx.checker(&args, |_| {})?;
    for (p, fs) in points {
        let e = mount_entry(&f, p);
        ctx.check_eq(format!("{p} is {fs}"), e["fstype"].as_str(), Some(fs));
    }
    let sys = mount_entry(&f, "/sys");
    ctx.check(
        "/sys is read-only",
        has_opt(&sys, "options", "ro"),
        format!("{sys}"),
    );
    Ok(())
}

fn optional_fields(e: &Value) -> Vec<String> {
    e["optional"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn mount_propagation(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["mount", "/mnt/s", "/mnt/p"], |b| {
        b.add_mount(json!({"destination": "/mnt/s", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}));
        b.add_mount(json!({"destination": "/mnt/p", "type": "tmpfs", "source": "tmpfs", "options": ["rprivate"]}));
    })?;
    let s = mount_entry(&f, "/mnt/s");
    ctx.check(
        "rshared: the mount is shared",
        optional_fields(&s).iter().any(|o| o.starts_with("shared:")),
        format!("{s}"),
    );
    let p = mount_entry(&f, "/mnt/p");
    ctx.check(
        "rprivate: the mount has no peers",
        !p.is_null() && optional_fields(&p).is_empty(),
        format!("{p}"),
    );
    Ok(())
}

fn rootfs_propagation(ctx: &mut Ctx) -> Result<()> {
    for mode in ["private", "slave", "shared"] {
        let mut b = ctx.checker_bundle(&["mount", "/"])?;
        b.config["linux"]["rootfsPropagation"] = json!(mode);
        let out = ctx.run(&b)?;
        ctx.check_ok(format!("rootfsPropagation {mode} runs"), &out);
    }
    let mut b = ctx.checker_bundle(&["mount", "/"])?;
    b.config["linux"]["rootfsPropagation"] = json!("bogus");
    let out = ctx.run(&b)?;
    ctx.check_fails("rootfsPropagation bogus is rejected", &out);
    Ok(())
}

fn symlink_target(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.checker_bundle(&["mount", "/tmp"])?;
    let mnt = b.rootfs().join("mnt");
    std::fs::create_dir_all(&mnt).map_err(io("creating", &mnt))?;
    let link = mnt.join("link");
    std::os::unix::fs::symlink("../../../../../../../../tmp", &link)
        .map_err(io("symlinking", &link))?;
    b.add_mount(json!({"destination": "/mnt/link", "type": "tmpfs", "source": "tmpfs", "options": ["size=2m"]}));
    let f = ctx.run_json(&b)?;
    let e = mount_entry(&f, "/tmp");
    ctx.check_eq(
        "the tmpfs landed on the rootfs's /tmp",
        e["fstype"].as_str(),
        Some("tmpfs"),
    );
    Ok(())
}

fn cgroup_mount(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["mount", "/sys/fs/cgroup", "/sys/fs/cgroup/memory"], |b| {
        b.add_mount(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        );
    })?;
    let top = mount_entry(&f, "/sys/fs/cgroup");
    ctx.check("/sys/fs/cgroup is mounted", !top.is_null(), format!("{f}"));
    let mem = mount_entry(&f, "/sys/fs/cgroup/memory");
    ctx.check_eq(
        "/sys/fs/cgroup/memory is a cgroup v1 mount",
        mem["fstype"].as_str(),
        Some("cgroup"),
    );
    ctx.check(
        "it is read-only",
        has_opt(&mem, "options", "ro"),
        format!("{mem}"),
    );
    Ok(())
}

fn tmpcopyup(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    let seed = b.rootfs().join("srv/seed");
    std::fs::create_dir_all(seed.join("sub")).map_err(io("creating", &seed))?;
    std::fs::write(seed.join("sub/file"), "seeded").map_err(io("writing", &seed))?;
    std::os::unix::fs::symlink("sub/file", seed.join("link")).map_err(io("linking", &seed))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o750))
        .map_err(io("chmod", &seed))?;
    std::fs::set_permissions(
        seed.join("sub/file"),
        std::fs::Permissions::from_mode(0o640),
    )
    .map_err(io("chmod", &seed))?;
    b.add_mount(
        json!({"destination": "/srv/seed", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "tmpcopyup"]}),
    );
    b.sh("cat /srv/seed/link; echo; stat -c '%a' /srv/seed /srv/seed/sub/file; \
          grep ' /srv/seed ' /proc/self/mountinfo | sed 's/.* - //'; echo new > /srv/seed/new && echo wrote");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    let lines: Vec<&str> = out.stdout.lines().collect();
    ctx.check_eq(
        "the image's file is visible through its symlink",
        lines.first().copied(),
        Some("seeded"),
    );
    ctx.check_eq(
        "the directory keeps its mode",
        lines.get(1).copied(),
        Some("750"),
    );
    ctx.check_eq(
        "the file keeps its mode",
        lines.get(2).copied(),
        Some("640"),
    );
    ctx.check(
        "it is a tmpfs",
        lines.get(3).is_some_and(|l| l.starts_with("tmpfs ")),
        format!("{out:?}"),
    );
    ctx.check(
        "it is writable",
        out.stdout.contains("wrote"),
        format!("{out:?}"),
    );
    let host = std::fs::read_to_string(seed.join("sub/file")).unwrap_or_default();
    ctx.check_eq("the image is unchanged", host.as_str(), "seeded");
    ctx.check(
        "nothing was written to the image",
        !seed.join("new").exists(),
        "srv/seed/new exists in the rootfs",
    );
    Ok(())
}

fn tmpcopyup_readonly_root(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    let run = b.rootfs().join("run/lock");
    std::fs::create_dir_all(&run).map_err(io("creating", &run))?;
    b.config["root"]["readonly"] = json!(true);
    for d in ["/run", "/tmp"] {
        b.add_mount(json!({"destination": d, "type": "tmpfs", "source": "tmpfs",
            "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]}));
    }
    b.sh("test -d /run/lock && echo lock; touch /run/x /tmp/y && echo wrote; touch /etc/z 2>/dev/null || echo rootro");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    for (what, word) in [
        ("the image's /run/lock was copied up", "lock"),
        ("/run and /tmp are writable", "wrote"),
        ("the root stays read-only", "rootro"),
    ] {
        ctx.check(
            what,
            out.stdout.lines().any(|l| l == word),
            format!("{out:?}"),
        );
    }
    Ok(())
}

fn tmpfs_keeps_dir_mode(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    let d = b.rootfs().join("srv/cache");
    std::fs::create_dir_all(&d).map_err(io("creating", &d))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711))
        .map_err(io("chmod", &d))?;
    b.add_mount(json!({"destination": "/srv/cache", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}));
    b.add_mount(json!({"destination": "/srv/fresh", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}));
    b.sh("stat -c '%a' /srv/cache /srv/fresh");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    let lines: Vec<&str> = out.stdout.lines().collect();
    ctx.check_eq(
        "the tmpfs over an existing directory has its mode",
        lines.first().copied(),
        Some("711"),
    );
    ctx.check_eq(
        "a tmpfs on a new mount point has tmpfs's default mode",
        lines.get(1).copied(),
        Some("1777"),
    );
    Ok(())
}

fn dev_readonly(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    if let Some(ms) = b.config["mounts"].as_array_mut() {
        for m in ms.iter_mut().filter(|m| m["destination"] == "/dev") {
            if let Some(o) = m["options"].as_array_mut() {
                o.push(json!("ro"));
            }
        }
    }
    b.sh("test -c /dev/null && test -c /dev/zero && test -L /dev/fd && test -e /dev/pts/ptmx && echo devices; \
          touch /dev/new 2>/dev/null || echo readonly; echo x > /dev/null && echo null-writable; \
          grep ' /dev ' /proc/self/mountinfo | cut -d' ' -f6");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    let lines: Vec<&str> = out.stdout.lines().collect();
    ctx.check(
        "the default devices, symlinks and /dev/pts are there",
        lines.contains(&"devices"),
        format!("{out:?}"),
    );
    ctx.check(
        "/dev is read-only",
        lines.contains(&"readonly"),
        format!("{out:?}"),
    );
    ctx.check(
        "devices stay usable",
        lines.contains(&"null-writable"),
        format!("{out:?}"),
    );
    ctx.check(
        "mountinfo says ro for /dev",
        lines
            .last()
            .is_some_and(|l| l.split(',').any(|o| o == "ro")),
        format!("{out:?}"),
    );
    Ok(())
}

/// A host directory with a tmpfs mounted below it, for the recursive cases.
fn nested_source(ctx: &mut Ctx) -> Result<std::path::PathBuf> {
    let d = ctx.work.join("nested");
    std::fs::create_dir_all(&d).map_err(io("creating", &d))?;
    ctx.host_tmpfs(&d.join("sub"))?;
    Ok(d)
}

fn recursive_readonly(ctx: &mut Ctx) -> Result<()> {
    let d = nested_source(ctx)?;
    let mut b = ctx.bundle(&[])?;
    b.add_mount(
        json!({"destination": "/data", "type": "bind", "source": d, "options": ["rbind", "rro"]}),
    );
    b.sh("touch /data/top 2>/dev/null || echo top-ro; touch /data/sub/inner 2>/dev/null || echo sub-ro");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check(
        "the bind itself is read-only",
        out.stdout.lines().any(|l| l == "top-ro"),
        format!("{out:?}"),
    );
    ctx.check(
        "the mount below it is read-only too",
        out.stdout.lines().any(|l| l == "sub-ro"),
        format!("{out:?}"),
    );
    ctx.check(
        "the host's mount stays writable",
        std::fs::write(d.join("sub/host-write"), "x").is_ok(),
        "cannot write the host's nested tmpfs",
    );
    Ok(())
}

fn recursive_attributes(ctx: &mut Ctx) -> Result<()> {
    let d = nested_source(ctx)?;
    let f = ctx.checker(&["mount", "/data/sub"], |b| {
        b.add_mount(json!({"destination": "/data", "type": "bind", "source": d,
            "options": ["rbind", "rnosuid", "rnodev", "rnoexec", "rnoatime"]}));
    })?;
    let m = mount_entry(&f, "/data/sub");
    for o in ["nosuid", "nodev", "noexec", "noatime"] {
        ctx.check(
            format!("{o} is set on the nested mount"),
            has_opt(&m, "options", o),
            format!("{m}"),
        );
    }
    Ok(())
}

fn with_proc_bind(b: &mut Bundle) {
    if let Some(ms) = b.config["mounts"].as_array_mut() {
        for m in ms.iter_mut().filter(|m| m["destination"] == "/proc") {
            *m = json!({"destination": "/proc", "type": "bind", "source": "/proc",
                "options": ["rbind", "nosuid", "noexec", "nodev"]});
        }
    }
}

fn proc_bind_host_pidns(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    with_proc_bind(&mut b);
    b.remove_namespace("pid");
    b.config["linux"]["maskedPaths"] = json!(["/proc/keys"]);
    b.sh(&format!(
        "test -d /proc/{} && echo host-pids; echo keys=$(cat /proc/keys | wc -c)",
        std::process::id()
    ));
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check(
        "/proc shows the host's processes",
        out.stdout.contains("host-pids"),
        format!("{out:?}"),
    );
    ctx.check(
        "maskedPaths still hide /proc/keys",
        out.stdout.contains("keys=0"),
        format!("{out:?}"),
    );
    Ok(())
}

fn proc_bind_new_pidns(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    with_proc_bind(&mut b);
    b.sh(&format!(
        "test -d /proc/{} && echo host-pids",
        std::process::id()
    ));
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check(
        "/proc shows the processes of its source's pid namespace (the host's)",
        out.stdout.contains("host-pids"),
        format!("{out:?}"),
    );
    Ok(())
}

fn relative_destination(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    b.add_mount(
        json!({"destination": "rel/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["size=1m"]}),
    );
    b.sh("grep -c ' /rel/data ' /proc/self/mountinfo");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check_eq("the tmpfs is mounted on /rel/data", out.stdout.trim(), "1");
    Ok(())
}

fn bind_inapplicable_options_ignored(ctx: &mut Ctx) -> Result<()> {
    let d = host_dir(ctx, "hostdata", "file", "from-host")?;
    let mut b = ctx.bundle(&[])?;
    b.add_mount(json!({"destination": "/data", "type": "bind", "source": d,
        "options": ["rbind", "mode=755", "size=64k", "rro-typo"]}));
    b.sh("cat /data/file; echo x > /data/new && echo writable");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check(
        "the bind shows the host directory",
        out.stdout.contains("from-host"),
        format!("{out:?}"),
    );
    ctx.check(
        "the unknown option changes nothing (the bind stays writable)",
        out.stdout.contains("writable"),
        format!("{out:?}"),
    );
    Ok(())
}

fn idmap(ctx: &mut Ctx) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let d = host_dir(ctx, "idmapped", "file", "x")?;
    for p in [d.clone(), d.join("file")] {
        std::os::unix::fs::lchown(&p, Some(1000), Some(1000)).map_err(io("chown", &p))?;
    }
    let mut b = ctx.bundle(&[])?;
    b.add_mount(json!({"destination": "/data", "type": "bind", "source": d,
        "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}],
        "gidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}]}));
    b.sh("stat -c '%u:%g' /data/file; touch /data/new && echo created");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check_eq(
        "the host's 1000:1000 shows as 0:0",
        out.stdout.lines().next(),
        Some("0:0"),
    );
    let host = std::fs::metadata(d.join("new"))
        .map(|m| (m.uid(), m.gid()))
        .ok();
    ctx.check_eq(
        "a file made by root inside is 1000:1000 on the host",
        host,
        Some((1000, 1000)),
    );
    Ok(())
}
