//! Chapter devices.

use crate::case::Case;

/// The devices chapter.
pub fn cases() -> Vec<Case> {
    vec![]
}
