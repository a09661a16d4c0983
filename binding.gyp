{
  "targets": [
    {
      "target_name": "ocinotify",
      "sources": [
        "addon/binding.cc",
        "addon/reactor.cc",
        "addon/argv_match.cc",
        "addon/hold_verbs.cc",
        "addon/holds.cc",
        "addon/pid_watch.cc",
        "addon/bpf_tracer.cc",
        "addon/binary_watch.cc",
        "addon/inode_key.cc",
        "addon/kernel_probe.cc",
        "addon/exec_discovery.cc",
        "addon/fanotify_gate.cc",
        "addon/proc_argv.cc",
        "addon/read_in_root.cc",
        "addon/spec_reader.cc",
        "addon/watchdog_link.cc",
        "addon/watchdog_policy.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "bpf",
        "bpf/.output"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"],
      "variables": {
        "static_prefix%": "<!(node -p \"process.env.OCINOTIFY_STATIC_PREFIX || ''\")"
      },
      "conditions": [
        ["static_prefix==''", {
          "libraries": ["<!@(pkg-config --libs libbpf)"]
        }, {
          "include_dirs": ["<(static_prefix)/include"],
          "libraries": [
            "<(static_prefix)/lib/libbpf.a",
            "<(static_prefix)/lib/libelf.a",
            "<(static_prefix)/lib/libeu.a",
            "<(static_prefix)/lib/libz.a",
            "-Wl,--exclude-libs,ALL"
          ]
        }]
      ]
    },
    {
      "target_name": "ocinotify-watchdog",
      "type": "executable",
      "sources": [
        "addon/watchdog_main.cc",
        "addon/watchdog_serve.cc",
        "addon/watchdog_policy.cc",
        "addon/inode_key.cc",
        "addon/hold_verbs.cc",
        "addon/proc_argv.cc",
        "addon/fanotify_gate.cc"
      ],
      "include_dirs": ["bpf"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-static-libstdc++", "-static-libgcc"]
    }
  ]
}
