//! ECDSA P-256 verification with precomputed tables, for public keys that
//! sign many envelopes (a client's or an orderer's certificate).
//!
//! ring's verification computes `u1·G + u2·Q` with a fixed table for `G`
//! but a constant-time windowed multiplication for `Q`, which is about
//! three quarters of its cost. Verification handles only public data, so
//! it may run in variable time: here both `G` and a hot key `Q` get a comb
//! table of `j·2^(8i)·P` (i < 32, 1 ≤ j ≤ 255, affine), and `u1·G + u2·Q`
//! is at most 64 mixed additions, with no doublings.
//!
//! Field and scalar arithmetic: fiat-crypto's machine-checked Montgomery
//! arithmetic modulo p and n for conversions, additions and subtractions;
//! multiplication is our own (`mont_mul`, tested against fiat-crypto's);
//! the inverse mod n is a binary extended Euclid (tested against Fermat,
//! and each result re-checked by one multiplication). The point formulas are the
//! standard Jacobian ones for a = −3 ("dbl-2001-b", "madd-2007-bl" in the
//! Explicit-Formulas Database).
//!
//! Safety net: [`KeyTable::verify`] answers only `Some(true)` for a
//! strictly DER-encoded signature that it verified; anything else (`None`
//! or `Some(false)`) is handed to ring by the caller, so a rejection is
//! always ring's. Tables are built only for keys ring has already accepted
//! signatures from (the key is a valid curve point, re-checked here).

use std::sync::OnceLock;

use fiat_crypto::p256_64 as fp;
use fiat_crypto::p256_scalar_64 as fs;
use sha2::{Digest, Sha256};

/// A 256-bit integer, little-endian 64-bit limbs.
type U256 = [u64; 4];

/// The field prime p.
const P: U256 = [
    0xffff_ffff_ffff_ffff,
    0x0000_0000_ffff_ffff,
    0x0000_0000_0000_0000,
    0xffff_ffff_0000_0001,
];
/// The group order n.
const N: U256 = [
    0xf3b9_cac2_fc63_2551,
    0xbce6_faad_a717_9e84,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_0000_0000,
];
const B_BE: [u8; 32] = hex32("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b");
const GX_BE: [u8; 32] = hex32("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
const GY_BE: [u8; 32] = hex32("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a hex digit"),
    }
}

fn u256_from_be(b: &[u8; 32]) -> U256 {
    let mut out = [0u64; 4];
    for (i, limb) in out.iter_mut().enumerate() {
        let off = 32 - 8 * (i + 1);
        *limb = u64::from_be_bytes(b[off..off + 8].try_into().expect("8 bytes"));
    }
    out
}

fn lt(a: &U256, b: &U256) -> bool {
    for i in (0..4).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

fn is_zero(a: &U256) -> bool {
    a.iter().all(|&l| l == 0)
}

/// `a + b` and whether it overflowed 2^256.
fn add_u256(a: &U256, b: &U256) -> (U256, bool) {
    let mut out = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        out[i] = s2;
        carry = c1 || c2;
    }
    (out, carry)
}

/// `a − b` for `a ≥ b`.
fn sub_u256(a: &U256, b: &U256) -> U256 {
    let mut out = [0u64; 4];
    let mut borrow = false;
    for i in 0..4 {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        out[i] = d2;
        borrow = b1 || b2;
    }
    out
}

/// `-m^-1 mod 2^64` for an odd `m0` (Newton's iteration).
const fn neg_inv64(m0: u64) -> u64 {
    let mut inv: u64 = 1;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(m0.wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg()
}

const N_MINV: u64 = neg_inv64(N[0]);
const P_MINV: u64 = neg_inv64(P[0]);

#[inline(always)]
fn mac(acc: u64, a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(acc) + u128::from(a) * u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

#[inline(always)]
fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) + u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

/// `a − b − borrow` where `borrow` is 0 or all ones; the new borrow likewise.
#[inline(always)]
fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let t = u128::from(a).wrapping_sub(u128::from(b) + u128::from(borrow >> 63));
    (t as u64, (t >> 64) as u64)
}

