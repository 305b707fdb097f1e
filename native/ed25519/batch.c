#define OPENSSL_SUPPRESS_DEPRECATED
#include "batch.h"

#ifdef ED_SUPPORTED

#include <openssl/rand.h>
#include <pthread.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "field.h"
#include "group.h"
#include "scalar.h"

// B's window: 64 affine odd multiples B, 3B, ..., 127B.
#define B_WINDOW 8
#define B_TABLE 64
// R's window: 8 projective odd multiples.
#define R_WINDOW 5
#define R_TABLE 8
// Digits of a wNAF of a scalar below 2^256, with room for the final carry.
#define NAF_LEN 264

static ge_niels b_table[B_TABLE];

static const uint8_t B_ENCODED[32] = {0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                                      0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                                      0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66};

// P, 3P, 5P, ... (count of them) in extended coordinates.
static void odd_multiples(ge_ext *out, const ge_ext *p, int count) {
  ge_completed c;
  ge_cached p2;
  ge_ext twice;
  ge_dbl(&c, p);
  ge_to_ext(&twice, &c);
  ge_to_cached(&p2, &twice);
  out[0] = *p;
  for (int i = 1; i < count; i++) {
    ge_add_cached(&c, &out[i - 1], &p2, 0);
    ge_to_ext(&out[i], &c);
  }
}

// Affine niels forms of `count` points with one inversion (Montgomery's trick).
static void to_niels_batch(ge_niels *out, const ge_ext *in, int count) {
  fe prefix[ED_MAX_BATCH > B_TABLE ? ED_MAX_BATCH : B_TABLE];
  fe acc, inv;
  fe_set_small(&acc, 1);
  for (int i = 0; i < count; i++) {
    prefix[i] = acc;
    fe_mul(&acc, &acc, &in[i].Z);
  }
  fe_invert(&inv, &acc);
  for (int i = count - 1; i >= 0; i--) {
    fe zi, x, y;
    fe_mul(&zi, &inv, &prefix[i]);  // 1 / Z_i
    fe_mul(&inv, &inv, &in[i].Z);
    fe_mul(&x, &in[i].X, &zi);
    fe_mul(&y, &in[i].Y, &zi);
    fe_add(&out[i].yplusx, &y, &x);
    fe_sub(&out[i].yminusx, &y, &x);
    fe_mul(&out[i].xy2d, &x, &y);
    fe_mul(&out[i].xy2d, &out[i].xy2d, &FE_D2);
  }
}

static int b_table_ready = 0;
static pthread_once_t b_table_once = PTHREAD_ONCE_INIT;

static void build_b_table(void) {
  ge_ext b;
  ge_ext multiples[B_TABLE];
  if (!ge_decompress(&b, B_ENCODED)) return;
  odd_multiples(multiples, &b, B_TABLE);
  to_niels_batch(b_table, multiples, B_TABLE);
  b_table_ready = 1;
}

// Worker threads may load the module too: the table is built once and only read afterwards.
int ed_init(void) {
  pthread_once(&b_table_once, build_b_table);
  return b_table_ready;
}

int ed_prepare_key(uint8_t *out, const uint8_t key[32]) {
  memset(out, 0, ED_KEY_BYTES);
  memcpy(out, key, 32);
  ge_ext a;
  if (ge_small_order_y(key) || !ge_decompress(&a, key)) return 0;
  ge_ext multiples[ED_A_TABLE];
  ge_niels table[ED_A_TABLE];
  odd_multiples(multiples, &a, ED_A_TABLE);
  to_niels_batch(table, multiples, ED_A_TABLE);
  memcpy(out + 40, table, sizeof table);
  out[32] = 1;
  return 1;
}

// Signed sliding-window digits (wNAF) of a scalar of four limbs below 2^255: every nonzero digit is odd and below
// 2^(w-1) in size, and two nonzero digits are at least w positions apart. Writes the nonzero digits as
// (position, digit) pairs, lowest position first, and returns how many.
#define MAX_DIGITS 64
typedef struct {
  int16_t pos;
  int8_t digit;
} naf_digit;

