#!/usr/bin/env bash
# Issue 14's tuned benchmark, in the order docs/CHOICES.md ("The tuned benchmark") fixed before any trial ran,
# so that wherever it is cut the finished part is still a comparison. Every step is restartable and its
# finished trials and runs are kept in benchmarks/results/ledger/, so the plan continues across machines and
# sessions: run it again and it trains only what is missing. 20.6 hours of 2-core machines in all
# (`python benchmarks/plan_time.py`, from the ledger).
#   benchmarks/quality_tuned.sh          # from wherever the ledger stands
#   STEPS=2 benchmarks/quality_tuned.sh  # only the first two steps
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
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
for step in "${steps[@]:0:${STEPS:-${#steps[@]}}}"; do
  echo "== quality.py --tuned --budget=12 $step ($(date -u +%H:%M) UTC)"
  # shellcheck disable=SC2086
  "${QUALITY[@]}" --tuned --budget=12 $step
done
"$PY" benchmarks/render_readme.py
