# The alternative build (node-gyp): the sources of native/sources.json, as CMakeLists.txt
# builds them, against the libtorch at deps/libtorch (scripts/setup-libtorch.mjs).
# Output: build/Release/fcn_torch.node.
{
  "targets": [
    {
      "target_name": "fcn_torch",
      "sources": [
        "<!@(node -p \"const s = require('./native/sources.json'); [...s.core, ...s.models, ...s.distributed, ...s.train, ...s.addon].join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "native/distributed/gloo_api",
        "deps/libtorch/include",
        "deps/libtorch/include/torch/csrc/api/include"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "_GLIBCXX_USE_CXX11_ABI=1"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-frtti", "-fexceptions", "-fvisibility=hidden", "-fopenmp", "-Wno-unused-parameter", "-Wno-restrict", "-Wno-stringop-overflow", "-Wno-array-bounds"],
      "libraries": [
        "-L<(module_root_dir)/deps/libtorch/lib",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
        "-Wl,-rpath,'$$ORIGIN/../../deps/libtorch/lib'",
        "-Wl,--no-as-needed,-ltorch,--as-needed"
      ],
      "ldflags": ["-fopenmp"]
    }
  ]
}