static int wnaf(naf_digit out[MAX_DIGITS], const uint64_t k[4], int w) {
  const uint64_t limbs[5] = {k[0], k[1], k[2], k[3], 0};
  const uint64_t width = 1ULL << w, mask = width - 1;
  uint64_t carry = 0;
  int pos = 0, count = 0;
  while (pos < 256) {
    int idx = pos / 64, shift = pos % 64;
    uint64_t bits = limbs[idx] >> shift;
    if (shift + w > 64) bits |= limbs[idx + 1] << (64 - shift);
    uint64_t window = carry + (bits & mask);
    if ((window & 1) == 0) {
      pos += 1;
      continue;
    }
    int digit;
    if (window < width / 2) {
      carry = 0;
      digit = (int)window;
    } else {
      carry = 1;
      digit = (int)window - (int)width;
    }
    out[count].pos = (int16_t)pos;
    out[count++].digit = (int8_t)digit;
    pos += w;
  }
  // a negative digit near the top leaves a carry: one more digit, at most at position 255 + w
  if (carry) {
    out[count].pos = (int16_t)pos;
    out[count++].digit = 1;
  }
  return count;
}

typedef struct {
  const void *table;
  int8_t digit;
  uint8_t kind;  // 0: niels (B and keys), 1: cached (R)
} event;

struct ed_workspace {
  ge_cached r_tables[ED_MAX_BATCH][R_TABLE];
  uint64_t a_scalars[ED_MAX_BATCH][4];
  uint64_t z[ED_MAX_BATCH][2];
  naf_digit nafs[2 * ED_MAX_BATCH + 1][MAX_DIGITS];
  int naf_count[2 * ED_MAX_BATCH + 1];
  uint16_t counts[NAF_LEN + 1];
  event events[(2 * ED_MAX_BATCH + 1) * MAX_DIGITS];
  ge_niels key_tables[ED_MAX_BATCH][ED_A_TABLE];
  uint8_t key_used[ED_MAX_BATCH];
  ge_ext r_points[ED_MAX_BATCH];
};

ed_workspace *ed_workspace_new(void) { return (ed_workspace *)malloc(sizeof(ed_workspace)); }

void ed_workspace_free(ed_workspace *ws) { free(ws); }

