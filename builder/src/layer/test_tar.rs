//! Test helpers: tar headers and archives made in memory.

use crate::layer::tarfmt::{EntryKind, TarHeader, TarWriter};

/// A header for `path` owned by the caller, mode 0755.
pub(crate) fn h(path: &str, kind: EntryKind) -> TarHeader {
    TarHeader {
        path: path.into(),
        kind,
        mode: 0o755,
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        mtime: 1_000,
        xattrs: Vec::new(),
    }
}

/// A tar archive of `entries`.
pub(crate) fn tar_of(entries: &[(TarHeader, &[u8])]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (hd, data) in entries {
        w.append(hd, &mut &data[..]).expect("append");
    }
    w.finish().expect("finish")
}
