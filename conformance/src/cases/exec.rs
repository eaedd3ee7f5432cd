//! Chapter exec.

use crate::case::Case;

/// The exec chapter.
pub fn cases() -> Vec<Case> {
    vec![]
}