/// Montgomery multiplication `a·b·2^-256 mod m` for `a, b < m` (odd `m`,
/// `minv = −m⁻¹ mod 2^64`): the schoolbook product, then four word-by-word
/// reduction steps and one conditional subtraction. The same representation
/// as fiat-crypto's, which the tests check it against.
#[inline(always)]
fn mont_mul(a: &U256, b: &U256, m: &U256, minv: u64) -> U256 {
    let (w0, c) = mac(0, a[0], b[0], 0);
    let (w1, c) = mac(0, a[0], b[1], c);
    let (w2, c) = mac(0, a[0], b[2], c);
    let (w3, w4) = mac(0, a[0], b[3], c);
    let (w1, c) = mac(w1, a[1], b[0], 0);
    let (w2, c) = mac(w2, a[1], b[1], c);
    let (w3, c) = mac(w3, a[1], b[2], c);
    let (w4, w5) = mac(w4, a[1], b[3], c);
    let (w2, c) = mac(w2, a[2], b[0], 0);
    let (w3, c) = mac(w3, a[2], b[1], c);
    let (w4, c) = mac(w4, a[2], b[2], c);
    let (w5, w6) = mac(w5, a[2], b[3], c);
    let (w3, c) = mac(w3, a[3], b[0], 0);
    let (w4, c) = mac(w4, a[3], b[1], c);
    let (w5, c) = mac(w5, a[3], b[2], c);
    let (w6, w7) = mac(w6, a[3], b[3], c);

    let k = w0.wrapping_mul(minv);
    let (_, c) = mac(w0, k, m[0], 0);
    let (w1, c) = mac(w1, k, m[1], c);
    let (w2, c) = mac(w2, k, m[2], c);
    let (w3, c) = mac(w3, k, m[3], c);
    let (w4, c2) = adc(w4, c, 0);
    let k = w1.wrapping_mul(minv);
    let (_, c) = mac(w1, k, m[0], 0);
    let (w2, c) = mac(w2, k, m[1], c);
    let (w3, c) = mac(w3, k, m[2], c);
    let (w4, c) = mac(w4, k, m[3], c);
    let (w5, c2) = adc(w5, c, c2);
    let k = w2.wrapping_mul(minv);
    let (_, c) = mac(w2, k, m[0], 0);
    let (w3, c) = mac(w3, k, m[1], c);
    let (w4, c) = mac(w4, k, m[2], c);
    let (w5, c) = mac(w5, k, m[3], c);
    let (w6, c2) = adc(w6, c, c2);
    let k = w3.wrapping_mul(minv);
    let (_, c) = mac(w3, k, m[0], 0);
    let (w4, c) = mac(w4, k, m[1], c);
    let (w5, c) = mac(w5, k, m[2], c);
    let (w6, c) = mac(w6, k, m[3], c);
    let (w7, c2) = adc(w7, c, c2);

    // (c2, w7..w4) < 2m: subtract m unless that borrows.
    let (r0, b) = sbb(w4, m[0], 0);
    let (r1, b) = sbb(w5, m[1], b);
    let (r2, b) = sbb(w6, m[2], b);
    let (r3, b) = sbb(w7, m[3], b);
    let (_, b) = sbb(c2, 0, b);
    [
        (w4 & b) | (r0 & !b),
        (w5 & b) | (r1 & !b),
        (w6 & b) | (r2 & !b),
        (w7 & b) | (r3 & !b),
    ]
}

// ---- the field modulo p (Montgomery domain, always fully reduced) ----

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Fe(U256);

impl Fe {
    const ZERO: Fe = Fe([0; 4]);

    /// From an integer below p.
    fn from_int(a: &U256) -> Option<Fe> {
        if !lt(a, &P) {
            return None;
        }
        let mut out = fp::fiat_p256_montgomery_domain_field_element([0; 4]);
        fp::fiat_p256_to_montgomery(
            &mut out,
            &fp::fiat_p256_non_montgomery_domain_field_element(*a),
        );
        Some(Fe(out.0))
    }

    fn one() -> Fe {
        let mut out = fp::fiat_p256_montgomery_domain_field_element([0; 4]);
        fp::fiat_p256_set_one(&mut out);
        Fe(out.0)
    }

