//! CPU kernels of the examples' own forward passes (the embeddings example's packed BERT, the
//! text-generation example's Llama decoder): matrix products ([`linear`]: on the `gemm` crate
//! that candle itself uses, with its AVX-512 kernels built in, or for a few rows a blocked
//! product of our own, and a threaded matrix-vector product for one token, [`matvec`]), layer
//! and RMS norm with a fused residual, bias + GELU, SiLU gating, row softmax, mean pooling. Each
//! element-wise kernel is a plain loop that the compiler vectorises; on x86-64 each is also
//! compiled for AVX-512 and for AVX2 + FMA, and the widest copy the CPU runs is picked at run
//! time (a release build targets the x86-64 baseline, SSE2 only).
//!
//! `exp` and `erf` are computed here rather than by the C library so that they vectorise:
//! `exp` by range reduction to `[-ln 2 / 2, ln 2 / 2]` and a degree-6 Taylor polynomial (about
//! 1e-7 relative error), `erf` by Abramowitz & Stegun's formula 7.1.26 on top of it (at most
//! 1.5e-7 absolute error in exact arithmetic, under 5e-7 in f32), both checked against the C library's `exp`/`erf` in the tests.
#![allow(
    unsafe_code,
    reason = "the x86-64 copies of each kernel are `target_feature` functions called after a run-time CPU check, and `gemm` takes raw pointers"
)]

use gemm::Parallelism;
use rayon::prelude::*;

/// Declares `fn $name(args)` that runs `$body(args)` compiled for AVX-512 when the CPU has it,
/// else for AVX2 + FMA when it has those, else as compiled for the baseline. A kernel whose code
/// differs by tier names one body each: `=> wide: $a, fast: $b, plain: $c`.
macro_rules! dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        dispatch! {
            $(#[$doc])* $vis fn $name($($arg: $ty),*) => wide: $body, fast: $body, plain: $body
        }
    };
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?)
        => wide: $wide:expr, fast: $fast:expr, plain: $plain:expr) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn wide($($arg: $ty),*) {
                    ($wide)($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn fast($($arg: $ty),*) {
                    ($fast)($($arg),*)
                }
                use std::arch::is_x86_feature_detected as has;
                if has!("avx2") && has!("fma") {
                    if has!("avx512f") {
                        // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked just above).
                        return unsafe { wide($($arg),*) };
                    }
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { fast($($arg),*) };
                }
            }
            ($plain)($($arg),*)
        }
    };
}

/// Lanes of the partial sums in reductions: independent chains for 2 x 16-wide or 4 x 8-wide vectors.
const LANES: usize = 32;

#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

#[inline(always)]
fn sum_sq_dev(xs: &[f32], mean: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            let d = x - mean;
            *a += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>()
}

#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a = a.max(*x);
        }
    }
    acc.iter().chain(tail).fold(f32::NEG_INFINITY, |m, x| m.max(*x))
}

/// `e^x` for `x` in about [-87, 88] (clamped there), vectorisable.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `n * LN2_HI` is exact for the n that occur.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n built from the bits of `shifted`, whose low mantissa bits hold n (ROUND is a multiple
    // of 2^9 there): the low 9 bits of `bits + 127` are n + 127, in [1, 254] after the clamp, and
    // the shift drops the rest. (`n as i32` would be a saturating cast, which does not vectorise.)
    let scale = f32::from_bits(shifted.to_bits().wrapping_add(127) << 23);
    p * scale
}

