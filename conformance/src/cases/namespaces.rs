//! Chapter namespaces.

use crate::case::Case;

/// The namespaces chapter.
pub fn cases() -> Vec<Case> {
    vec![]
}
