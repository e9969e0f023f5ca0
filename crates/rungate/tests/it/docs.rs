//! Documentation that names paths is checked against the tree, so it cannot rot.

use std::path::Path;

const ROOTS: [&str; 8] = [
    "crates/",
    "dashboard/",
    "bench/",
    "sdk-tests/",
    "scripts/",
    ".ci/",
    "examples/",
    "migrations/",
];

#[test]
fn every_path_named_in_the_docs_exists() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut checked = 0;
    for doc in ["ARCHITECTURE.md", "README.md"] {
        let text = std::fs::read_to_string(repo.join(doc)).unwrap_or_default();
        assert!(!text.is_empty(), "{doc} is missing");
        for (i, span) in text.split('`').enumerate() {
            let candidate = span.split_whitespace().next().unwrap_or_default();
            if i % 2 == 1 && ROOTS.iter().any(|root| candidate.starts_with(root)) {
                assert!(
                    repo.join(candidate).exists(),
                    "{doc} names {candidate}, which does not exist"
                );
                checked += 1;
            }
        }
        // Paths in the code-map block are listed at the start of lines.
        for line in text.lines() {
            let first = line.split_whitespace().next().unwrap_or_default();
            if ROOTS.iter().any(|root| first.starts_with(root)) {
                assert!(
                    repo.join(first).exists(),
                    "{doc} lists {first}, which does not exist"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 10,
        "expected the docs to name paths; checked {checked}"
    );
}
