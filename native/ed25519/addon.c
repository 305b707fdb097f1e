// Node-API binding of the batch verifier:
//   prepareKey(key: Uint8Array(32), out: Uint8Array(KEY_BYTES)): boolean
//   verifyBatch(packets: Uint8Array[], ends: Uint32Array, keyIndex: Uint32Array, keys: Uint8Array[],
//               status: Uint8Array): number
// Signature i lies at packets[i][ends[i], ends[i] + 64) and signs packets[i][0, ends[i]). status is written while
// the inputs are read, so it may share no byte with them (a TypeError otherwise).
#define NAPI_VERSION 8
#include <node_api.h>

#include "batch.h"

#define CHECK(call)                                          \
  do {                                                       \
    if ((call) != napi_ok) {                                 \
      napi_throw_error(env, NULL, "ed25519: bad arguments"); \
      return NULL;                                           \
    }                                                        \
  } while (0)

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static int typed_bytes(napi_env env, napi_value v, uint8_t **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  size_t count;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &type, &count, &ptr, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array && type != napi_uint8_clamped_array) return 0;
  *data = (uint8_t *)ptr;
  *length = count;
  return 1;
}

static int typed_u32(napi_env env, napi_value v, uint32_t **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  size_t count;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &type, &count, &ptr, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint32_array) return 0;
  *data = (uint32_t *)ptr;
  *length = count;
  return 1;
}

// Whether [a, a + alen) and [b, b + blen) share a byte.
static int overlaps(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  return alen > 0 && blen > 0 && a < b + blen && b < a + alen;
}

static napi_value prepare_key(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *key, *out;
  size_t key_length, out_length;
  if (argc < 2 || !typed_bytes(env, argv[0], &key, &key_length) || key_length != 32 ||
      !typed_bytes(env, argv[1], &out, &out_length) || out_length != ED_KEY_BYTES)
    return throw_type(env, "prepareKey(key: 32 bytes, out: KEY_BYTES bytes)");
  if (overlaps(out, out_length, key, key_length)) return throw_type(env, "prepareKey: out must not overlap key");
  napi_value result;
  CHECK(napi_get_boolean(env, ed_prepare_key(out, key) == 1, &result));
  return result;
}

static void free_workspace(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ed_workspace_free((ed_workspace *)data);
}

// The scratch memory of this environment (the main thread or one worker), made on first use and freed with it.
static ed_workspace *workspace_of(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) == napi_ok && data != NULL) return (ed_workspace *)data;
  ed_workspace *ws = ed_workspace_new();
  if (ws == NULL) return NULL;
  if (napi_set_instance_data(env, ws, free_workspace, NULL) != napi_ok) {
    ed_workspace_free(ws);
    return NULL;
  }
  return ws;
}

static napi_value verify_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "verifyBatch needs 5 arguments");
  uint32_t n = 0, nkeys = 0;
  bool is_array = false;
  CHECK(napi_is_array(env, argv[0], &is_array));
  if (!is_array) return throw_type(env, "packets must be an array");
  CHECK(napi_get_array_length(env, argv[0], &n));
  CHECK(napi_is_array(env, argv[3], &is_array));
  if (!is_array) return throw_type(env, "keys must be an array");
  CHECK(napi_get_array_length(env, argv[3], &nkeys));
  if (n > ED_MAX_BATCH || nkeys > ED_MAX_BATCH) return throw_type(env, "batch too large");
  // Every element first: reading one may run JavaScript (a getter) that detaches or resizes a buffer, so no raw
  // pointer is taken until nothing more can run.
  napi_value key_values[ED_MAX_BATCH], packet_values[ED_MAX_BATCH];
  for (uint32_t j = 0; j < nkeys; j++) CHECK(napi_get_element(env, argv[3], j, &key_values[j]));
  for (uint32_t i = 0; i < n; i++) CHECK(napi_get_element(env, argv[0], i, &packet_values[i]));
  uint32_t *ends, *key_index;
  uint8_t *status;
  size_t ends_length, index_length, status_length;
  if (!typed_u32(env, argv[1], &ends, &ends_length) || ends_length < n ||
      !typed_u32(env, argv[2], &key_index, &index_length) || index_length < n ||
      !typed_bytes(env, argv[4], &status, &status_length) || status_length < n)
    return throw_type(env, "ends, keyIndex: Uint32Array, status: Uint8Array, each at least packets.length long");
  // status is written while the inputs are read: it must share no byte with any of them
  if (overlaps(status, n, (const uint8_t *)ends, 4 * (size_t)n) ||
      overlaps(status, n, (const uint8_t *)key_index, 4 * (size_t)n))
    return throw_type(env, "status must not overlap the other arguments");
  ed_item items[ED_MAX_BATCH];
  const uint8_t *keys[ED_MAX_BATCH];
  for (uint32_t j = 0; j < nkeys; j++) {
    uint8_t *data;
    size_t length;
    if (!typed_bytes(env, key_values[j], &data, &length) || length != ED_KEY_BYTES)
      return throw_type(env, "keys must be prepared keys");
    if (overlaps(status, n, data, length)) return throw_type(env, "status must not overlap the other arguments");
    keys[j] = data;
  }
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *data;
    size_t length;
    if (!typed_bytes(env, packet_values[i], &data, &length)) return throw_type(env, "packets must be Uint8Arrays");
    if ((size_t)ends[i] + 64 > length || key_index[i] >= nkeys)
      return throw_type(env, "a signature lies outside its packet or a key index is out of range");
    if (overlaps(status, n, data, length)) return throw_type(env, "status must not overlap the other arguments");
    items[i].message = data;
    items[i].message_length = ends[i];
    items[i].signature = data + ends[i];
    items[i].key = key_index[i];
  }
  ed_workspace *ws = workspace_of(env);
  int ok = ws == NULL ? -1 : ed_verify_batch(ws, items, n, keys, nkeys, status);
  if (ok < 0) {
    napi_throw_error(env, "ED25519_BATCH", "ed25519: batch verification could not run (memory or randomness)");
    return NULL;
  }
  napi_value result;
  CHECK(napi_get_boolean(env, ok == 1, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
#ifndef ED_SUPPORTED
  napi_throw_error(env, NULL, "ed25519: batch verification is not built for this platform");
  return NULL;
#endif
  if (!ed_init()) {
    napi_throw_error(env, NULL, "ed25519: the base point table could not be built");
    return NULL;
  }
  napi_value fn, value;
  CHECK(napi_create_function(env, "prepareKey", NAPI_AUTO_LENGTH, prepare_key, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "prepareKey", fn));
  CHECK(napi_create_function(env, "verifyBatch", NAPI_AUTO_LENGTH, verify_batch, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "verifyBatch", fn));
  CHECK(napi_create_uint32(env, ED_KEY_BYTES, &value));
  CHECK(napi_set_named_property(env, exports, "KEY_BYTES", value));
  CHECK(napi_create_uint32(env, ED_MAX_BATCH, &value));
  CHECK(napi_set_named_property(env, exports, "MAX_BATCH", value));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
