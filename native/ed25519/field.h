// Arithmetic modulo p = 2^255 - 19 in radix 2^51: five 64-bit limbs, products in unsigned __int128.
//
// Bounds: fe_mul and fe_sq accept limbs below 2^54 and return limbs below 2^51 + 2^13. fe_add of two reduced
// values gives limbs below 2^52.1; fe_sub adds 4p before subtracting, so its subtrahend must have limbs no larger
// than 4p's (a product, a small constant or fe_carry's output, never another difference) and its result stays
// below 2^54. Every point formula feeds add/sub results straight into a product.
#ifndef TRIBLER_ED25519_FIELD_H
#define TRIBLER_ED25519_FIELD_H

#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef struct {
  uint64_t v[5];
} fe;

#define FE_MASK 0x7ffffffffffffULL

static inline void fe_copy(fe *h, const fe *f) { *h = *f; }

static inline void fe_set_small(fe *h, uint64_t x) {
  h->v[0] = x;
  h->v[1] = h->v[2] = h->v[3] = h->v[4] = 0;
}

static inline void fe_add(fe *h, const fe *f, const fe *g) {
  for (int i = 0; i < 5; i++) h->v[i] = f->v[i] + g->v[i];
}

// 4p in radix 2^51: limb 0 is 4 * (2^51 - 19), the others 4 * (2^51 - 1).
static inline void fe_sub(fe *h, const fe *f, const fe *g) {
  h->v[0] = f->v[0] + 0x1fffffffffffb4ULL - g->v[0];
  h->v[1] = f->v[1] + 0x1ffffffffffffcULL - g->v[1];
  h->v[2] = f->v[2] + 0x1ffffffffffffcULL - g->v[2];
  h->v[3] = f->v[3] + 0x1ffffffffffffcULL - g->v[3];
  h->v[4] = f->v[4] + 0x1ffffffffffffcULL - g->v[4];
}

// Carries once through the limbs: afterwards every limb is below 2^51 + 2^13, so the value may be subtracted.
static inline void fe_carry(fe *h) {
  uint64_t c;
  c = h->v[0] >> 51;
  h->v[0] &= FE_MASK;
  h->v[1] += c;
  c = h->v[1] >> 51;
  h->v[1] &= FE_MASK;
  h->v[2] += c;
  c = h->v[2] >> 51;
  h->v[2] &= FE_MASK;
  h->v[3] += c;
  c = h->v[3] >> 51;
  h->v[3] &= FE_MASK;
  h->v[4] += c;
  c = h->v[4] >> 51;
  h->v[4] &= FE_MASK;
  h->v[0] += 19 * c;
  h->v[1] += h->v[0] >> 51;
  h->v[0] &= FE_MASK;
}

static inline void fe_neg(fe *h, const fe *f) {
  fe zero;
  fe_set_small(&zero, 0);
  fe_sub(h, &zero, f);
}

static inline void fe_reduce_wide(fe *h, u128 r0, u128 r1, u128 r2, u128 r3, u128 r4) {
  uint64_t c;
  r1 += (uint64_t)(r0 >> 51);
  uint64_t h0 = (uint64_t)r0 & FE_MASK;
  r2 += (uint64_t)(r1 >> 51);
  uint64_t h1 = (uint64_t)r1 & FE_MASK;
  r3 += (uint64_t)(r2 >> 51);
  uint64_t h2 = (uint64_t)r2 & FE_MASK;
  r4 += (uint64_t)(r3 >> 51);
  uint64_t h3 = (uint64_t)r3 & FE_MASK;
  c = (uint64_t)(r4 >> 51);
  uint64_t h4 = (uint64_t)r4 & FE_MASK;
  h0 += c * 19;
  h1 += h0 >> 51;
  h0 &= FE_MASK;
  h->v[0] = h0;
  h->v[1] = h1;
  h->v[2] = h2;
  h->v[3] = h3;
  h->v[4] = h4;
}