int ed_verify_batch(ed_workspace *ws, const ed_item *items, size_t n, const uint8_t *const *keys, size_t nkeys,
                    uint8_t *status) {
  if (ws == NULL || n > ED_MAX_BATCH || nkeys > ED_MAX_BATCH) return -1;
  uint8_t random[ED_MAX_BATCH * 16];
  if (RAND_bytes(random, (int)(16 * n)) != 1) {
    return -1;
  }
  memset(ws->a_scalars, 0, sizeof ws->a_scalars);
  memset(ws->key_used, 0, sizeof ws->key_used);
  uint64_t s_acc[8] = {0};
  size_t included = 0;
  for (size_t i = 0; i < n; i++) {
    const ed_item *it = &items[i];
    status[i] = 0;
    if (it->key >= nkeys || keys[it->key][32] != 1) continue;
    const uint8_t *r = it->signature, *s = it->signature + 32;
    if (!sc_is_canonical(s)) continue;
    if (ge_small_order_y(r) || !ge_decompress(&ws->r_points[i], r)) continue;
    status[i] = 1;
    included++;
    uint8_t digest[64];
    SHA512_CTX sha;
    SHA512_Init(&sha);
    SHA512_Update(&sha, r, 32);
    SHA512_Update(&sha, keys[it->key], 32);
    SHA512_Update(&sha, it->message, it->message_length);
    SHA512_Final(digest, &sha);
    uint64_t wide[8], k[4], zk[4], sv[4];
    for (int j = 0; j < 8; j++) memcpy(&wide[j], digest + 8 * j, 8);
    sc_reduce512(k, wide);
    memcpy(ws->z[i], random + 16 * i, 16);
    sc_mul_128(zk, ws->z[i], k);
    sc_add(ws->a_scalars[it->key], ws->a_scalars[it->key], zk);
    ws->key_used[it->key] = 1;
    sc_load(sv, s);
    // 128 such products of 381 bits stay far below 2^512
    sc_muladd_wide(s_acc, ws->z[i], sv);
  }
  if (included == 0) return 1;
  uint64_t b_scalar[4];
  sc_reduce512(b_scalar, s_acc);
  sc_neg(b_scalar, b_scalar);

  // wNAFs: row 0 is B, then the keys, then the R points
  int top = 0;
  size_t rows = 0;
  const void *row_table[2 * ED_MAX_BATCH + 1];
  uint8_t row_kind[2 * ED_MAX_BATCH + 1];
  ws->naf_count[rows] = wnaf(ws->nafs[rows], b_scalar, B_WINDOW);
  row_table[rows] = b_table;
  row_kind[rows++] = 0;
  for (size_t j = 0; j < nkeys; j++) {
    if (!ws->key_used[j]) continue;
    memcpy(ws->key_tables[j], keys[j] + 40, sizeof ws->key_tables[j]);
    ws->naf_count[rows] = wnaf(ws->nafs[rows], ws->a_scalars[j], ED_A_WINDOW);
    row_table[rows] = ws->key_tables[j];
    row_kind[rows++] = 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (!status[i]) continue;
    ge_ext multiples[R_TABLE];
    odd_multiples(multiples, &ws->r_points[i], R_TABLE);
    for (int m = 0; m < R_TABLE; m++) ge_to_cached(&ws->r_tables[i][m], &multiples[m]);
    const uint64_t z4[4] = {ws->z[i][0], ws->z[i][1], 0, 0};
    ws->naf_count[rows] = wnaf(ws->nafs[rows], z4, R_WINDOW);
    row_table[rows] = ws->r_tables[i];
    row_kind[rows++] = 1;
  }

  // bucket the digits by position (a counting sort) so the main loop visits only nonzero ones
  memset(ws->counts, 0, sizeof ws->counts);
  for (size_t row = 0; row < rows; row++) {
    for (int m = 0; m < ws->naf_count[row]; m++) {
      int pos = ws->nafs[row][m].pos;
      ws->counts[pos + 1]++;
      if (pos + 1 > top) top = pos + 1;
    }
  }
  for (int pos = 0; pos < top; pos++) ws->counts[pos + 1] += ws->counts[pos];
  uint16_t fill[NAF_LEN];
  memcpy(fill, ws->counts, sizeof fill);
  for (size_t row = 0; row < rows; row++) {
    for (int m = 0; m < ws->naf_count[row]; m++) {
      event *e = &ws->events[fill[ws->nafs[row][m].pos]++];
      e->table = row_table[row];
      e->digit = ws->nafs[row][m].digit;
      e->kind = row_kind[row];
    }
  }

  ge_ext acc;
  ge_completed c;
  ge_identity(&acc);
  for (int pos = top - 1; pos >= 0; pos--) {
    ge_dbl(&c, &acc);
    int first = ws->counts[pos], last = ws->counts[pos + 1];
    if (first == last) {
      // followed by another doubling: T is not needed
      if (pos > 0) {
        ge_to_proj(&acc, &c);
        continue;
      }
      ge_to_ext(&acc, &c);
      continue;
    }
    ge_to_ext(&acc, &c);
    for (int e = first; e < last; e++) {
      const event *ev = &ws->events[e];
      int d = ev->digit, neg = d < 0, idx = (neg ? -d : d) >> 1;
      if (ev->kind == 0) {
        ge_add_niels(&c, &acc, &((const ge_niels *)ev->table)[idx], neg);
      } else {
        ge_add_cached(&c, &acc, &((const ge_cached *)ev->table)[idx], neg);
      }
      ge_to_ext(&acc, &c);
    }
  }
  // the cofactor: multiply by 8
  for (int i = 0; i < 3; i++) {
    ge_dbl(&c, &acc);
    ge_to_ext(&acc, &c);
  }
  return ge_is_identity(&acc);
}

#else

int ed_init(void) { return 0; }
int ed_prepare_key(uint8_t *out, const uint8_t key[32]) {
  (void)out;
  (void)key;
  return 0;
}
ed_workspace *ed_workspace_new(void) { return NULL; }
void ed_workspace_free(ed_workspace *ws) { (void)ws; }
int ed_verify_batch(ed_workspace *ws, const ed_item *items, size_t n, const uint8_t *const *keys, size_t nkeys,
                    uint8_t *status) {
  (void)ws;
  (void)items;
  (void)n;
  (void)keys;
  (void)nkeys;
  (void)status;
  return -1;
}

#endif
