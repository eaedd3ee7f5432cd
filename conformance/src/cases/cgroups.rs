//! Chapter cgroups.

use crate::case::Case;

/// The cgroups chapter.
pub fn cases() -> Vec<Case> {
    vec![]
}
