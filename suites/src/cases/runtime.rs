//! Area `runtime`: CRI conformance (critest-like), run against every runtime backend.

use crate::catalog::Case;

pub fn cases() -> Vec<Case> {
    vec![]
}
