# The alternative build (node-gyp): the same sources as CMakeLists.txt, against the
# libtorch at deps/libtorch (scripts/setup-libtorch.mjs). Output: build/Release/fcn_torch.node.
{
  "targets": [
    {
      "target_name": "fcn_torch",
      "sources": [
        "native/addon.cc",
        "native/backends.cc",
        "native/common.cc",
        "native/cpu_allocator.cc",
        "native/fcn.cc",
        "native/functional.cc",
        "native/gloo_backend.cc",
        "native/init.cc",
        "native/json.cc",
        "native/layers.cc",
        "native/module.cc",
        "native/optim.cc",
        "native/predict.cc",
        "native/process_group.cc",
        "native/pickle.cc",
        "native/resnet.cc",
        "native/safetensors.cc",
        "native/sequential.cc",
        "native/serialization.cc",
        "native/subpixel.cc",
        "native/tensor.cc",
        "native/tensor_creation.cc",
        "native/tensor_data.cc",
        "native/tensor_ops.cc",
        "native/torch_save.cc",
        "native/torch_thread.cc",
        "native/trainer.cc",
        "native/voc.cc",
        "native/voc_data.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/gloo_api",
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
      "cflags_cc": ["-std=c++20", "-frtti", "-fexceptions", "-fvisibility=hidden", "-Wno-unused-parameter", "-Wno-restrict", "-Wno-stringop-overflow", "-Wno-array-bounds"],
      "libraries": [
        "-L<(module_root_dir)/deps/libtorch/lib",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
        "-Wl,-rpath,'$$ORIGIN/../../deps/libtorch/lib'",
        "-Wl,--no-as-needed,-ltorch,--as-needed"
      ]
    }
  ]
}
