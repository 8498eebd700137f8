#!/usr/bin/env bash
# Issue 14's tuned benchmark, in the order docs/CHOICES.md ("The tuned benchmark") fixed before any trial ran,
# so that wherever it is cut the finished part is still a comparison. Every step is restartable and its
# finished trials and runs are kept in benchmarks/results/ledger/, so the plan continues across machines and
# sessions: run it again and it trains only what is missing. About 27 hours of a 2-core machine in all.
#   benchmarks/quality_tuned.sh          # from wherever the ledger stands
#   STEPS=2 benchmarks/quality_tuned.sh  # only the first two steps
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$PWD/.venv/bin/python}
# Every run of the plan comes from one version of the code, the commit it started from: later changes to
# what a seed trains (the client's loop and its dropout seeds, docs/CHOICES.md) would otherwise mix versions
# within a report. So the Python code runs from a worktree of PLAN_COMMIT beside this checkout, while the runs,
# reports and ledger stay in this checkout.
PLAN_COMMIT=${PLAN_COMMIT:-372fc6d}
CODE=${PLAN_CODE:-../$(basename "$PWD")-plan-$PLAN_COMMIT}  # relative: the reports print this command
[ -d "$CODE" ] || git worktree add --detach "$CODE" "$PLAN_COMMIT"
export PYTHONPATH=$(cd "$CODE" && pwd)
QUALITY=("$PY" "$CODE/benchmarks/quality.py" --workdir=runs/bench-quality --results=benchmarks/results
         --ledger=benchmarks/results/ledger)
FIRST=pfmsmtrec,ditto,fedavg,pfmsmtrec_personal_inputs
# Every algorithm of the regimes' reports (benchmarks/render_readme.py CLUSTERED_ALGORITHMS): the paper's
# baselines, the four newer ones, the pooled reference and the kept variant. The ablations stay in the untuned
# reports: a search each would cost 5 x 12 more trials per dataset.
ALL=pfmsmtrec,pfmsmtrec_personal_inputs,ditto,fedavg,local,fedbn,fedper,fedprox,centralized,apfl,fedamp,fedavgm,fedhca2,fedrep
steps=(
  "--datasets=synthetic --algorithms=$FIRST"
  "--datasets=census --algorithms=$FIRST"
  "--datasets=synthetic --algorithms=$ALL"
  "--datasets=census --algorithms=$ALL"
  "--datasets=synthetic_clustered --tuned_from=synthetic --algorithms=$ALL"
  "--datasets=synthetic_unequal --tuned_from=synthetic --algorithms=$ALL"
  "--datasets=census_sex --tuned_from=census --algorithms=$ALL"
)
# For a variant whose rule in docs/CHOICES.md waits on a tuned report (none does now; pfmsmtrec_personal_tasks
# did, until 2026-12-01): the variant at pfmsmtrec_personal_inputs' tuned settings of DATASET's
# report (no search of its own), 5 seeds, kept in the ledger beside the report's runs (under variants/, which
# the report does not read); then paired with the report's runs by benchmarks/variant_pairs.py.
variant_runs() {
  local dataset=$1 variant=$2 report=runs/bench-quality/$1_tuned
  local book=benchmarks/results/ledger/$1_tuned/variants/$2 pfmsmt
  pfmsmt=$(dirname "$PY")/pfmsmt
  [ -x "$pfmsmt" ] || pfmsmt=pfmsmt  # installed beside the interpreter, else on the PATH
  for seed in 0 1 2 3 4; do
    [ -f "$book/seed_$seed/metrics.json" ] && continue
    echo "== $variant on $dataset, seed $seed ($(date -u +%H:%M) UTC)"
    "$pfmsmt" train --flagfile="$report/tune/pfmsmtrec_personal_inputs/best.flags" \
      --data="$report/data" --algorithm="$variant" --seed="$seed" --rounds=10 --eval_every=1 \
      --select=best_per_scenario --output="$report/variants/$variant/seed_$seed"
    mkdir -p "$book/seed_$seed"
    cp "$report/variants/$variant/seed_$seed/"{metrics.json,rounds.csv} "$book/seed_$seed/"
  done
  "$PY" "$CODE/benchmarks/variant_pairs.py" --variant_runs="$book" --report_runs="benchmarks/results/ledger/$1_tuned/runs" \
    --references=pfmsmtrec_personal_inputs,pfmsmtrec,fedavg,ditto
}
for i in "${!steps[@]}"; do
  [ "$i" -lt "${STEPS:-${#steps[@]}}" ] || break
  step=${steps[$i]}
  echo "== quality.py --tuned --budget=12 $step ($(date -u +%H:%M) UTC)"
  # shellcheck disable=SC2086
  "${QUALITY[@]}" --tuned --budget=12 $step
done
"$PY" benchmarks/render_readme.py
