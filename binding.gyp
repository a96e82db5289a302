# The alternative build (node-gyp): the sources of native/sources.json, as CMakeLists.txt
# builds them (the core layer as a static library, the addon and the native tests on it),
# against the libtorch at deps/libtorch (scripts/setup-libtorch.mjs).
# Output: build/Release/fcn_torch.node and build/Release/native_tests.
# GYP_DEFINES=sanitize=1 builds both with AddressSanitizer and UndefinedBehaviorSanitizer
# (npm test does, and runs them: scripts/test-sanitized.sh).
{
  "variables": {
    "sanitize%": 0
  },
  "target_defaults": {
    "include_dirs": [
      "native",
      "deps/libtorch/include",
      "deps/libtorch/include/torch/csrc/api/include"
    ],
    "defines": ["_GLIBCXX_USE_CXX11_ABI=1"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=c++20", "-frtti", "-fexceptions", "-fvisibility=hidden", "-fopenmp", "-fPIC", "-Wno-unused-parameter", "-Wno-restrict", "-Wno-stringop-overflow", "-Wno-array-bounds"],
    "ldflags": ["-fopenmp"],
    "conditions": [
      ["sanitize==1", {
        # -O1 as the sanitizers' docs advise; every report is an error (no recovery).
        "cflags_cc": ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-O1", "-g1"],
        "ldflags": ["-fsanitize=address,undefined"]
      }]
    ]
  },
  "targets": [
    {
      "target_name": "fcn_core",
      "type": "static_library",
      "sources": [
        "<!@(node -p \"require('./native/sources.json').core.join(' ')\")"
      ]
    },
    {
      "target_name": "fcn_torch",
      "dependencies": ["fcn_core"],
      "sources": [
        "<!@(node -p \"const s = require('./native/sources.json'); [...s.models, ...s.distributed, ...s.train, ...s.addon].join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/distributed/gloo_api"
      ],
      # native/addon/precompiled.h as a GCC precompiled header, made with this target's flags
      # (make's GYP_CXXFLAGS, inherited by the action because the objects depend on it) and
      # force-included in every source: half the compile time of each. A copy of the header
      # sits beside it, so a compiler that refuses the .gch reads the header instead.
      "actions": [{
        "action_name": "precompile_header",
        "inputs": ["native/addon/precompiled.h"],
        "outputs": ["<(INTERMEDIATE_DIR)/precompiled.h.gch"],
        "action": ["sh", "-c", "cp native/addon/precompiled.h <(INTERMEDIATE_DIR)/precompiled.h && cd $(abs_builddir)/.. && $(CXX.target) $(filter-out -include %/precompiled.h -Winvalid-pch,$(GYP_CXXFLAGS)) $(CXXFLAGS.target) -x c++-header $(abs_obj).target/fcn_torch/geni/precompiled.h -o $(abs_obj).target/fcn_torch/geni/precompiled.h.gch"]
      }],
      "cflags_cc": ["-include", "<(INTERMEDIATE_DIR)/precompiled.h", "-Winvalid-pch"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "libraries": [
        "-L<(module_root_dir)/deps/libtorch/lib",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
        "-Wl,-rpath,'$$ORIGIN/../../deps/libtorch/lib'",
        "-Wl,--no-as-needed,-ltorch,--as-needed"
      ]
    },
    {
      "target_name": "native_tests",
      "type": "executable",
      "dependencies": ["fcn_core"],
      "sources": [
        "<!@(node -p \"require('./native/sources.json').tests.join(' ')\")"
      ],
      "libraries": [
        "-L<(module_root_dir)/deps/libtorch/lib",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
        "-Wl,-rpath,'$$ORIGIN/../../deps/libtorch/lib'"
      ]
    }
  ]
}