static inline void fe_mul(fe *h, const fe *f, const fe *g) {
  const uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
  const uint64_t g0 = g->v[0], g1 = g->v[1], g2 = g->v[2], g3 = g->v[3], g4 = g->v[4];
  const uint64_t g1_19 = g1 * 19, g2_19 = g2 * 19, g3_19 = g3 * 19, g4_19 = g4 * 19;
  u128 r0 = (u128)f0 * g0 + (u128)f1 * g4_19 + (u128)f2 * g3_19 + (u128)f3 * g2_19 + (u128)f4 * g1_19;
  u128 r1 = (u128)f0 * g1 + (u128)f1 * g0 + (u128)f2 * g4_19 + (u128)f3 * g3_19 + (u128)f4 * g2_19;
  u128 r2 = (u128)f0 * g2 + (u128)f1 * g1 + (u128)f2 * g0 + (u128)f3 * g4_19 + (u128)f4 * g3_19;
  u128 r3 = (u128)f0 * g3 + (u128)f1 * g2 + (u128)f2 * g1 + (u128)f3 * g0 + (u128)f4 * g4_19;
  u128 r4 = (u128)f0 * g4 + (u128)f1 * g3 + (u128)f2 * g2 + (u128)f3 * g1 + (u128)f4 * g0;
  fe_reduce_wide(h, r0, r1, r2, r3, r4);
}

static inline void fe_sq(fe *h, const fe *f) {
  const uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
  const uint64_t f0_2 = f0 * 2, f1_2 = f1 * 2;
  const uint64_t f1_38 = f1 * 38, f2_38 = f2 * 38, f3_38 = f3 * 38, f3_19 = f3 * 19, f4_19 = f4 * 19;
  u128 r0 = (u128)f0 * f0 + (u128)f1_38 * f4 + (u128)f2_38 * f3;
  u128 r1 = (u128)f0_2 * f1 + (u128)f2_38 * f4 + (u128)f3_19 * f3;
  u128 r2 = (u128)f0_2 * f2 + (u128)f1 * f1 + (u128)f3_38 * f4;
  u128 r3 = (u128)f0_2 * f3 + (u128)f1_2 * f2 + (u128)f4_19 * f4;
  u128 r4 = (u128)f0_2 * f4 + (u128)f1_2 * f3 + (u128)f2 * f2;
  (void)f1_38;
  fe_reduce_wide(h, r0, r1, r2, r3, r4);
}

static inline void fe_sqn(fe *h, const fe *f, int n) {
  fe_sq(h, f);
  for (int i = 1; i < n; i++) fe_sq(h, h);
}

// The unique representative below p, as 32 little-endian bytes.
static inline void fe_tobytes(uint8_t s[32], const fe *f) {
  uint64_t h0 = f->v[0], h1 = f->v[1], h2 = f->v[2], h3 = f->v[3], h4 = f->v[4];
  for (int round = 0; round < 2; round++) {
    h1 += h0 >> 51;
    h0 &= FE_MASK;
    h2 += h1 >> 51;
    h1 &= FE_MASK;
    h3 += h2 >> 51;
    h2 &= FE_MASK;
    h4 += h3 >> 51;
    h3 &= FE_MASK;
    h0 += (h4 >> 51) * 19;
    h4 &= FE_MASK;
  }
  // now h < 2^255 + small; q is 1 exactly when h >= p
  uint64_t q = (h0 + 19) >> 51;
  q = (h1 + q) >> 51;
  q = (h2 + q) >> 51;
  q = (h3 + q) >> 51;
  q = (h4 + q) >> 51;
  h0 += 19 * q;
  h1 += h0 >> 51;
  h0 &= FE_MASK;
  h2 += h1 >> 51;
  h1 &= FE_MASK;
  h3 += h2 >> 51;
  h2 &= FE_MASK;
  h4 += h3 >> 51;
  h3 &= FE_MASK;
  h4 &= FE_MASK;
  uint64_t w0 = h0 | (h1 << 51);
  uint64_t w1 = (h1 >> 13) | (h2 << 38);
  uint64_t w2 = (h2 >> 26) | (h3 << 25);
  uint64_t w3 = (h3 >> 39) | (h4 << 12);
  memcpy(s, &w0, 8);
  memcpy(s + 8, &w1, 8);
  memcpy(s + 16, &w2, 8);
  memcpy(s + 24, &w3, 8);
}

