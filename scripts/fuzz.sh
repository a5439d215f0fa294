#!/usr/bin/env bash
# `npm run fuzz [-- SECONDS [TARGET...]]`: runs each cargo-fuzz target in fuzz/ for SECONDS (default 60), starting
# from its seeds (fuzz/seeds/<target>, kept in git) and the corpus earlier runs grew (fuzz/corpus, not kept).
# A crash, a panic or an out-of-memory input fails the run (libFuzzer saves it under fuzz/artifacts/<target>/);
# a slow machine only runs fewer inputs. Needs the nightly toolchain; installs cargo-fuzz when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --version 0.13.2 --locked)"
  cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

cargo +nightly fuzz build
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  if ! cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $target FAILED (the input is under fuzz/artifacts/$target/)"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz: $target ok, $runs inputs in ${seconds} s, corpus $(ls "corpus/$target" | wc -l) inputs"
  rm -f "$log"
done
