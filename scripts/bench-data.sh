#!/usr/bin/env bash
# Data pipeline benchmark: fcn-torch against the chapter's PyTorch pipeline on the same
# files in the same run, interleaved A B A B, each on one core. Prints images/s and the
# ratio. Usage: bash scripts/bench-data.sh [VOC2012_DIR] (default: a synthetic VOC of
# 200 images of 375x500, VOC's typical size) [ROUNDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/python-env.sh)
root=${1:-}
if [[ -z $root ]]; then
  root=$(node -e "require('./dist/src').voc.synthesize('/tmp/fcn-torch-bench', { count: 200, height: 375, width: 500, valFraction: 0.05 }).then(console.log)")
fi
rounds=${2:-5}
ours=()
theirs=()
for ((r = 0; r < rounds; r++)); do
  ours+=("$(node dist/scripts/bench-data.js "$root" 320 480 32)")
  theirs+=("$("$python" scripts/bench_data.py "$root" 320 480 32 2>/dev/null)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
o=$(median "${ours[@]}")
t=$(median "${theirs[@]}")
echo "images/s per core (median of $rounds, $root):"
echo "  fcn-torch:        $o   (${ours[*]})"
echo "  PyTorch pipeline: $t   (${theirs[*]})"
echo "  ratio: $(awk -v a="$o" -v b="$t" 'BEGIN {printf "%.2f", a / b}')x"