    fn mul(&self, b: &Fe) -> Fe {
        Fe(mont_mul(&self.0, &b.0, &P, P_MINV))
    }

    fn sq(&self) -> Fe {
        Fe(mont_mul(&self.0, &self.0, &P, P_MINV))
    }

    fn add(&self, b: &Fe) -> Fe {
        let mut out = fp::fiat_p256_montgomery_domain_field_element([0; 4]);
        fp::fiat_p256_add(
            &mut out,
            &fp::fiat_p256_montgomery_domain_field_element(self.0),
            &fp::fiat_p256_montgomery_domain_field_element(b.0),
        );
        Fe(out.0)
    }

    fn sub(&self, b: &Fe) -> Fe {
        let mut out = fp::fiat_p256_montgomery_domain_field_element([0; 4]);
        fp::fiat_p256_sub(
            &mut out,
            &fp::fiat_p256_montgomery_domain_field_element(self.0),
            &fp::fiat_p256_montgomery_domain_field_element(b.0),
        );
        Fe(out.0)
    }

    fn is_zero(&self) -> bool {
        is_zero(&self.0)
    }

    /// `self^(p−2)` (Fermat), square-and-multiply: only for table building.
    fn invert(&self) -> Fe {
        let e = sub_u256(&P, &[2, 0, 0, 0]);
        let mut acc = Fe::one();
        for i in (0..256).rev() {
            acc = acc.sq();
            if (e[i / 64] >> (i % 64)) & 1 == 1 {
                acc = acc.mul(self);
            }
        }
        acc
    }
}

// ---- scalars modulo n (Montgomery domain) ----

#[derive(Clone, Copy)]
struct Sc(U256);

impl Sc {
    /// From an integer below n.
    fn from_int(a: &U256) -> Sc {
        debug_assert!(lt(a, &N));
        let mut out = fs::fiat_p256_scalar_montgomery_domain_field_element([0; 4]);
        fs::fiat_p256_scalar_to_montgomery(
            &mut out,
            &fs::fiat_p256_scalar_non_montgomery_domain_field_element(*a),
        );
        Sc(out.0)
    }

    fn mul(&self, b: &Sc) -> Sc {
        Sc(mont_mul(&self.0, &b.0, &N, N_MINV))
    }

    #[cfg(test)]
    fn sq(&self) -> Sc {
        Sc(mont_mul(&self.0, &self.0, &N, N_MINV))
    }

    /// Little-endian bytes of the integer (tests).
    #[cfg(test)]
    fn to_le_bytes(self) -> [u8; 32] {
        let mut plain = fs::fiat_p256_scalar_non_montgomery_domain_field_element([0; 4]);
        fs::fiat_p256_scalar_from_montgomery(
            &mut plain,
            &fs::fiat_p256_scalar_montgomery_domain_field_element(self.0),
        );
        let mut out = [0u8; 32];
        fs::fiat_p256_scalar_to_bytes(&mut out, &plain.0);
        out
    }

    /// `self^(n−2)` with a fixed 4-bit window (self ≠ 0): the reference
    /// [`inv_mod_n`] is tested against.
    #[cfg(test)]
    fn invert(&self) -> Sc {
        let e = sub_u256(&N, &[2, 0, 0, 0]);
        let mut pows = [*self; 16];
        let mut one = fs::fiat_p256_scalar_montgomery_domain_field_element([0; 4]);
        fs::fiat_p256_scalar_set_one(&mut one);
        pows[0] = Sc(one.0);
        for i in 2..16 {
            pows[i] = pows[i - 1].mul(self);
        }
        let mut acc = pows[0];
        for w in (0..64).rev() {
            for _ in 0..4 {
                acc = acc.sq();
            }
            let d = ((e[w / 16] >> ((w % 16) * 4)) & 0xf) as usize;
            if d != 0 {
                acc = acc.mul(&pows[d]);
            }
        }
        acc
    }
}

