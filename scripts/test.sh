#!/usr/bin/env bash
# Runs every test of the project: the README's test command.
# Unit tests, the storage conformance suite on a real SQLite file, HTTP integration tests
# against a real server on port 0, and CLI tests that run the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --all-targets --no-fail-fast
fi
