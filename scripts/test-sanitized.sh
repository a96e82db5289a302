#!/usr/bin/env bash
# The node-gyp build made with AddressSanitizer and UndefinedBehaviorSanitizer
# (GYP_DEFINES=sanitize=1 node-gyp rebuild, as npm test builds it): its native tests, then
# the parts of the ava suite that drive the native code hardest (tensors, modules, the weight
# readers on hostile and mutated files, labels and masks, training steps, clean exits), node
# loading that addon. node is not instrumented, so ASan's runtime is preloaded, first, as its
# docs require; leak checking is off in node (V8 and Node keep their heaps to the end) and on
# in the native tests. Any report fails the run. Prints "sanitized: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0 failed=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
reports='ERROR: (Address|Leak)Sanitizer|runtime error:'

out=$(ASAN_OPTIONS=detect_leaks=1 build/Release/native_tests 2>&1)
echo "$out" | grep -v NNPACK | sed 's/^native:/native (sanitized):/'
read -r np nf <<<"$(echo "$out" | sed -n 's/^native: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')"
passed=$((passed + ${np:-0}))
failed=$((failed + ${nf:-1}))
if echo "$out" | grep -q -E "$reports"; then
  echo "$out" | grep -E -A 20 "$reports" | head -60
  echo "not ok - the sanitizers reported in the native tests"
  failed=$((failed + 1))
fi

files=()
for name in unit/tensor unit/modules unit/serialization unit/hostile-files unit/fuzz api/voc api/data train/train e2e/exit; do
  files+=("dist/test/$name.test.js")
done
tap=$(mktemp)
ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD=$(gcc -print-file-name=libasan.so) \
  FCN_TORCH_ADDON="$PWD/build/Release/fcn_torch.node" node node_modules/ava/entrypoints/cli.mjs --tap "${files[@]}" >"$tap" 2>&1
grep -E '^(not ok|ok)' "$tap" | sed 's/^/sanitized: /' | grep -E '^sanitized: not ok' || true
ap=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap")
af=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap")
if [[ -z $ap ]]; then
  tail -30 "$tap"
  echo "not ok - the sanitized ava run reported no counts"
  failed=$((failed + 1))
fi
passed=$((passed + ${ap:-0}))
failed=$((failed + ${af:-0}))
if grep -q -E "$reports" "$tap"; then
  grep -E -A 20 "$reports" "$tap" | head -60
  echo "not ok - the sanitizers reported in the ava run"
  failed=$((failed + 1))
fi
rm -f "$tap"
echo "sanitized: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
