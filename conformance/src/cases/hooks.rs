//! Chapter hooks.

use crate::case::Case;

/// The hooks chapter.
pub fn cases() -> Vec<Case> {
    vec![]
}
