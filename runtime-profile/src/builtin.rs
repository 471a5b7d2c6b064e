//! The profiles shipped with the kit, as files users copy (`suites/examples/runtimes/`) and
//! by name (`--runtime containerd-crun`).

use std::path::Path;

use crate::load::{LoadError, load_str};
use crate::model::RuntimeProfile;

/// Name, origin and text of every shipped profile.
pub const SHIPPED: [(&str, &str, &str); 4] = [
    ("fake-cri", "suites/examples/runtimes/fake-cri.yaml", include_str!("../../suites/examples/runtimes/fake-cri.yaml")),
    ("containerd", "suites/examples/runtimes/containerd.yaml", include_str!("../../suites/examples/runtimes/containerd.yaml")),
    (
        "containerd-crun",
        "suites/examples/runtimes/containerd-crun.yaml",
        include_str!("../../suites/examples/runtimes/containerd-crun.yaml"),
    ),
    ("fake-cri-image", "suites/examples/runtimes/fake-cri-image.yaml", include_str!("../../suites/examples/runtimes/fake-cri-image.yaml")),
];

/// The shipped profile called `name`, if there is one.
pub fn shipped(name: &str) -> Option<Result<RuntimeProfile, LoadError>> {
    SHIPPED.iter().find(|(n, _, _)| *n == name).map(|(_, origin, text)| load_str(text, Path::new(origin)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_loads_under_its_name() {
        for (name, _, _) in SHIPPED {
            let p = shipped(name).unwrap().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.name, name);
        }
        assert!(shipped("cri-o").is_none());
    }
}
