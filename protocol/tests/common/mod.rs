//! What the protocol crate's test files share. Each test file is its own crate and uses
//! only part of this module, hence the `dead_code` allowance.

#![allow(dead_code)]

use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

pub(crate) mod circle;

/// A proptest configuration: `cases` by default (`PROPTEST_CASES` overrides it for a longer
/// run), with counterexamples saved to `proptest-regressions/<file>.txt` and replayed first.
pub(crate) fn proptest_config(cases: u32, file: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..ProptestConfig::default()
    }
}