/// `a⁻¹ mod n` for `0 < a < n`, as a plain integer: the binary extended
/// Euclidean algorithm, in variable time (verification handles public
/// values only). Invariants: `x1·a ≡ u`, `x2·a ≡ v (mod n)`, `u, v` odd
/// after their shifts; a division by `2^k` of an `x` adds the multiple of `n`
/// that clears its low `k` bits (as in Montgomery reduction).
fn inv_mod_n(a: &U256) -> U256 {
    fn shr(v: &mut U256, k: u32) {
        if k == 0 {
            return;
        }
        for i in 0..4 {
            let hi = if i < 3 { v[i + 1] << (64 - k) } else { 0 };
            v[i] = (v[i] >> k) | hi;
        }
    }
    /// `x / 2^k mod n` for `x < n`, `k < 64`.
    fn halve(x: &mut U256, k: u32) {
        if k == 0 {
            return;
        }
        let t = x[0].wrapping_mul(N_MINV) & ((1u64 << k) - 1);
        let mut w = [0u64; 5];
        let mut c = 0;
        for i in 0..4 {
            let (lo, hi) = mac(x[i], t, N[i], c);
            w[i] = lo;
            c = hi;
        }
        w[4] = c;
        for i in 0..4 {
            x[i] = (w[i] >> k) | (w[i + 1] << (64 - k));
        }
        if !lt(x, &N) {
            *x = sub_u256(x, &N);
        }
    }
    fn sub_mod(a: &U256, b: &U256) -> U256 {
        if lt(a, b) {
            let (t, _) = add_u256(a, &N);
            sub_u256(&t, b)
        } else {
            sub_u256(a, b)
        }
    }
    const ONE: U256 = [1, 0, 0, 0];
    let (mut u, mut v) = (*a, N);
    let (mut x1, mut x2) = (ONE, [0u64; 4]);
    while u != ONE && v != ONE {
        if is_zero(&u) || is_zero(&v) {
            return [0; 4]; // not invertible (not for 0 < a < n)
        }
        loop {
            let k = u[0].trailing_zeros();
            if k == 0 {
                break;
            }
            let k = k.min(63);
            shr(&mut u, k);
            halve(&mut x1, k);
        }
        loop {
            let k = v[0].trailing_zeros();
            if k == 0 {
                break;
            }
            let k = k.min(63);
            shr(&mut v, k);
            halve(&mut x2, k);
        }
        if !lt(&u, &v) {
            u = sub_u256(&u, &v);
            x1 = sub_mod(&x1, &x2);
        } else {
            v = sub_u256(&v, &u);
            x2 = sub_mod(&x2, &x1);
        }
    }
    if u == ONE {
        x1
    } else {
        x2
    }
}

// ---- points ----

#[derive(Clone, Copy, Debug)]
struct Affine {
    x: Fe,
    y: Fe,
}

#[derive(Clone, Copy, Debug)]
struct Jac {
    x: Fe,
    y: Fe,
    z: Fe,
    inf: bool,
}

impl Jac {
    const INF: Jac = Jac {
        x: Fe::ZERO,
        y: Fe::ZERO,
        z: Fe::ZERO,
        inf: true,
    };

    fn from_affine(a: &Affine) -> Jac {
        Jac {
            x: a.x,
            y: a.y,
            z: Fe::one(),
            inf: false,
        }
    }

    /// 2·self (a = −3).
    fn double(&self) -> Jac {
        if self.inf || self.y.is_zero() {
            return Jac::INF;
        }
        let delta = self.z.sq();
        let gamma = self.y.sq();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.add(&t).add(&t);
        let beta4 = beta.add(&beta).add(&beta.add(&beta));
        let beta8 = beta4.add(&beta4);
        let x3 = alpha.sq().sub(&beta8);
        let z3 = self.y.add(&self.z).sq().sub(&gamma).sub(&delta);
        let g2 = gamma.sq();
        let g4 = g2.add(&g2).add(&g2.add(&g2));
        let g8 = g4.add(&g4);
        let y3 = alpha.mul(&beta4.sub(&x3)).sub(&g8);
        Jac {
            x: x3,
            y: y3,
            z: z3,
            inf: false,
        }
    }

