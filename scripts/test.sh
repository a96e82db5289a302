#!/usr/bin/env bash
# `npm test`: every check and test of the project, ending with "N passed, N failed".
#   1. formatting and lint (biome for TypeScript, clang-format for C++), the architecture
#      check (scripts/check-architecture.mjs), the markdown links (scripts/check-links.mjs),
#      type check (src, test, scripts, examples), the API reference (typedoc)
#   2. the native C++ tests (build-cmake/native_tests; the addon itself is already built)
#   3. libFuzzer over each parser of native/core, 10 s each (scripts/fuzz.sh; needs clang)
#   4. the ava suite on the compiled TypeScript (dist/test: unit, api, train, cli, serve, e2e)
#   5. the node-gyp build, made with AddressSanitizer and UndefinedBehaviorSanitizer
#      (binding.gyp's sanitize=1; compiled in the background from the start): its native tests
#      and a focused part of the ava suite run against it (scripts/test-sanitized.sh)
#   6. a tier of the ava suite under the oldest and newest supported Node (engines: >=22.12;
#      22.12 and 24, npm's `node` package): the addon, the API, training steps, predict, serve
#      and clean exits
# then each step's time, and the counts.
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
times=() # "seconds name" of each step, printed at the end
timed() { # timed NAME SECONDS: records how long a step took
  times+=("$(printf '%5d s  %s' "$2" "$1")")
}
step() { # step NAME COMMAND...: runs a check that counts as one test
  local name=$1 started=$SECONDS
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "not ok - $name"
  fi
  timed "$name" $((SECONDS - started))
}

# The node-gyp build under ASan and UBSan compiles the whole addon a second time, the longest
# step: it runs in the background from here, at a lower priority, while the steps up to the
# ava suite take the CPU they need, and the sanitized tests wait for it. Its line below is its
# own time, start to end; the wait is the time it added.
nodedir=$(dirname "$(dirname "$(command -v node)")")
gyp_args=(-j 2 --silent)
[[ -f $nodedir/include/node/node_api.h ]] && gyp_args+=(--nodedir="$nodedir")
gyp_command=rebuild
grep -q -s fsanitize build/fcn_core.target.mk && gyp_command=build
gyp_log=$(mktemp)
gyp_started=$(date +%s)
(
  GYP_DEFINES=sanitize=1 nice -n 10 npx node-gyp "$gyp_command" "${gyp_args[@]}" >"$gyp_log" 2>&1
  echo "$? $(date +%s)" >"$gyp_log.end"
) &
gyp_pid=$!
gyp_wait() { # waits for the node-gyp build and counts it as one test
  local started=$SECONDS rc ended
  wait "$gyp_pid"
  read -r rc ended <"$gyp_log.end"
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
  else
    tail -40 "$gyp_log"
    echo "not ok - node-gyp build (ASan + UBSan)"
    failed=$((failed + 1))
  fi
  timed "node-gyp build (ASan + UBSan), in the background" $((ended - gyp_started))
  timed "waiting for the node-gyp build" $((SECONDS - started))
  rm -f "$gyp_log" "$gyp_log.end"
}

step "biome format and lint" npx biome ci --reporter=summary .
mapfile -t native_files < <(find native -name '*.cc' -o -name '*.h' | sort)
step "clang-format" npx clang-format --dry-run -Werror "${native_files[@]}"
step "architecture" node scripts/check-architecture.mjs
step "markdown links" node scripts/check-links.mjs
step "typescript build" npx tsc -p tsconfig.json
api_docs=$(mktemp -d)
step "api reference (typedoc)" npx typedoc --out "$api_docs" --logLevel Error
rm -rf "$api_docs"
step "cmake-js build" npx cmake-js compile --out build-cmake --log-level warn

started=$SECONDS
if [[ -x build-cmake/native_tests ]]; then
  native_out=$(build-cmake/native_tests 2>&1)
  echo "$native_out" | grep -v NNPACK
  counts=$(echo "$native_out" | sed -n 's/^native: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
  read -r np nf <<<"${counts:-0 1}"
  passed=$((passed + np))
  failed=$((failed + nf))
else
  echo "not ok - native tests were not built"
  failed=$((failed + 1))
fi

timed "native tests" $((SECONDS - started))

counted() { # counted NAME PREFIX COMMAND...: runs a script that ends with "PREFIX: N passed, N failed"
  local name=$1 prefix=$2 started=$SECONDS out p f
  shift 2
  out=$(mktemp)
  "$@" 2>&1 | tee "$out" | grep -v NNPACK
  read -r p f <<<"$(sed -n "s/^$prefix: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p" "$out")"
  if [[ -z ${p:-} ]]; then
    echo "not ok - $name reported no counts"
    f=$((${f:-0} + 1))
  fi
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  rm -f "$out"
  timed "$name" $((SECONDS - started))
}
counted "fuzzing (libFuzzer)" fuzz bash scripts/fuzz.sh 10

started=$SECONDS
tap=$(mktemp)
npx ava --tap 2>&1 | tee "$tap" | grep -v -E 'NNPACK'
ava_pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap")
ava_fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap")
if [[ -z $ava_pass ]]; then
  echo "not ok - ava reported no counts"
  failed=$((failed + 1))
fi
passed=$((passed + ${ava_pass:-0}))
failed=$((failed + ${ava_fail:-0}))
rm -f "$tap"
timed "ava suite" $((SECONDS - started))

gyp_wait
counted "sanitized native tests and ava part" sanitized bash scripts/test-sanitized.sh

node_tier=()
for name in unit/tensor unit/modules unit/optim unit/fcn serve/serve e2e/exit; do node_tier+=("dist/test/$name.test.js"); done
# 22.12 is the oldest Node that engines allows; 24 the newest LTS.
for version in 22.12 24; do
  started=$SECONDS
  tap=$(mktemp)
  timeout 900 npx -y "node@$version" node_modules/ava/entrypoints/cli.mjs --tap \
    "${node_tier[@]}" >"$tap" 2>&1
  tier_rc=$?
  tier_pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)
  tier_fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)
  grep -E '^not ok' "$tap"
  if [[ $tier_rc -eq 124 ]]; then
    tail -20 "$tap"
    echo "not ok - the Node $version tier ran past 900 s"
    failed=$((failed + 1))
  elif [[ ${tier_pass:-0} -eq 0 ]]; then
    tail -20 "$tap"
    echo "not ok - the Node $version tier ran no tests"
    failed=$((failed + 1))
  fi
  echo "# Node $version ($(npx -y "node@$version" --version)): ${tier_pass:-0} passed, ${tier_fail:-0} failed, $((SECONDS - started)) s"
  timed "ava tier on Node $version" $((SECONDS - started))
  passed=$((passed + ${tier_pass:-0}))
  failed=$((failed + ${tier_fail:-0}))
  rm -f "$tap"
done

echo "# time per step (npm test: $SECONDS s)"
printf '#%s\n' "${times[@]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
