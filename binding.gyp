{
  "targets": [
    {
      "target_name": "ocinotify",
      "sources": [
        "addon/binding.cc",
        "addon/reactor.cc",
        "addon/bpf_tracer.cc",
        "addon/binary_watch.cc",
        "addon/fanotify_gate.cc",
        "addon/proc_argv.cc",
        "addon/read_in_root.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "bpf",
        "bpf/.output"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["<!@(pkg-config --libs libbpf)"]
    }
  ]
}