    /// self + q, q affine.
    fn add_affine(&self, q: &Affine) -> Jac {
        if self.inf {
            return Jac::from_affine(q);
        }
        let z1z1 = self.z.sq();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let d = s2.sub(&self.y);
        if h.is_zero() {
            return if d.is_zero() { self.double() } else { Jac::INF };
        }
        let rr = d.add(&d);
        let hh = h.sq();
        let i = hh.add(&hh).add(&hh.add(&hh));
        let j = h.mul(&i);
        let v = self.x.mul(&i);
        let x3 = rr.sq().sub(&j).sub(&v.add(&v));
        let yj = self.y.mul(&j);
        let y3 = rr.mul(&v.sub(&x3)).sub(&yj.add(&yj));
        let z3 = self.z.add(&h).sq().sub(&z1z1).sub(&hh);
        Jac {
            x: x3,
            y: y3,
            z: z3,
            inf: false,
        }
    }
}

/// Affine forms of `points` (none at infinity), one inversion in all.
fn normalize_all(points: &[Jac]) -> Option<Vec<Affine>> {
    if points.iter().any(|p| p.inf || p.z.is_zero()) {
        return None;
    }
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = Fe::one();
    for p in points {
        prefix.push(acc);
        acc = acc.mul(&p.z);
    }
    let mut inv = acc.invert();
    let mut out = vec![
        Affine {
            x: Fe::ZERO,
            y: Fe::ZERO
        };
        points.len()
    ];
    for (k, p) in points.iter().enumerate().rev() {
        let zinv = inv.mul(&prefix[k]);
        inv = inv.mul(&p.z);
        let z2 = zinv.sq();
        out[k] = Affine {
            x: p.x.mul(&z2),
            y: p.y.mul(&z2.mul(&zinv)),
        };
    }
    Some(out)
}

const WINDOWS: usize = 32;
const ENTRIES: usize = 255;

/// `j·2^(8i)·P` for every window i and digit j.
struct Comb(Vec<Affine>);

impl Comb {
    fn build(p: &Affine) -> Option<Comb> {
        let mut table = Vec::with_capacity(WINDOWS * ENTRIES);
        let mut base = *p;
        for _ in 0..WINDOWS {
            let mut jacs = Vec::with_capacity(ENTRIES + 1);
            let mut acc = Jac::from_affine(&base);
            jacs.push(acc);
            for _ in 1..=ENTRIES {
                acc = acc.add_affine(&base);
                jacs.push(acc);
            }
            // jacs[ENTRIES] = 256·base, the next window's base.
            let aff = normalize_all(&jacs)?;
            table.extend_from_slice(&aff[..ENTRIES]);
            base = aff[ENTRIES];
        }
        Some(Comb(table))
    }

    fn entry(&self, window: usize, digit: u8) -> &Affine {
        &self.0[window * ENTRIES + usize::from(digit) - 1]
    }
}

fn on_curve(p: &Affine) -> bool {
    let b = Fe::from_int(&u256_from_be(&B_BE)).expect("b < p");
    let x3 = p.x.sq().mul(&p.x);
    let three_x = p.x.add(&p.x).add(&p.x);
    p.y.sq() == x3.sub(&three_x).add(&b)
}

fn g_comb() -> &'static Comb {
    static G: OnceLock<Comb> = OnceLock::new();
    G.get_or_init(|| {
        let g = Affine {
            x: Fe::from_int(&u256_from_be(&GX_BE)).expect("Gx < p"),
            y: Fe::from_int(&u256_from_be(&GY_BE)).expect("Gy < p"),
        };
        debug_assert!(on_curve(&g));
        Comb::build(&g).expect("G's multiples are finite")
    })
}

/// One strictly DER-encoded INTEGER in 1..n, as a big-endian 32-byte value.
fn der_scalar(b: &[u8]) -> Option<(U256, &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if tag != 0x02 || len == 0 || len > 33 || rest.len() < len {
        return None;
    }
    let (v, rest) = rest.split_at(len);
    if v[0] & 0x80 != 0 {
        return None; // negative
    }
    if len > 1 && v[0] == 0 && v[1] & 0x80 == 0 {
        return None; // not minimal
    }
    let v = if v[0] == 0 && len > 1 { &v[1..] } else { v };
    if v.len() > 32 {
        return None;
    }
    let mut be = [0u8; 32];
    be[32 - v.len()..].copy_from_slice(v);
    let x = u256_from_be(&be);
    if is_zero(&x) || !lt(&x, &N) {
        return None;
    }
    Some((x, rest))
}

