#!/usr/bin/env bash
# Every check the project has, in the order that fails fastest: format, lint, types, import
# contracts, then the test tiers (unit, serving, e2e on a real local control plane).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== ruff format --check"; ruff format --check operator tests benchmarks
echo "== ruff check";          ruff check operator tests benchmarks
echo "== mypy";                mypy
echo "== import-linter";       lint-imports
if [[ "${1:-}" == "--lint-only" ]]; then exit 0; fi

echo "== pytest"
set +e
pytest -p no:cacheprovider "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit $status