// Reads 255 bits (bit 255, the sign of x in a point encoding, is ignored).
static inline void fe_frombytes(fe *h, const uint8_t s[32]) {
  uint64_t w0, w1, w2, w3;
  memcpy(&w0, s, 8);
  memcpy(&w1, s + 8, 8);
  memcpy(&w2, s + 16, 8);
  memcpy(&w3, s + 24, 8);
  h->v[0] = w0 & FE_MASK;
  h->v[1] = ((w0 >> 51) | (w1 << 13)) & FE_MASK;
  h->v[2] = ((w1 >> 38) | (w2 << 26)) & FE_MASK;
  h->v[3] = ((w2 >> 25) | (w3 << 39)) & FE_MASK;
  h->v[4] = (w3 >> 12) & FE_MASK;
}

static inline int fe_iszero(const fe *f) {
  uint8_t s[32];
  fe_tobytes(s, f);
  uint8_t acc = 0;
  for (int i = 0; i < 32; i++) acc |= s[i];
  return acc == 0;
}

static inline int fe_isodd(const fe *f) {
  uint8_t s[32];
  fe_tobytes(s, f);
  return s[0] & 1;
}

// z^(2^250 - 1), the common head of both exponentiations below; also returns z^11 in z11.
static inline void fe_pow_2_250_1(fe *out, fe *z11, const fe *z) {
  fe t0, t1, t2;
  fe_sq(&t0, z);             // z^2
  fe_sqn(&t1, &t0, 2);       // z^8
  fe_mul(&t1, &t1, z);       // z^9
  fe_mul(z11, &t0, &t1);     // z^11
  fe_sq(&t0, z11);           // z^22
  fe_mul(&t0, &t0, &t1);     // z^31 = z^(2^5 - 1)
  fe_sqn(&t1, &t0, 5);
  fe_mul(&t0, &t1, &t0);     // 2^10 - 1
  fe_sqn(&t1, &t0, 10);
  fe_mul(&t1, &t1, &t0);     // 2^20 - 1
  fe_sqn(&t2, &t1, 20);
  fe_mul(&t1, &t2, &t1);     // 2^40 - 1
  fe_sqn(&t1, &t1, 10);
  fe_mul(&t0, &t1, &t0);     // 2^50 - 1
  fe_sqn(&t1, &t0, 50);
  fe_mul(&t1, &t1, &t0);     // 2^100 - 1
  fe_sqn(&t2, &t1, 100);
  fe_mul(&t1, &t2, &t1);     // 2^200 - 1
  fe_sqn(&t1, &t1, 50);
  fe_mul(out, &t1, &t0);     // 2^250 - 1
}

// z^(p - 2) = z^(2^255 - 21) = 1/z for z != 0.
static inline void fe_invert(fe *out, const fe *z) {
  fe t, z11;
  fe_pow_2_250_1(&t, &z11, z);
  fe_sqn(&t, &t, 5);
  fe_mul(out, &t, &z11);
}

// z^((p - 5) / 8) = z^(2^252 - 3), the exponent of the square-root step of point decompression.
static inline void fe_pow22523(fe *out, const fe *z) {
  fe t, z11;
  fe_pow_2_250_1(&t, &z11, z);
  fe_sqn(&t, &t, 2);
  fe_mul(out, &t, z);
}

#endif
