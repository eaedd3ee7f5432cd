//! Checking a layer tar without extracting it: the rules of an overlay-mode
//! [`extract`](super::extract) into an empty directory, applied to a model
//! of the tree (path -> kind) instead of the file system. A pull runs it on
//! the bytes as they arrive, so an unsafe layer is refused before the image
//! is tagged, while the extraction itself waits for the layer's first use
//! (docs/design.md, "Pull does not unpack"). The extractor stays the
//! authority: anything this lets through is still contained when the layer
//! is extracted.

use std::collections::BTreeMap;
use std::io::Read;

use super::diff::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::extract::{clean_entry_path, valid_whiteout_target};
use super::LayerError;

/// What a path is in the modelled tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Symlink,
    Other,
}

/// Counts of what a check saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Entries in the layer (files, dirs, links, whiteouts).
    pub entries: u64,
}

/// The modelled tree of one layer.
#[derive(Default)]
struct Tree {
    paths: BTreeMap<String, Kind>,
}

impl Tree {
    /// Walks the parents of an entry as `ensure_dir` with
    /// `RESOLVE_NO_SYMLINKS` would: missing ones become directories, a
    /// symlink or a non-directory on the way is an error.
    fn ensure_parents(&mut self, parents: &[String]) -> Result<(), String> {
        let mut prefix = String::new();
        for p in parents {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(p);
            match self.paths.get(&prefix) {
                None => {
                    self.paths.insert(prefix.clone(), Kind::Dir);
                }
                Some(Kind::Dir) => {}
                Some(Kind::Symlink) => {
                    return Err(format!(
                        "cannot open its parent directory: {prefix} is a symlink (not followed in a layer)"
                    ))
                }
                Some(Kind::Other) => {
                    return Err(format!(
                        "cannot open its parent directory: {prefix} is not a directory"
                    ))
                }
            }
        }
        Ok(())
    }

    /// Removes `path` and everything under it.
    fn remove_all(&mut self, path: &str) {
        self.paths.remove(path);
        let under = format!("{path}/");
        let doomed: Vec<String> = self
            .paths
            .range(under.clone()..)
            .take_while(|(k, _)| k.starts_with(&under))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.paths.remove(&k);
        }
    }
}

