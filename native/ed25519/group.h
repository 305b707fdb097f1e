// The twisted Edwards curve -x^2 + y^2 = 1 + d x^2 y^2 over GF(2^255 - 19) (RFC 8032 section 5.1), in the extended
// coordinates of Hisil, Wong, Carter and Dawson, "Twisted Edwards Curves Revisited" (2008): x = X/Z, y = Y/Z,
// T = XY/Z. Additions and doublings go through the "completed" form (E, F, G, H), from which X = EF, Y = GH,
// Z = FG, T = EH; a doubling that is followed by another doubling skips T.
#ifndef TRIBLER_ED25519_GROUP_H
#define TRIBLER_ED25519_GROUP_H

#include "field.h"

typedef struct {
  fe X, Y, Z, T;
} ge_ext;

typedef struct {
  fe E, F, G, H;
} ge_completed;

// A point prepared for addition: Y + X, Y - X, 2Z and 2dT.
typedef struct {
  fe YplusX, YminusX, Z2, T2d;
} ge_cached;

// An affine point prepared for addition (Z = 1): y + x, y - x and 2dxy.
typedef struct {
  fe yplusx, yminusx, xy2d;
} ge_niels;

static const fe FE_D = {{0x34dca135978a3ULL, 0x1a8283b156ebdULL, 0x5e7a26001c029ULL, 0x739c663a03cbbULL,
                         0x52036cee2b6ffULL}};
static const fe FE_D2 = {{0x69b9426b2f159ULL, 0x35050762add7aULL, 0x3cf44c0038052ULL, 0x6738cc7407977ULL,
                          0x2406d9dc56dffULL}};
static const fe FE_SQRTM1 = {{0x61b274a0ea0b0ULL, 0xd5a5fc8f189dULL, 0x7ef5e9cbd0c60ULL, 0x78595a6804c9eULL,
                              0x2b8324804fc1dULL}};

static inline void ge_identity(ge_ext *p) {
  fe_set_small(&p->X, 0);
  fe_set_small(&p->Y, 1);
  fe_set_small(&p->Z, 1);
  fe_set_small(&p->T, 0);
}

static inline void ge_to_ext(ge_ext *r, const ge_completed *c) {
  fe_mul(&r->X, &c->E, &c->F);
  fe_mul(&r->Y, &c->G, &c->H);
  fe_mul(&r->Z, &c->F, &c->G);
  fe_mul(&r->T, &c->E, &c->H);
}

// X, Y and Z only: enough for a following doubling.
static inline void ge_to_proj(ge_ext *r, const ge_completed *c) {
  fe_mul(&r->X, &c->E, &c->F);
  fe_mul(&r->Y, &c->G, &c->H);
  fe_mul(&r->Z, &c->F, &c->G);
}

// 2P for a = -1 ("dbl-2008-hwcd" with every intermediate negated); reads X, Y, Z only.
static inline void ge_dbl(ge_completed *r, const ge_ext *p) {
  fe a, b, c, s;
  fe_sq(&a, &p->X);
  fe_sq(&b, &p->Y);
  fe_sq(&c, &p->Z);
  fe_add(&c, &c, &c);
  fe_add(&s, &p->X, &p->Y);
  fe_sq(&s, &s);
  fe_add(&r->H, &a, &b);     // A + B
  fe_sub(&r->E, &r->H, &s);  // A + B - (X + Y)^2
  fe_sub(&r->G, &a, &b);     // A - B
  fe_add(&r->F, &c, &r->G);  // 2Z^2 + A - B
}

static inline void ge_to_cached(ge_cached *r, const ge_ext *p) {
  fe_add(&r->YplusX, &p->Y, &p->X);
  fe_sub(&r->YminusX, &p->Y, &p->X);
  fe_add(&r->Z2, &p->Z, &p->Z);
  fe_mul(&r->T2d, &p->T, &FE_D2);
}

// P + Q ("add-2008-hwcd-3"); with neg set, P - Q.
static inline void ge_add_cached(ge_completed *r, const ge_ext *p, const ge_cached *q, int neg) {
  fe a, b, c, d;
  fe_add(&b, &p->Y, &p->X);
  fe_sub(&a, &p->Y, &p->X);
  fe_mul(&a, &a, neg ? &q->YplusX : &q->YminusX);
  fe_mul(&b, &b, neg ? &q->YminusX : &q->YplusX);
  fe_mul(&c, &p->T, &q->T2d);
  fe_mul(&d, &p->Z, &q->Z2);
  fe_sub(&r->E, &b, &a);
  fe_add(&r->H, &b, &a);
  if (neg) {
    fe_sub(&r->F, &d, &c);
    fe_add(&r->G, &d, &c);
    // -Q has T negated: swap the roles of D - C and D + C
    fe tmp = r->F;
    r->F = r->G;
    r->G = tmp;
  } else {
    fe_sub(&r->F, &d, &c);
    fe_add(&r->G, &d, &c);
  }
}

