{
  "targets": [
    {
      "target_name": "ed25519_batch",
      "sources": ["native/ed25519/addon.c", "native/ed25519/batch.c"],
      "cflags": ["-O3", "-std=gnu11", "-fno-strict-aliasing"],
      "cflags!": ["-O2"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3"] }
    },
    {
      "target_name": "udp",
      "conditions": [
        ["OS=='linux'", {"sources": ["native/udp/udp.c"]}, {"sources": ["native/udp/unsupported.c"]}]
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
