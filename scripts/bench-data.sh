#!/usr/bin/env bash
# Data pipeline benchmark: fcn-torch against the chapter's PyTorch pipeline on the same
# files in the same run, interleaved A B A B. Two rows: both pinned to one core (taskset,
# one thread each), and both on the whole machine (our defaults; the chapter's pipeline as
# it is written, torch's default threads). Prints images/s and the ratios.
# A third row reads the same files as image/mask folders (images/ and masks/ linked to
# JPEGImages/ and SegmentationClass/, train.txt the VOC train split), as a dataset of your
# own is read, against the VOC reader: both ours, on the whole machine; the folders with the
# VOC row's transforms (random crops), then with fcn train's for such data (torchvision's
# recipe: random resize 0.5-2.0 and flips too).
# Usage: bash scripts/bench-data.sh [VOC2012_DIR] (default: a synthetic VOC of 200 images of
# 375x500, VOC's typical size) [ROUNDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/python-env.sh)
root=${1:-}
if [[ -z $root ]]; then
  root=$(node -e "require('./dist/src').voc.synthesize('/tmp/fcn-torch-bench', { count: 200, height: 375, width: 500, valFraction: 0.05 }).then(console.log)")
fi
rounds=${2:-5}
folders=$(mktemp -d)
trap 'rm -rf "$folders"' EXIT
ln -s "$(realpath "$root")/JPEGImages" "$folders/images"
ln -s "$(realpath "$root")/SegmentationClass" "$folders/masks"
cp "$root/ImageSets/Segmentation/train.txt" "$folders/train.txt"
# The first CPU this process may use (CPU 0 may be outside a container's set).
one_core=(env)
pinned="not pinned: no taskset"
if command -v taskset > /dev/null; then
  cpu=$(taskset -pc $$ | sed 's/.*: *//; s/[-,].*//')
  one_core=(taskset -c "$cpu")
  pinned="taskset -c $cpu"
fi
ours1=() theirs1=() ours=() theirs=() folder=() recipe=()
for ((r = 0; r < rounds; r++)); do
  ours1+=("$("${one_core[@]}" node dist/scripts/bench-data.js "$root" 320 480 32 1)")
  theirs1+=("$("${one_core[@]}" "$python" scripts/bench_data.py "$root" 320 480 32 1 2>/dev/null)")
  ours+=("$(node dist/scripts/bench-data.js "$root" 320 480 32)")
  theirs+=("$("$python" scripts/bench_data.py "$root" 320 480 32 2>/dev/null)")
  folder+=("$(node dist/scripts/bench-data.js "$folders" 320 480 32)")
  recipe+=("$(RECIPE=1 node dist/scripts/bench-data.js "$folders" 320 480 32)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() { # label, ours..., --, theirs...
  local label=$1 o t
  shift
  local -a a=() b=()
  while [[ $1 != -- ]]; do a+=("$1"); shift; done
  shift
  b=("$@")
  o=$(median "${a[@]}")
  t=$(median "${b[@]}")
  echo "$label"
  echo "  fcn-torch:        $o   (${a[*]})"
  echo "  PyTorch pipeline: $t   (${b[*]})"
  echo "  ratio: $(awk -v a="$o" -v b="$t" 'BEGIN {printf "%.2f", a / b}')x"
}
echo "images/s, median of $rounds rounds, $root ($(nproc) cores):"
row "one core each ($pinned):" "${ours1[@]}" -- "${theirs1[@]}"
row "whole machine:" "${ours[@]}" -- "${theirs[@]}"
echo "the same files as image/mask folders, whole machine (fcn-torch both):"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "  VOC:                     $(median "${ours[@]}")"
echo "  folders, random crops:   $(median "${folder[@]}")   (${folder[*]}): $(ratio "$(median "${folder[@]}")" "$(median "${ours[@]}")")x"
echo "  folders, with the recipe: $(median "${recipe[@]}")   (${recipe[*]}): $(ratio "$(median "${recipe[@]}")" "$(median "${ours[@]}")")x"
