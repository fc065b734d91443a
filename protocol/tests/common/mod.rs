//! What the protocol crate's test files share.

use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

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
