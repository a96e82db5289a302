#!/usr/bin/env bash
# libFuzzer over each parser of native/core (harnesses in native/test/fuzz), built by clang
# with AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/. Each harness starts
# from seeds made from test/fixtures and from its kept regression inputs (test/fuzz/HARNESS/,
# the inputs of fixed findings), and runs for SECONDS. A crash, a sanitizer report, a leak or
# an input that takes over 10 s fails it; libFuzzer keeps that input in build-fuzz/findings/.
# Prints each harness's runs and "fuzz: N passed, N failed".
# Usage: bash scripts/fuzz.sh [SECONDS=20]
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
harnesses=(json pickle safetensors zip_directory weights palette_png)
if ! command -v clang++ >/dev/null; then
  echo "not ok - fuzz: clang++ is not installed (Debian: apt-get install clang)"
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi
mkdir -p build-fuzz
if ! { cmake -S native/test/fuzz -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE= >build-fuzz/build.log 2>&1 &&
  cmake --build build-fuzz -j "$(nproc)" >>build-fuzz/build.log 2>&1; }; then
  tail -30 build-fuzz/build.log
  echo "not ok - fuzz: the harnesses do not build"
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi

# Seeds: the small weight files of the fixtures as they are, their safetensors headers (JSON)
# and their pickles (data.pkl of the zips; legacy files are pickles from byte 0).
seeds=build-fuzz/seeds
rm -rf "$seeds" && mkdir -p "${harnesses[@]/#/$seeds/}"
for f in test/fixtures/*.safetensors; do
  [[ $(stat -c %s "$f") -le 65536 ]] || continue
  cp "$f" "$seeds/safetensors/" && cp "$f" "$seeds/weights/"
  node -e 'const b = require("fs").readFileSync(process.argv[1]); const n = Number(b.readBigUInt64LE(0));
    require("fs").writeFileSync(process.argv[2], b.subarray(8, 8 + n));' "$f" "$seeds/json/$(basename "$f").json"
done
for f in test/fixtures/*.pth; do
  [[ $(stat -c %s "$f") -le 300000 ]] || continue
  cp "$f" "$seeds/zip_directory/" && cp "$f" "$seeds/weights/"
  python3 - "$f" "$seeds/pickle/$(basename "$f").pkl" <<'PY'
import shutil, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
if zipfile.is_zipfile(src):
    with zipfile.ZipFile(src) as z:
        name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        open(dst, "wb").write(z.read(name))
else:
    shutil.copy(src, dst)
PY
done
# An indexed PNG's rows for palette_png: 4x5 pixels, VOC's first 3 colours, filters 1-4.
printf '\x04\x05\x03\x00\x00\x00\x80\x00\x00\x00\x80\x00\x01\x00\x01\x01\x00\x01\x02\x01\x01\x01\x01\x01\x03\x00\x00\x01\x02\x00\x04\x02\x01\x00\x00\x01' >"$seeds/palette_png/4x5"

passed=0 failed=0
mkdir -p build-fuzz/findings
for h in "${harnesses[@]}"; do
  corpus=build-fuzz/corpus/$h
  mkdir -p "$corpus"
  dirs=("$corpus" "$seeds/$h")
  [[ -d test/fuzz/$h ]] && dirs+=("test/fuzz/$h")
  log=build-fuzz/$h.log
  if build-fuzz/fuzz_"$h" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=300000 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$h-" "${dirs[@]}" >"$log" 2>&1; then
    passed=$((passed + 1))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "ok - fuzz $h: $runs inputs in $seconds s, corpus of $(find "$corpus" -type f | wc -l)"
  else
    failed=$((failed + 1))
    grep -E -A 12 'ERROR|runtime error|Timeout|deadly signal' "$log" | head -40
    echo "not ok - fuzz $h: see $log; the input is in build-fuzz/findings/"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