/// Reads the (uncompressed) tar stream `reader` to its end and checks every
/// entry as an overlay-mode extraction would: clean relative paths, no
/// parent through a symlink or a file, valid whiteout names, hard links to
/// files earlier in the same layer, and (`strict`) no device nodes.
pub fn check<R: Read>(reader: R, strict: bool) -> Result<CheckStats, LayerError> {
    let mut tree = Tree::default();
    let mut stats = CheckStats::default();
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries().map_err(LayerError::Tar)? {
        let entry = entry.map_err(LayerError::Tar)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let unsafe_entry = |reason: String| LayerError::Unsafe {
            path: shown.clone(),
            reason,
        };
        let etype = entry.header().entry_type();
        if matches!(
            etype,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let parts = clean_entry_path(&raw).map_err(unsafe_entry)?;
        let Some((name, parents)) = parts.split_last() else {
            continue;
        };
        tree.ensure_parents(parents).map_err(unsafe_entry)?;
        stats.entries += 1;
        let full = parts.join("/");
        if name == OPAQUE_MARKER {
            continue;
        }
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            if !valid_whiteout_target(target) {
                return Err(unsafe_entry("invalid whiteout name".into()));
            }
            let mut victim = parents.join("/");
            if !victim.is_empty() {
                victim.push('/');
            }
            victim.push_str(target);
            tree.remove_all(&victim);
            // Overlay mode writes a 0/0 character device in its place.
            tree.paths.insert(victim, Kind::Other);
            continue;
        }
        let kind = match etype {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                if entry.link_name_bytes().is_none() {
                    return Err(unsafe_entry("symlink without a target".into()));
                }
                Kind::Symlink
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("hard link without a target".into()))?
                    .into_owned();
                let tparts = clean_entry_path(&target)
                    .map_err(|r| unsafe_entry(format!("hard link target: {r}")))?;
                if tparts.is_empty() {
                    return Err(unsafe_entry("hard link to the root directory".into()));
                }
                let tpath = tparts.join("/");
                let through_link = (1..tparts.len()).find_map(|i| {
                    let p = tparts[..i].join("/");
                    (tree.paths.get(&p) != Some(&Kind::Dir)).then_some(p)
                });
                if let Some(p) = through_link {
                    return Err(unsafe_entry(format!(
                        "hard link target {tpath} is not in this layer ({p} is not a directory of it)"
                    )));
                }
                match tree.paths.get(&tpath) {
                    Some(Kind::Other) | Some(Kind::Symlink) => {}
                    Some(Kind::Dir) => {
                        return Err(unsafe_entry(format!("hard link to {tpath}, a directory")))
                    }
                    None => {
                        return Err(unsafe_entry(format!(
                            "hard link target {tpath} is not in this layer"
                        )))
                    }
                }
                Kind::Other
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                if strict {
                    return Err(unsafe_entry(
                        "device nodes are not allowed in a layer".into(),
                    ));
                }
                // Skipped by the extractor.
                continue;
            }
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::GNUSparse
            | tar::EntryType::Fifo => Kind::Other,
            // Skipped by the extractor.
            _ => continue,
        };
        match tree.paths.get(&full) {
            Some(Kind::Dir) if kind == Kind::Dir => {}
            Some(_) => {
                tree.remove_all(&full);
                tree.paths.insert(full, kind);
            }
            None => {
                tree.paths.insert(full, kind);
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tarfmt::EntryKind;
    use crate::layer::test_tar::{h, tar_of};
    use crate::layer::ExtractMode;

    fn raw(name: &str, kind: tar::EntryType, link: &str) -> Vec<u8> {
        let mut hd = tar::Header::new_gnu();
        hd.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if !link.is_empty() {
            hd.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        hd.set_size(0);
        hd.set_mode(0o644);
        hd.set_entry_type(kind);
        hd.set_cksum();
        hd.as_bytes().to_vec()
    }

    fn finish(mut v: Vec<u8>) -> Vec<u8> {
        v.extend([0u8; 1024]);
        v
    }

    /// The check and a real overlay-mode extraction agree on each case.
    #[test]
    fn agrees_with_the_extractor() {
        let ok = vec![
            tar_of(&[
                (h("etc", EntryKind::Dir), b""),
                (h("etc/a", EntryKind::File { size: 1 }), b"a"),
                (h("etc/link", EntryKind::Hardlink("etc/a".into())), b""),
                (h("etc/.wh.gone", EntryKind::File { size: 0 }), b""),
                (h("opt/.wh..wh..opq", EntryKind::File { size: 0 }), b""),
                (h("s", EntryKind::Symlink(b"/etc".to_vec())), b""),
                (h("s", EntryKind::Dir), b""),
                (h("s/x", EntryKind::File { size: 0 }), b""),
                (h("f", EntryKind::File { size: 0 }), b""),
                (h("f", EntryKind::Dir), b""),
                (h("f/x", EntryKind::File { size: 0 }), b""),
            ]),
            finish(raw("dev/null", tar::EntryType::Char, "")),
        ];
        let bad = vec![
            ("abs", finish(raw("/etc/evil", tar::EntryType::Regular, ""))),
            (
                "dotdot",
                finish(raw("a/../../x", tar::EntryType::Regular, "")),
            ),
            (
                "through-symlink",
                finish(
                    [
                        raw("out", tar::EntryType::Symlink, "/tmp"),
                        raw("out/evil", tar::EntryType::Regular, ""),
                    ]
                    .concat(),
                ),
            ),
            (
                "through-file",
                finish(
                    [
                        raw("f", tar::EntryType::Regular, ""),
                        raw("f/x", tar::EntryType::Regular, ""),
                    ]
                    .concat(),
                ),
            ),
            (
                "hardlink-out",
                finish(raw("p", tar::EntryType::Link, "../../etc/passwd")),
            ),
            (
                "hardlink-missing",
                finish(raw("p", tar::EntryType::Link, "etc/passwd")),
            ),
            (
                "whiteout-through-symlink",
                finish(
                    [
                        raw("etc", tar::EntryType::Symlink, "/etc"),
                        raw("etc/.wh.passwd", tar::EntryType::Regular, ""),
                    ]
                    .concat(),
                ),
            ),
            (
                "bad-whiteout",
                finish(raw("a/.wh.", tar::EntryType::Regular, "")),
            ),
        ];
        for t in &ok {
            check(&t[..], false).expect("check ok");
            let dir = tempfile::tempdir().expect("tempdir");
            crate::layer::extract(&t[..], dir.path(), ExtractMode::Overlay).expect("extract ok");
        }
        for (name, t) in &bad {
            let e = check(&t[..], false).expect_err(name);
            assert!(matches!(e, LayerError::Unsafe { .. }), "{name}: {e}");
            let dir = tempfile::tempdir().expect("tempdir");
            assert!(
                crate::layer::extract(&t[..], dir.path(), ExtractMode::Overlay).is_err(),
                "{name}: the extractor accepts it"
            );
        }
        let dev = finish(raw("dev/evil", tar::EntryType::Char, ""));
        let e = check(&dev[..], true).expect_err("strict");
        assert!(e.to_string().contains("device nodes"), "{e}");
    }
}