// P + Q for an affine Q (its Z is 1, so D = 2Z1 needs no product); with neg set, P - Q.
static inline void ge_add_niels(ge_completed *r, const ge_ext *p, const ge_niels *q, int neg) {
  fe a, b, c, d;
  fe_add(&b, &p->Y, &p->X);
  fe_sub(&a, &p->Y, &p->X);
  fe_mul(&a, &a, neg ? &q->yplusx : &q->yminusx);
  fe_mul(&b, &b, neg ? &q->yminusx : &q->yplusx);
  fe_mul(&c, &p->T, &q->xy2d);
  fe_add(&d, &p->Z, &p->Z);
  fe_sub(&r->E, &b, &a);
  fe_add(&r->H, &b, &a);
  if (neg) {
    fe_add(&r->F, &d, &c);
    fe_sub(&r->G, &d, &c);
  } else {
    fe_sub(&r->F, &d, &c);
    fe_add(&r->G, &d, &c);
  }
}

// Whether 32 bytes encode a y at or above p (a non-canonical encoding; the sign bit is not part of y).
static inline int ge_y_noncanonical(const uint8_t s[32]) {
  if ((s[31] & 0x7f) != 0x7f) return 0;
  for (int i = 30; i >= 1; i--)
    if (s[i] != 0xff) return 0;
  return s[0] >= 0xed;
}

// The canonical y of every point of order 1, 2, 4 or 8: y = 1, y = p - 1, y = 0 (order 4) and the two order-8
// values. An encoding with one of these y is a small-order point whatever its sign bit.
static const uint8_t SMALL_ORDER_Y[5][32] = {
    {0x01},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0x00},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
     0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
     0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
};

static inline int ge_small_order_y(const uint8_t s[32]) {
  for (int k = 0; k < 5; k++) {
    int same = (s[31] & 0x7f) == SMALL_ORDER_Y[k][31];
    for (int i = 0; same && i < 31; i++) same = s[i] == SMALL_ORDER_Y[k][i];
    if (same) return 1;
  }
  return 0;
}

// RFC 8032 section 5.1.3. Returns 0 for a y at or above p, a y with no x on the curve, or x = 0 with the sign bit
// set; the caller checks small order separately.
static inline int ge_decompress(ge_ext *p, const uint8_t s[32]) {
  if (ge_y_noncanonical(s)) return 0;
  fe y, u, v, v3, vxx, x, t, one;
  fe_frombytes(&y, s);
  fe_set_small(&one, 1);
  fe_sq(&u, &y);
  fe_mul(&v, &u, &FE_D);
  fe_sub(&u, &u, &one);  // y^2 - 1
  fe_carry(&u);          // u is subtracted below
  fe_add(&v, &v, &one);  // d y^2 + 1
  fe_sq(&v3, &v);
  fe_mul(&v3, &v3, &v);  // v^3
  fe_sq(&x, &v3);
  fe_mul(&x, &x, &v);
  fe_mul(&x, &x, &u);  // u v^7
  fe_pow22523(&x, &x);
  fe_mul(&x, &x, &v3);
  fe_mul(&x, &x, &u);  // u v^3 (u v^7)^((p - 5) / 8)
  fe_sq(&vxx, &x);
  fe_mul(&vxx, &vxx, &v);
  fe_sub(&t, &vxx, &u);
  if (!fe_iszero(&t)) {
    fe_add(&t, &vxx, &u);
    if (!fe_iszero(&t)) return 0;
    fe_mul(&x, &x, &FE_SQRTM1);
  }
  int sign = s[31] >> 7;
  if (fe_iszero(&x) && sign) return 0;
  if (fe_isodd(&x) != sign) fe_neg(&x, &x);
  p->X = x;
  p->Y = y;
  fe_set_small(&p->Z, 1);
  fe_mul(&p->T, &x, &y);
  return 1;
}

// The canonical encoding of a point (used by tests and table construction checks).
static inline void ge_tobytes(uint8_t s[32], const ge_ext *p) {
  fe zi, x, y;
  fe_invert(&zi, &p->Z);
  fe_mul(&x, &p->X, &zi);
  fe_mul(&y, &p->Y, &zi);
  fe_tobytes(s, &y);
  s[31] |= (uint8_t)(fe_isodd(&x) << 7);
}

// Whether P is the neutral element: X = 0 and Y = Z, with Z != 0. (0 : 0 : 0 : 0) is no point at all, but the
// formulas map it to itself, so an accumulator that degenerated (from table entries that are not points) would
// otherwise look like a passing batch.
static inline int ge_is_identity(const ge_ext *p) {
  fe t;
  if (fe_iszero(&p->Z)) return 0;
  fe_sub(&t, &p->Y, &p->Z);
  return fe_iszero(&p->X) && fe_iszero(&t);
}

#endif
