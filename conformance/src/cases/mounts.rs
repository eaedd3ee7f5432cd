//! Chapter mounts.

use crate::case::Case;

/// The mounts chapter.
pub fn cases() -> Vec<Case> {
    vec![]
}