/// `SEQUENCE { INTEGER r, INTEGER s }` in strict DER, nothing after it.
fn parse_sig(sig: &[u8]) -> Option<(U256, U256)> {
    let (&tag, rest) = sig.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if tag != 0x30 || len >= 0x80 || usize::from(len) != rest.len() {
        return None;
    }
    let (r, rest) = der_scalar(rest)?;
    let (s, rest) = der_scalar(rest)?;
    rest.is_empty().then_some((r, s))
}

/// The little-endian bytes of a plain integer (the comb's digits).
fn le_bytes(v: &U256) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, l) in v.iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
    }
    out
}

/// A public key's comb table (about 510 KiB).
pub struct KeyTable {
    comb: Comb,
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyTable")
    }
}

impl KeyTable {
    /// The table of an uncompressed SEC1 key (`04 ‖ x ‖ y`) on the curve;
    /// `None` otherwise.
    pub fn new(public_key: &[u8]) -> Option<KeyTable> {
        if public_key.len() != 65 || public_key[0] != 0x04 {
            return None;
        }
        let x = Fe::from_int(&u256_from_be(public_key[1..33].try_into().ok()?))?;
        let y = Fe::from_int(&u256_from_be(public_key[33..65].try_into().ok()?))?;
        let q = Affine { x, y };
        if !on_curve(&q) {
            return None;
        }
        g_comb();
        Some(KeyTable {
            comb: Comb::build(&q)?,
        })
    }

    /// ECDSA P-256/SHA-256 over `msg`: `Some(true)` when the strictly
    /// DER-encoded `sig` verifies; `Some(false)` when it does not; `None`
    /// when the encoding is not one this path takes (then ask ring).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Option<bool> {
        let (r, s) = parse_sig(sig)?;
        let digest: [u8; 32] = Sha256::digest(msg).into();
        let mut e = u256_from_be(&digest);
        if !lt(&e, &N) {
            e = sub_u256(&e, &N);
        }
        // w = s⁻¹ (plain); Montgomery products of Montgomery e, r with a
        // plain w are plain e·w, r·w. A wrong w (never expected) only sends
        // the signature to ring.
        let w = Sc(inv_mod_n(&s));
        if Sc::from_int(&s).mul(&w).0 != [1, 0, 0, 0] {
            return None;
        }
        let u1 = le_bytes(&Sc::from_int(&e).mul(&w).0);
        let u2 = le_bytes(&Sc::from_int(&r).mul(&w).0);
        let g = g_comb();
        let mut acc = Jac::INF;
        for i in 0..WINDOWS {
            if u1[i] != 0 {
                acc = acc.add_affine(g.entry(i, u1[i]));
            }
            if u2[i] != 0 {
                acc = acc.add_affine(self.comb.entry(i, u2[i]));
            }
        }
        if acc.inf || acc.z.is_zero() {
            return Some(false);
        }
        // x(acc) = X/Z² ≡ r (mod n): X = r·Z² or, when r + n < p, X = (r+n)·Z².
        let z2 = acc.z.sq();
        let r_fe = Fe::from_int(&r).expect("r < n < p");
        if r_fe.mul(&z2) == acc.x {
            return Some(true);
        }
        let (rn, overflow) = add_u256(&r, &N);
        if !overflow {
            if let Some(rn_fe) = Fe::from_int(&rn) {
                return Some(rn_fe.mul(&z2) == acc.x);
            }
        }
        Some(false)
    }
}

