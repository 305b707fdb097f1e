// Integers modulo the group order L = 2^252 + 27742317777372353535851937790883648493, in four 64-bit limbs.
// Reduction of up to 512-bit values is Barrett's (Handbook of Applied Cryptography, algorithm 14.42) with base
// 2^64, k = 4 and mu = floor(2^512 / L).
#ifndef TRIBLER_ED25519_SCALAR_H
#define TRIBLER_ED25519_SCALAR_H

#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;

static const uint64_t SC_L[4] = {0x5812631a5cf5d3edULL, 0x14def9dea2f79cd6ULL, 0, 0x1000000000000000ULL};
static const uint64_t SC_MU[5] = {0xed9ce5a30a2c131bULL, 0x2106215d086329a7ULL, 0xffffffffffffffebULL,
                                  0xffffffffffffffffULL, 0xfULL};

static inline void sc_load(uint64_t out[4], const uint8_t s[32]) {
  for (int i = 0; i < 4; i++) memcpy(&out[i], s + 8 * i, 8);
}

// a >= b over n limbs
static inline int mp_geq(const uint64_t *a, const uint64_t *b, int n) {
  for (int i = n - 1; i >= 0; i--) {
    if (a[i] != b[i]) return a[i] > b[i];
  }
  return 1;
}

// a -= b over n limbs (mod 2^(64n))
static inline void mp_sub(uint64_t *a, const uint64_t *b, int n) {
  uint64_t borrow = 0;
  for (int i = 0; i < n; i++) {
    u128 d = (u128)a[i] - b[i] - borrow;
    a[i] = (uint64_t)d;
    borrow = (uint64_t)(d >> 64) & 1;
  }
}

// Whether a 32-byte little-endian scalar is below L (RFC 8032 requires 0 <= S < L).
static inline int sc_is_canonical(const uint8_t s[32]) {
  uint64_t x[4];
  sc_load(x, s);
  return !mp_geq(x, SC_L, 4);
}

// out = x mod L for x < 2^512 given as eight limbs.
static inline void sc_reduce512(uint64_t out[4], const uint64_t x[8]) {
  // q1 = floor(x / 2^192): limbs 3..7; q2 = q1 * mu; q3 = floor(q2 / 2^320)
  uint64_t q2[10] = {0};
  for (int i = 0; i < 5; i++) {
    uint64_t carry = 0;
    for (int j = 0; j < 5; j++) {
      u128 t = (u128)x[3 + i] * SC_MU[j] + q2[i + j] + carry;
      q2[i + j] = (uint64_t)t;
      carry = (uint64_t)(t >> 64);
    }
    q2[i + 5] = carry;
  }
  const uint64_t *q3 = q2 + 5;
  // r2 = q3 * L mod 2^320
  uint64_t r2[5] = {0};
  for (int i = 0; i < 5; i++) {
    uint64_t carry = 0;
    for (int j = 0; j < 4 && i + j < 5; j++) {
      u128 t = (u128)q3[i] * SC_L[j] + r2[i + j] + carry;
      r2[i + j] = (uint64_t)t;
      carry = (uint64_t)(t >> 64);
    }
    if (i + 4 < 5) r2[i + 4] += carry;
  }
  uint64_t r[5] = {x[0], x[1], x[2], x[3], x[4]};
  mp_sub(r, r2, 5);
  const uint64_t l5[5] = {SC_L[0], SC_L[1], SC_L[2], SC_L[3], 0};
  while (mp_geq(r, l5, 5)) mp_sub(r, l5, 5);
  memcpy(out, r, 32);
}

// out = (a * b) mod L for a of two limbs (a 128-bit multiplier) and b of four.
static inline void sc_mul_128(uint64_t out[4], const uint64_t a[2], const uint64_t b[4]) {
  uint64_t w[8] = {0};
  for (int i = 0; i < 2; i++) {
    uint64_t carry = 0;
    for (int j = 0; j < 4; j++) {
      u128 t = (u128)a[i] * b[j] + w[i + j] + carry;
      w[i + j] = (uint64_t)t;
      carry = (uint64_t)(t >> 64);
    }
    w[i + 4] = carry;
  }
  sc_reduce512(out, w);
}

// acc (eight limbs) += a * b for a of two limbs and b of four; the caller keeps acc below 2^512.
static inline void sc_muladd_wide(uint64_t acc[8], const uint64_t a[2], const uint64_t b[4]) {
  for (int i = 0; i < 2; i++) {
    uint64_t carry = 0;
    for (int j = 0; j < 4; j++) {
      u128 t = (u128)a[i] * b[j] + acc[i + j] + carry;
      acc[i + j] = (uint64_t)t;
      carry = (uint64_t)(t >> 64);
    }
    for (int k = i + 4; k < 8 && carry; k++) {
      u128 t = (u128)acc[k] + carry;
      acc[k] = (uint64_t)t;
      carry = (uint64_t)(t >> 64);
    }
  }
}

// out = (a + b) mod L for a, b < L.
static inline void sc_add(uint64_t out[4], const uint64_t a[4], const uint64_t b[4]) {
  uint64_t carry = 0;
  for (int i = 0; i < 4; i++) {
    u128 t = (u128)a[i] + b[i] + carry;
    out[i] = (uint64_t)t;
    carry = (uint64_t)(t >> 64);
  }
  // a + b < 2L < 2^254: no carry out of the top limb
  if (mp_geq(out, SC_L, 4)) mp_sub(out, SC_L, 4);
}

// out = (-a) mod L for a < L.
static inline void sc_neg(uint64_t out[4], const uint64_t a[4]) {
  if ((a[0] | a[1] | a[2] | a[3]) == 0) {
    memset(out, 0, 32);
    return;
  }
  uint64_t t[4] = {SC_L[0], SC_L[1], SC_L[2], SC_L[3]};
  mp_sub(t, a, 4);
  memcpy(out, t, 32);
}

#endif
