// Ed25519 batch verification (RFC 8032 signatures, the equation of Bernstein, Duif, Lange, Schwabe and Yang,
// "High-speed high-security signatures", section 5): for random 128-bit z_i,
//
//   [8] ( -(sum z_i S_i) B + sum z_i R_i + sum (z_i k_i) A_i ) = 0,   k_i = SHA-512(R_i || A_i || M_i) mod L.
//
// The multi-scalar multiplication is Straus's interleaving with signed sliding windows (wNAF): one doubling per
// bit for all points together, and per point a table of odd multiples. B's table is built once; a public key's
// table is built once by ed_prepare_key and kept by the caller; R's tables are built per batch. Terms with the
// same public key are merged into one scalar. Everything here works on public data and runs in variable time.
#ifndef TRIBLER_ED25519_BATCH_H
#define TRIBLER_ED25519_BATCH_H

#include <stddef.h>
#include <stdint.h>

// The arithmetic needs unsigned __int128 and reads little-endian words straight from memory; OpenSSL's SHA-512
// and random generator come from the Node binary, which exports them on Linux and macOS. Elsewhere the module
// builds but refuses to load, and callers verify one signature at a time.
#if defined(__SIZEOF_INT128__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    !defined(_WIN32)
#define ED_SUPPORTED 1
#endif

#define ED_MAX_BATCH 128
// Window of a public key's table: 2^(A_WINDOW - 2) affine odd multiples.
#define ED_A_WINDOW 6
#define ED_A_TABLE 16
// Bytes of a prepared key: the 32-byte key, a validity byte, padding to 40, then the table.
#define ED_KEY_BYTES (40 + ED_A_TABLE * 3 * 40)

typedef struct {
  const uint8_t *message;
  size_t message_length;
  const uint8_t *signature;  // R || S, 64 bytes
  uint32_t key;              // index into the prepared keys
} ed_item;

// Fills `out` (ED_KEY_BYTES) for a 32-byte public key. Returns 0 and marks `out` unusable when the key is not
// accepted: y at or above p, no matching x, or a point of small order (the checks libsodium makes).
int ed_prepare_key(uint8_t *out, const uint8_t key[32]);

// Scratch memory of one batch (about 0.8 MB): one per caller that may run batches at the same time (the addon keeps
// one per Node environment, freed with it).
typedef struct ed_workspace ed_workspace;
ed_workspace *ed_workspace_new(void);
void ed_workspace_free(ed_workspace *ws);

// Verifies `n` signatures (n <= ED_MAX_BATCH) as one batch, in `ws`. status[i] is set to 0 for a signature rejected on its
// own (S >= L; R non-canonical, off the curve or of small order; an unusable key), else 1. Returns 1 when every
// signature with status 1 satisfies the batch equation, 0 when at least one does not (then which is unknown),
// -1 when memory or the random generator failed.
int ed_verify_batch(ed_workspace *ws, const ed_item *items, size_t n, const uint8_t *const *keys, size_t nkeys, uint8_t *status);

// Module set-up (B's table, once per process); returns 0 on failure.
int ed_init(void);

#endif
