# The alternative build (node-gyp): the addon and the native tests as CMakeLists.txt builds them
# (the core layer as a static library, the addon and the native tests on it), from the settings
# both builds read (native/build.json: sources, defines, warnings, include folders, libraries,
# the precompiled header), against the libtorch that `npm install` (or `fcn setup`) linked at
# deps/libtorch. It builds the CPU variant; a CUDA libtorch's extras need CMake's probes.
# Output: build/Release/fcn_torch.node and build/Release/native_tests.
# GYP_DEFINES=sanitize=1 builds both with AddressSanitizer and UndefinedBehaviorSanitizer
# (npm test does, and runs them: scripts/test-sanitized.sh).
{
  "variables": {
    "sanitize%": 0,
    "libtorch": "<!(node -p \"require('./native/build.json').libtorch\")",
    "precompiled_header": "<!(node -p \"require('./native/build.json').precompiledHeader\")"
  },
  "target_defaults": {
    "include_dirs": [
      "<!@(node -p \"require('./native/build.json').includeDirs.join(' ')\")",
      "<(libtorch)/include",
      "<(libtorch)/include/torch/csrc/api/include"
    ],
    "defines": ["<!@(node -p \"require('./native/build.json').defines.join(' ')\")"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": [
      "<!(node -p \"'-std=c++' + require('./native/build.json').cxxStandard\")",
      "<!@(node -p \"require('./native/build.json').warnings.join(' ')\")",
      "-frtti", "-fexceptions", "-fvisibility=hidden", "-fopenmp", "-fPIC"
    ],
    "ldflags": ["-fopenmp"],
    "libraries": [
      "-L<(module_root_dir)/<(libtorch)/lib",
      "<!@(node -p \"require('./native/build.json').libtorchLibraries.map((l) => '-l' + l).join(' ')\")",
      "-Wl,-rpath,'$$ORIGIN/../../<(libtorch)/lib'"
    ],
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
        "<!@(node -p \"require('./native/build.json').sources.core.join(' ')\")"
      ]
    },
    {
      "target_name": "fcn_torch",
      "dependencies": ["fcn_core"],
      "sources": [
        "<!@(node -p \"const s = require('./native/build.json').sources; [...s.models, ...s.distributed, ...s.train, ...s.addon].join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node -p \"require('./native/build.json').glooIncludeDir\")"
      ],
      # The precompiled header as a GCC .gch, made with this target's flags (make's
      # GYP_CXXFLAGS, inherited by the action because the objects depend on it) and
      # force-included in every source: half the compile time of each. A copy of the header
      # sits beside it, so a compiler that refuses the .gch reads the header instead.
      "actions": [{
        "action_name": "precompile_header",
        "inputs": ["<(precompiled_header)"],
        "outputs": ["<(INTERMEDIATE_DIR)/precompiled.h.gch"],
        "action": ["sh", "-c", "cp <(precompiled_header) <(INTERMEDIATE_DIR)/precompiled.h && cd $(abs_builddir)/.. && $(CXX.target) $(filter-out -include %/precompiled.h -Winvalid-pch,$(GYP_CXXFLAGS)) $(CXXFLAGS.target) -x c++-header $(abs_obj).target/fcn_torch/geni/precompiled.h -o $(abs_obj).target/fcn_torch/geni/precompiled.h.gch"]
      }],
      "cflags_cc": ["-include", "<(INTERMEDIATE_DIR)/precompiled.h", "-Winvalid-pch"],
      "defines": ["<!@(node -p \"require('./native/build.json').addonDefines.join(' ')\")"],
      "libraries": ["-Wl,--no-as-needed,-ltorch,--as-needed"]
    },
    {
      "target_name": "native_tests",
      "type": "executable",
      "dependencies": ["fcn_core"],
      "sources": [
        "<!@(node -p \"require('./native/build.json').sources.tests.join(' ')\")"
      ]
    }
  ]
}
