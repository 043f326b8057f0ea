#!/usr/bin/env bash
# Long chaos runs, one after the other: scripts/chaos-soak.sh OUTDIR "ARGS" ["ARGS" ...]
# Each ARGS is passed to test/chaos/run.ts (e.g. "--duration 600 --seed 11 --members 5").
# Needs `npm run build` first (runs dist/ as it is: no rebuild between runs). Appends one
# line per run to OUTDIR/results.tsv: start, exit code, wall seconds, args, summary lines.
set -u
out=${1:?usage: chaos-soak.sh OUTDIR ARGS...}
shift
mkdir -p "$out"
cd "$(dirname "$0")/.."
for a in "$@"; do
  name=$(echo "$a" | tr -c 'a-zA-Z0-9\n-' '_' | tr -s '_')
  log="$out/run${name}.log"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  npx vite-node test/chaos/run.ts -- $a >"$log" 2>&1
  rc=$?
  t1=$(date +%s)
  {
    printf '%s\trc=%s\t%ss\t%s\n' "$(date -u -d @"$t0" +%FT%TZ)" "$rc" "$((t1 - t0))" "$a"
    grep -E '^(operations|faults|members|linearizability|watch|acknowledged|VERDICT)' "$log" | sed 's/^/\t/'
  } >>"$out/results.tsv"
done
