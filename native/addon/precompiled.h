// The headers that every translation unit of the addon target spends most of its compile time
// on, precompiled once per build: CMakeLists.txt names this file in target_precompile_headers,
// binding.gyp compiles it to a GCC .gch with the target's own flags and force-includes it.
// (No include guard: it is only ever force-included, once, by the compiler.)

#include <napi.h>
#include <torch/torch.h>