/// The error function, vectorisable (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152, 1.061_405_4];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// GELU as BERT defines it (`hidden_act: "gelu"`): `x * (1 + erf(x / sqrt 2)) / 2`.
#[inline(always)]
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`).
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2 / pi)
    let y = C * (x + 0.044_715 * x * x * x);
    // tanh(y) = 1 - 2 / (e^(2y) + 1)
    let tanh = 1.0 - 2.0 / (exp(2.0 * y) + 1.0);
    0.5 * x * (1.0 + tanh)
}

/// Which activation the feed-forward layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact (erf) GELU.
    GeluErf,
    /// tanh-approximated GELU.
    GeluTanh,
    /// max(0, x).
    Relu,
}

#[inline(always)]
fn bias_act_body(rows: &mut [f32], bias: &[f32], act: Activation) {
    for row in rows.chunks_exact_mut(bias.len()) {
        match act {
            Activation::GeluErf => row.iter_mut().zip(bias).for_each(|(x, b)| *x = gelu_erf(*x + b)),
            Activation::GeluTanh => row.iter_mut().zip(bias).for_each(|(x, b)| *x = gelu_tanh(*x + b)),
            Activation::Relu => row.iter_mut().zip(bias).for_each(|(x, b)| *x = (*x + b).max(0.0)),
        }
    }
}

dispatch! {
    /// `rows[i] = act(rows[i] + bias)` for every row (`rows` is a whole number of `bias.len()` rows).
    pub fn bias_act(rows: &mut [f32], bias: &[f32], act: Activation) => bias_act_body
}

#[inline(always)]
fn add_norm_body(x: &mut [f32], delta: &[f32], bias: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let h = gamma.len();
    for (row, d) in x.chunks_exact_mut(h).zip(delta.chunks_exact(h)) {
        for ((x, d), b) in row.iter_mut().zip(d).zip(bias) {
            *x += d + b;
        }
        let mean = sum(row) / h as f32;
        let var = sum_sq_dev(row, mean) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *x = (*x - mean) * inv * g + b;
        }
    }
}

dispatch! {
    /// `x = layer_norm(x + delta + bias) * gamma + beta`, row by row (rows of `gamma.len()`):
    /// a dense layer's bias, the residual connection and the layer norm in one pass.
    pub fn add_norm(x: &mut [f32], delta: &[f32], bias: &[f32], gamma: &[f32], beta: &[f32], eps: f32) => add_norm_body
}

#[inline(always)]
fn norm_body(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let h = gamma.len();
    for row in x.chunks_exact_mut(h) {
        let mean = sum(row) / h as f32;
        let var = sum_sq_dev(row, mean) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *x = (*x - mean) * inv * g + b;
        }
    }
}

dispatch! {
    /// `x = layer_norm(x) * gamma + beta`, row by row (rows of `gamma.len()`).
    pub fn norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) => norm_body
}

#[inline(always)]
fn softmax_rows_body(rows: &mut [f32], width: usize) {
    for row in rows.chunks_exact_mut(width) {
        let m = max(row);
        for x in row.iter_mut() {
            *x = exp(*x - m);
        }
        let inv = 1.0 / sum(row);
        for x in row.iter_mut() {
            *x *= inv;
        }
    }
}

dispatch! {
    /// Softmax of each row of `width` values, in place.
    pub fn softmax_rows(rows: &mut [f32], width: usize) => softmax_rows_body
}

#[inline(always)]
fn mean_rows_body(rows: &[f32], out: &mut [f32]) {
    let h = out.len();
    out.fill(0.0);
    for row in rows.chunks_exact(h) {
        for (o, x) in out.iter_mut().zip(row) {
            *o += x;
        }
    }
    let inv = 1.0 / (rows.len() / h).max(1) as f32;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

dispatch! {
    /// The mean of the rows of `rows` (rows of `out.len()`), into `out`.
    pub fn mean_rows(rows: &[f32], out: &mut [f32]) => mean_rows_body
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (ra, rb) in ca.zip(cb) {
        for ((acc, x), y) in acc.iter_mut().zip(ra).zip(rb) {
            *acc += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn dot_rows_body(w: &[f32], x: &[f32], y: &mut [f32]) {
    for (out, row) in y.iter_mut().zip(w.chunks_exact(x.len())) {
        *out = dot(row, x);
    }
}

dispatch! {
    /// `y[o] = w[o] . x` for each row `o` of `w` (rows of `x.len()`).
    pub fn dot_rows(w: &[f32], x: &[f32], y: &mut [f32]) => dot_rows_body
}

/// `y = w x` for a weight `w` of `y.len()` rows of `x.len()` values (the layout of an
/// `nn.Linear` weight, `(out, in)`), the rows split over `threads` threads. One token through a
/// dense layer is this product: it reads every weight once, so its speed is memory bandwidth,
/// which one core alone does not saturate.
pub fn matvec(w: &[f32], x: &[f32], y: &mut [f32], threads: usize) {
    assert_eq!(w.len(), x.len() * y.len(), "matvec: weight is not (y.len(), x.len())");
    if threads <= 1 || y.len() < 64 {
        return dot_rows(w, x, y);
    }
    let per = y.len().div_ceil(threads * 4).max(16);
    y.par_chunks_mut(per).enumerate().for_each(|(c, ys)| {
        let start = c * per * x.len();
        dot_rows(&w[start..start + ys.len() * x.len()], x, ys);
    });
}

/// Weight rows that [`dot_block_body`] reads together (each is reused for every input row).
const BLOCK: usize = 4;

/// `a * b + c`, fused into one instruction where the CPU has FMA (`mul_add` without it would
/// be a call into the C library per element).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// [`dot_block`] for two input rows at once (`x0`, `x1`: eight independent sums of `L` lanes,
/// each weight load used twice), into `out[r * stride + j]` for `r` in `0..rows` (1 or 2; for
/// one row, pass it as both).
#[inline(always)]
fn dot_block_rows<const L: usize, const FMA: bool>(
    w: [&[f32]; BLOCK],
    [x0, x1]: [&[f32]; 2],
    rows: usize,
    out: &mut [f32],
    stride: usize,
) {
    let k = x0.len();
    let split = k - k % L;
    let z = [0f32; L];
    let (mut a0, mut a1, mut a2, mut a3, mut b0, mut b1, mut b2, mut b3) = (z, z, z, z, z, z, z, z);
    let chunks = x0
        .chunks_exact(L)
        .zip(x1.chunks_exact(L))
        .zip(w[0].chunks_exact(L))
        .zip(w[1].chunks_exact(L))
        .zip(w[2].chunks_exact(L))
        .zip(w[3].chunks_exact(L));
    for (((((p, q), c0), c1), c2), c3) in chunks {
        for i in 0..L {
            a0[i] = madd::<FMA>(p[i], c0[i], a0[i]);
            a1[i] = madd::<FMA>(p[i], c1[i], a1[i]);
            a2[i] = madd::<FMA>(p[i], c2[i], a2[i]);
            a3[i] = madd::<FMA>(p[i], c3[i], a3[i]);
            b0[i] = madd::<FMA>(q[i], c0[i], b0[i]);
            b1[i] = madd::<FMA>(q[i], c1[i], b1[i]);
            b2[i] = madd::<FMA>(q[i], c2[i], b2[i]);
            b3[i] = madd::<FMA>(q[i], c3[i], b3[i]);
        }
    }
    let sums = [[a0, a1, a2, a3], [b0, b1, b2, b3]];
    for (r, xr) in [x0, x1].iter().enumerate().take(rows) {
        for (j, wr) in w.iter().enumerate() {
            let tail: f32 = xr[split..].iter().zip(&wr[split..]).map(|(x, w)| x * w).sum();
            out[r * stride + j] = sums[r][j].iter().sum::<f32>() + tail;
        }
    }
}

#[inline(always)]
fn dot_block_body<const L: usize, const FMA: bool>(w: &[f32], x: &[f32], out: &mut [f32], stride: usize) {
    let k = w.len() / BLOCK;
    let w: [&[f32]; BLOCK] = std::array::from_fn(|j| &w[j * k..(j + 1) * k]);
    let rows = x.len() / k;
    for m in (0..rows).step_by(2) {
        let two = (rows - m).min(2);
        let x0 = &x[m * k..(m + 1) * k];
        let x1 = if two == 2 { &x[(m + 1) * k..(m + 2) * k] } else { x0 };
        dot_block_rows::<L, FMA>(w, [x0, x1], two, &mut out[m * stride..], stride);
    }
}

dispatch! {
    /// For [`BLOCK`] weight rows `w` (rows of `k` values) and the rows of `x` (rows of `k`):
    /// `out[m * stride + j] = x[m] . w[j]`. The lanes per sum differ by tier (16 with AVX-512's
    /// 32 registers, 8 with AVX2's 16), and without FMA a multiply-add stays two instructions.
    fn dot_block(w: &[f32], x: &[f32], out: &mut [f32], stride: usize)
        => wide: dot_block_body::<16, true>, fast: dot_block_body::<8, true>, plain: dot_block_body::<8, false>
}

/// Input rows up to which [`linear`] uses its own blocked product rather than `gemm`: for a
/// few rows `gemm` spends more time packing the weight than multiplying it.
const FEW_ROWS: usize = 48;

/// [`linear`] for a few rows: the weight's rows split over the threads, each block of
/// [`BLOCK`] rows read once from memory and kept in cache for every input row.
fn linear_few(x: &[f32], rows: usize, w: &[f32], y: &mut [f32], accumulate: bool, threads: usize) {
    let inputs = x.len() / rows;
    let outputs = w.len() / inputs;
    let full = outputs - outputs % BLOCK;
    let per = (full / BLOCK).div_ceil(threads.max(1) * 4).max(1) * BLOCK;
    // Each chunk of weight rows gives a rows x chunk block of `y`, transposed back below.
    let parts: Vec<(usize, Vec<f32>)> = (0..full)
        .step_by(per)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let width = (start + per).min(full) - start;
            let mut part = vec![0f32; rows * width];
            for b in (0..width).step_by(BLOCK) {
                let o = start + b;
                dot_block(&w[o * inputs..(o + BLOCK) * inputs], x, &mut part[b..], width);
            }
            (start, part)
        })
        .collect();
    let mut store = |m: usize, o: usize, v: f32| {
        let at = &mut y[m * outputs + o];
        *at = if accumulate { *at + v } else { v };
    };
    for (start, part) in parts {
        let width = part.len() / rows;
        for m in 0..rows {
            for (i, v) in part[m * width..(m + 1) * width].iter().enumerate() {
                store(m, start + i, *v);
            }
        }
    }
    for o in full..outputs {
        for m in 0..rows {
            store(m, o, dot(&x[m * inputs..(m + 1) * inputs], &w[o * inputs..(o + 1) * inputs]));
        }
    }
}

/// `y = x w^T` (+ `y` when `accumulate`): `x` is `rows x inputs`, `w` is `outputs x inputs`
/// (an `nn.Linear` weight), `y` is `rows x outputs`, all row-major. One row goes through
/// [`matvec`], more through `gemm` on `threads` threads.
pub fn linear(x: &[f32], rows: usize, w: &[f32], y: &mut [f32], accumulate: bool, threads: usize) {
    let inputs = x.len().checked_div(rows).unwrap_or(0);
    let outputs = w.len().checked_div(inputs).unwrap_or(0);
    assert!(x.len() == rows * inputs && w.len() == outputs * inputs && y.len() == rows * outputs);
    if rows == 0 || outputs == 0 {
        return;
    }
    if rows == 1 && !accumulate {
        return matvec(w, x, y, threads);
    }
    if rows <= FEW_ROWS {
        return linear_few(x, rows, w, y, accumulate, threads);
    }
    let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: the three slices hold exactly rows x inputs, outputs x inputs and rows x outputs
    // values (asserted above), addressed with the strides given; `y` aliases neither input.
    unsafe {
        gemm::gemm(
            rows,
            outputs,
            inputs,
            y.as_mut_ptr(),
            1,
            outputs as isize,
            accumulate,
            x.as_ptr(),
            1,
            inputs as isize,
            w.as_ptr(),
            inputs as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[inline(always)]
fn rms_norm_body(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let h = weight.len();
    for (row, o) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
        let inv = 1.0 / (dot(row, row) / h as f32 + eps).sqrt();
        for ((o, x), w) in o.iter_mut().zip(row).zip(weight) {
            *o = x * inv * w;
        }
    }
}

dispatch! {
    /// `out = x / sqrt(mean(x^2) + eps) * weight`, row by row (rows of `weight.len()`).
    pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) => rms_norm_body
}

#[inline(always)]
fn silu_mul_body(gate_up: &[f32], out: &mut [f32]) {
    let n = gate_up.len() / 2;
    let (gate, up) = gate_up.split_at(n);
    for ((o, g), u) in out.iter_mut().zip(gate).zip(up) {
        *o = g / (1.0 + exp(-g)) * u;
    }
}

dispatch! {
    /// `out = silu(gate) * up` for one row whose first half is `gate` and second half `up`.
    pub fn silu_mul(gate_up: &[f32], out: &mut [f32]) => silu_mul_body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn libm_erf(x: f64) -> f64 {
        // erf by its Taylor series (|x| <= 4) or its sign beyond (erfc(4) < 2e-8), in f64: a reference
        // independent of the approximation under test.
        if x.abs() > 4.0 {
            return x.signum();
        }
        let (mut term, mut total, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * total.abs().max(1e-300) {
            n += 1.0;
            term *= -x * x / n;
            total += term / (2.0 * n + 1.0);
        }
        total * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_matches_the_standard_library() {
        let mut worst = 0f64;
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
    }

    #[test]
    fn erf_and_gelu_match_series_references() {
        let mut worst = 0f64;
        for i in -600..=600 {
            let x = i as f32 / 100.0;
            worst = worst.max((erf(x) as f64 - libm_erf(x as f64)).abs());
        }
        assert!(worst < 5e-7, "worst absolute erf error {worst}");
        for x in [-5.0f32, -1.0, -0.1, 0.0, 0.3, 1.0, 2.5, 8.0] {
            let want = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / 2f64.sqrt()));
            assert!((gelu_erf(x) as f64 - want).abs() < 1e-6, "gelu({x})");
            let tanh_form = 0.5
                * x as f64
                * (1.0
                    + ((2.0 / std::f64::consts::PI).sqrt() * (x as f64 + 0.044715 * (x as f64).powi(3)))
                        .tanh());
            assert!((gelu_tanh(x) as f64 - tanh_form).abs() < 1e-6, "gelu_tanh({x})");
        }
    }

    #[test]
    fn linear_matches_a_plain_product_on_both_paths() {
        // 203 outputs (not a whole number of blocks), 45 inputs (not a whole number of lanes),
        // rows on both sides of FEW_ROWS, odd and even.
        let (outputs, inputs) = (203, 45);
        let w: Vec<f32> = (0..outputs * inputs).map(|i| ((i * 13) % 29) as f32 / 29.0 - 0.5).collect();
        for rows in [2, 5, FEW_ROWS - 1, FEW_ROWS, FEW_ROWS + 1, 70] {
            let x: Vec<f32> = (0..rows * inputs).map(|i| ((i * 7919) % 101) as f32 / 17.0 - 3.0).collect();
            let start: Vec<f32> = (0..rows * outputs).map(|i| (i % 7) as f32).collect();
            for (threads, accumulate) in [(1, false), (2, true), (3, false)] {
                let mut y = start.clone();
                linear(&x, rows, &w, &mut y, accumulate, threads);
                for m in 0..rows {
                    for o in 0..outputs {
                        let dot: f64 =
                            (0..inputs).map(|i| w[o * inputs + i] as f64 * x[m * inputs + i] as f64).sum();
                        let want = dot + if accumulate { start[m * outputs + o] as f64 } else { 0.0 };
                        let got = y[m * outputs + o] as f64;
                        assert!(
                            (got - want).abs() < 1e-3,
                            "rows {rows}, row {m}, output {o}: {got} vs {want}"
                        );
                    }
                }
            }
        }
        // The copy for CPUs without FMA (this machine may never run it through `dot_block`),
        // into rows wider than a block: the values between blocks stay as they were.
        let x: Vec<f32> = (0..3 * inputs).map(|i| i as f32 / 40.0 - 1.0).collect();
        let stride = BLOCK + 3;
        let (mut plain, mut fused) = (vec![9f32; 3 * stride], vec![9f32; 3 * stride]);
        dot_block_body::<8, false>(&w[..BLOCK * inputs], &x, &mut plain, stride);
        dot_block(&w[..BLOCK * inputs], &x, &mut fused, stride);
        assert!(plain.iter().zip(&fused).all(|(a, b)| (a - b).abs() < 1e-4), "{plain:?} vs {fused:?}");
        for (i, v) in fused.iter().enumerate() {
            if i % stride >= BLOCK {
                assert_eq!(*v, 9.0, "index {i} is outside the block");
            } else {
                let want: f32 =
                    (0..inputs).map(|k| x[i / stride * inputs + k] * w[i % stride * inputs + k]).sum();
                assert!((v - want).abs() < 1e-3, "index {i}: {v} vs {want}");
            }
        }
    }

    #[test]
    fn row_kernels_match_plain_formulas() {
        let h = 37; // not a multiple of the lane count: the tails are exercised too
        let x0: Vec<f32> = (0..3 * h).map(|i| ((i * 7919) % 101) as f32 / 17.0 - 3.0).collect();
        let delta: Vec<f32> = (0..3 * h).map(|i| ((i * 31) % 13) as f32 / 5.0 - 1.0).collect();
        let bias: Vec<f32> = (0..h).map(|i| i as f32 / 50.0).collect();
        let gamma: Vec<f32> = (0..h).map(|i| 1.0 + i as f32 / 100.0).collect();
        let beta: Vec<f32> = (0..h).map(|i| -(i as f32) / 200.0).collect();
        let mut x = x0.clone();
        add_norm(&mut x, &delta, &bias, &gamma, &beta, 1e-12);
        let mut summed: Vec<f32> = (0..3 * h).map(|i| x0[i] + delta[i] + bias[i % h]).collect();
        norm(&mut summed, &gamma, &beta, 1e-12);
        assert!(summed.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-6), "norm = add_norm without the sum");
        for r in 0..3 {
            let v: Vec<f64> = (0..h).map(|i| (x0[r * h + i] + delta[r * h + i] + bias[i]) as f64).collect();
            let mean = v.iter().sum::<f64>() / h as f64;
            let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / h as f64;
            for i in 0..h {
                let want = (v[i] - mean) / (var + 1e-12).sqrt() * gamma[i] as f64 + beta[i] as f64;
                assert!((x[r * h + i] as f64 - want).abs() < 1e-5, "layer norm row {r} col {i}");
            }
        }

        let mut s = x0.clone();
        softmax_rows(&mut s, h);
        for r in 0..3 {
            let row = &x0[r * h..(r + 1) * h];
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let total: f64 = row.iter().map(|&a| (a as f64 - m).exp()).sum();
            for i in 0..h {
                let want = (row[i] as f64 - m).exp() / total;
                assert!((s[r * h + i] as f64 - want).abs() < 1e-6);
            }
        }

        let mut g = x0.clone();
        bias_act(&mut g, &bias, Activation::GeluErf);
        let mut relu = x0.clone();
        bias_act(&mut relu, &bias, Activation::Relu);
        for (i, (&a, (&ge, &re))) in x0.iter().zip(g.iter().zip(&relu)).enumerate() {
            let v = a + bias[i % h];
            assert!((ge - gelu_erf(v)).abs() < 1e-7);
            assert_eq!(re, v.max(0.0));
        }

        let w: Vec<f32> = (0..200 * h).map(|i| ((i * 13) % 29) as f32 / 29.0 - 0.5).collect();
        let v = &x0[..h];
        for threads in [1, 2, 3] {
            let mut y = vec![0f32; 200];
            matvec(&w, v, &mut y, threads);
            let mut y2 = vec![0f32; 3 * 200];
            linear(&x0, 3, &w, &mut y2, false, threads);
            for o in 0..200 {
                let want: f64 = (0..h).map(|i| w[o * h + i] as f64 * v[i] as f64).sum();
                assert!((y[o] as f64 - want).abs() < 1e-4, "matvec row {o}");
                assert!((y2[o] as f64 - want).abs() < 1e-4, "linear row 0 col {o}");
                let want2: f64 = (0..h).map(|i| w[o * h + i] as f64 * x0[2 * h + i] as f64).sum();
                assert!((y2[400 + o] as f64 - want2).abs() < 1e-4, "linear row 2 col {o}");
            }
        }

        let mut rms = vec![0f32; 3 * h];
        rms_norm(&x0, &gamma, 1e-5, &mut rms);
        for r in 0..3 {
            let row = &x0[r * h..(r + 1) * h];
            let ms = row.iter().map(|&a| a as f64 * a as f64).sum::<f64>() / h as f64;
            for i in 0..h {
                let want = row[i] as f64 / (ms + 1e-5).sqrt() * gamma[i] as f64;
                assert!((rms[r * h + i] as f64 - want).abs() < 1e-5);
            }
        }
        let mut gated = vec![0f32; h];
        silu_mul(&x0[..2 * h], &mut gated);
        for i in 0..h {
            let (g, u) = (x0[i] as f64, x0[h + i] as f64);
            assert!((gated[i] as f64 - g / (1.0 + (-g).exp()) * u).abs() < 1e-5);
        }

        let mut mean = vec![0f32; h];
        mean_rows(&x0, &mut mean);
        for i in 0..h {
            let want = (x0[i] + x0[h + i] + x0[2 * h + i]) / 3.0;
            assert!((mean[i] - want).abs() < 1e-6);
        }
    }
}
