// Platforms without recvmmsg/sendmmsg get an empty module: the loader sees no `open` and falls back to dgram.
#include <node_api.h>

NAPI_MODULE_INIT() { return exports; }