/// Nanoseconds per field multiplication, field squaring, mixed addition and
/// scalar inversion, over `n` rounds (for `examples/p256_verify`).
#[doc(hidden)]
pub fn op_costs_ns(n: u32) -> [f64; 4] {
    let g = *g_comb().entry(0, 1);
    let g2 = *g_comb().entry(0, 2);
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        t.elapsed().as_secs_f64() * 1e9 / f64::from(n)
    };
    let mut a = g.x;
    let mul = time(&mut || a = std::hint::black_box(a.mul(&g.y)));
    let sq = time(&mut || a = std::hint::black_box(a.sq()));
    let mut j = Jac::from_affine(&g2);
    let madd = time(&mut || j = std::hint::black_box(j.add_affine(&g)));
    let s = Sc::from_int(&[12345, 678, 9, 10]);
    let mut w = s;
    let inv = time(&mut || w = std::hint::black_box(Sc(inv_mod_n(&s.0))));
    std::hint::black_box((a, j.x, w.0));
    [mul, sq, madd, inv]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{
        EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
        ECDSA_P256_SHA256_ASN1_SIGNING,
    };

    fn key() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
    }

    fn ring_ok(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, pk)
            .verify(msg, sig)
            .is_ok()
    }

    fn fiat_field_mul(a: &U256, b: &U256) -> U256 {
        let mut o = fp::fiat_p256_montgomery_domain_field_element([0; 4]);
        fp::fiat_p256_mul(
            &mut o,
            &fp::fiat_p256_montgomery_domain_field_element(*a),
            &fp::fiat_p256_montgomery_domain_field_element(*b),
        );
        o.0
    }

    fn fiat_scalar_mul(a: &U256, b: &U256) -> U256 {
        let mut o = fs::fiat_p256_scalar_montgomery_domain_field_element([0; 4]);
        fs::fiat_p256_scalar_mul(
            &mut o,
            &fs::fiat_p256_scalar_montgomery_domain_field_element(*a),
            &fs::fiat_p256_scalar_montgomery_domain_field_element(*b),
        );
        o.0
    }

    /// Values below `m`: random ones and the edges 0, 1, m−1, m−2, 2^255.
    fn below(m: &U256, seed: &mut u64) -> U256 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let pick = *seed % 8;
        let mut v = [0u64; 4];
        for (i, l) in v.iter_mut().enumerate() {
            *l = seed
                .rotate_left(17 * i as u32 + 5)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15 + i as u64);
        }
        match pick {
            0 => [0; 4],
            1 => [1, 0, 0, 0],
            2 => sub_u256(m, &[1, 0, 0, 0]),
            3 => sub_u256(m, &[2, 0, 0, 0]),
            4 => [0, 0, 0, 1 << 63],
            _ if lt(&v, m) => v,
            _ => sub_u256(&v, m),
        }
    }

    #[test]
    fn montgomery_multiplication_equals_fiat_crypto() {
        assert_eq!(P_MINV, 1);
        assert_eq!(N[0].wrapping_mul(N_MINV), u64::MAX, "−n⁻¹ mod 2^64");
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..200_000 {
            let (a, b) = (below(&P, &mut seed), below(&P, &mut seed));
            assert_eq!(
                mont_mul(&a, &b, &P, P_MINV),
                fiat_field_mul(&a, &b),
                "{a:x?} {b:x?}"
            );
            let (a, b) = (below(&N, &mut seed), below(&N, &mut seed));
            assert_eq!(
                mont_mul(&a, &b, &N, N_MINV),
                fiat_scalar_mul(&a, &b),
                "{a:x?} {b:x?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn montgomery_multiplication_equals_fiat_crypto_prop(
            a in proptest::array::uniform4(proptest::num::u64::ANY),
            b in proptest::array::uniform4(proptest::num::u64::ANY),
        ) {
            let fix = |v: U256, m: &U256| if lt(&v, m) { v } else { sub_u256(&v, m) };
            let (fa, fb) = (fix(a, &P), fix(b, &P));
            proptest::prop_assert_eq!(mont_mul(&fa, &fb, &P, P_MINV), fiat_field_mul(&fa, &fb));
            let (sa, sb) = (fix(a, &N), fix(b, &N));
            proptest::prop_assert_eq!(mont_mul(&sa, &sb, &N, N_MINV), fiat_scalar_mul(&sa, &sb));
        }
    }

    #[test]
    fn binary_inverse_equals_fermat() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for i in 0..20_000 {
            let mut a = below(&N, &mut seed);
            if is_zero(&a) {
                a = [i + 1, 0, 0, 0];
            }
            let fermat = Sc::from_int(&a).invert().to_le_bytes();
            assert_eq!(le_bytes(&inv_mod_n(&a)), fermat, "inverse of {a:x?}");
        }
    }

    #[test]
    fn generator_is_on_the_curve_and_its_order_is_n() {
        let g = Affine {
            x: Fe::from_int(&u256_from_be(&GX_BE)).unwrap(),
            y: Fe::from_int(&u256_from_be(&GY_BE)).unwrap(),
        };
        assert!(on_curve(&g));
        // (n−1)·G = −G: same x, opposite y, through the comb.
        let nm1 = Sc::from_int(&sub_u256(&N, &[1, 0, 0, 0])).to_le_bytes();
        let comb = g_comb();
        let mut acc = Jac::INF;
        for (i, &d) in nm1.iter().enumerate() {
            if d != 0 {
                acc = acc.add_affine(comb.entry(i, d));
            }
        }
        let a = normalize_all(&[acc]).unwrap()[0];
        assert_eq!(a.x, g.x);
        assert_eq!(a.y, Fe::ZERO.sub(&g.y));
    }

    #[test]
    fn doubling_matches_addition() {
        let g = g_comb().entry(0, 1);
        let d = Jac::from_affine(g).double();
        let a = Jac::from_affine(g).add_affine(g);
        let (d, a) = (
            normalize_all(&[d]).unwrap()[0],
            normalize_all(&[a]).unwrap()[0],
        );
        assert_eq!((d.x, d.y), (a.x, a.y));
        let two = g_comb().entry(0, 2);
        assert_eq!((d.x, d.y), (two.x, two.y));
    }

    #[test]
    fn agrees_with_ring_on_valid_and_corrupted_signatures() {
        let k = key();
        let pk = k.public_key().as_ref().to_vec();
        let t = KeyTable::new(&pk).unwrap();
        let rng = SystemRandom::new();
        let other = key();
        for i in 0..300u32 {
            let msg = format!("message {i}")
                .repeat(1 + i as usize % 40)
                .into_bytes();
            let sig = k.sign(&rng, &msg).unwrap().as_ref().to_vec();
            assert_eq!(t.verify(&msg, &sig), Some(true), "valid signature {i}");
            // Another message, another key's signature, flipped bits.
            assert_eq!(t.verify(b"other", &sig), Some(false));
            let foreign = other.sign(&rng, &msg).unwrap().as_ref().to_vec();
            assert_eq!(t.verify(&msg, &foreign), Some(false));
            let mut bad = sig.clone();
            let pos = 4 + (i as usize * 7) % (bad.len() - 4);
            bad[pos] ^= 1 << (i % 8);
            let fast = t.verify(&msg, &bad);
            let slow = ring_ok(&pk, &msg, &bad);
            // The fast path never accepts what ring rejects; it may defer.
            assert!(
                fast != Some(true) || slow,
                "accepted a corrupted signature {i}"
            );
            if fast == Some(false) {
                assert!(!slow, "rejected what ring accepts {i}");
            }
        }
    }

    #[test]
    fn non_canonical_encodings_are_deferred() {
        let k = key();
        let pk = k.public_key().as_ref().to_vec();
        let t = KeyTable::new(&pk).unwrap();
        let sig = k
            .sign(&SystemRandom::new(), b"m")
            .unwrap()
            .as_ref()
            .to_vec();
        // Trailing byte, long-form length, padded integer.
        let mut trailing = sig.clone();
        trailing.push(0);
        assert_eq!(t.verify(b"m", &trailing), None);
        let mut long = vec![0x30, 0x81, sig[1]];
        long.extend_from_slice(&sig[2..]);
        assert_eq!(t.verify(b"m", &long), None);
        let rlen = usize::from(sig[3]);
        let mut padded = vec![0x30, sig[1] + 1, 0x02, sig[3] + 1, 0x00];
        padded.extend_from_slice(&sig[4..4 + rlen]);
        padded.extend_from_slice(&sig[4 + rlen..]);
        if sig[4] & 0x80 == 0 {
            assert_eq!(t.verify(b"m", &padded), None);
        }
        // r = 0, s = n.
        assert_eq!(
            t.verify(b"m", &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]),
            None
        );
        assert!(KeyTable::new(&[0x04; 65]).is_none(), "not on the curve");
    }
}
