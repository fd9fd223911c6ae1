{
  "targets": [
    {
      "target_name": "ipvs_netlink",
      "sources": [
        "native/binding.cc",
        "native/netns.cc",
        "native/mapped_buffer.cc",
        "native/record_pool.cc",
        "native/fault_hooks.cc",
        "native/fault_injection.cc",
        "native/netlink_ack.cc",
        "native/promise_worker.cc",
        "native/genl_socket.cc",
        "native/ipvs_codec.cc",
        "native/records.cc",
        "native/conversion.cc",
        "native/batch_records.cc",
        "native/service_dump.cc",
        "native/table_records.cc",
        "native/ipvs_handle.cc",
        "native/conn_parser.cc",
        "native/conn_reader_io.cc",
        "native/conn_reader.cc",
        "native/proc_net.cc",
        "native/probe_codec.cc",
        "native/probe_engine.cc",
        "native/probe_transport.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(pkg-config --cflags-only-I libnl-genl-3.0 | sed 's/-I//g')"
      ],
      "libraries": ["<!@(pkg-config --libs libnl-genl-3.0)"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
