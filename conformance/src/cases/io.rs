//! Chapter io.

use crate::case::Case;

/// The io chapter.
pub fn cases() -> Vec<Case> {
    vec![]
}
