// The kernels' arithmetic on units held in 64-byte vectors: the neuron's
// nonlinearity and derivative, aligned working arrays, and the column passes
// (matrix times vector, sums of outer products) every trial is made of.
// (leaky_tanh.cc includes this file; rflo.kernels builds it with the kernel,
// and a change here rebuilds it.)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

// tanh and exp in float32 without library calls, so that the compiler can
// vectorise the loops that use them: tanh is the clamped rational
// approximation that XLA's CPU backend (after Eigen) uses, exp the Cephes
// polynomial with the exponent rebuilt from its bits.  float64: below.
#define RFLO_INLINE inline __attribute__((always_inline))
// A network's trial is compiled as a function of its own, not inlined into
// the handler that calls it, so that its arithmetic (which products the
// compiler fuses into multiply-adds) does not move with the code around it:
// inlined, a change to the offline trial moved the online one's last bits.
#define RFLO_ALONE __attribute__((noinline))

RFLO_INLINE float fast_tanh(float x) {
  const float c = 7.90531110763549805f;
  x = x < -c ? -c : (x > c ? c : x);
  const float x2 = x * x;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p / q;
}

RFLO_INLINE float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  // round x log2(e) to the nearest integer n with the 1.5 * 2^23 trick: the
  // integer is then in the low bits of t, and 2^n is rebuilt from them
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const int32_t k = __builtin_bit_cast(int32_t, t) - 0x4B400000;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  return y * __builtin_bit_cast(float, (k + 127) << 23);
}

// exp and tanh in float64, also without library calls (std::exp and std::tanh
// are calls the compiler cannot vectorise: at n_rec 50 they were more than
// half of a float64 trial, which took 1.4-2.2x the XLA path's time).  Both are
// good to a few units in the last place (tests/test_kernels.py checks tanh
// against numpy's at 1e-15).

constexpr double factorial(int k) { return k <= 1 ? 1.0 : k * factorial(k - 1); }

// 1 / (k + S)! for k = 0 .. N, computed when compiled (exact to rounding).
template <int N, int S>
struct InverseFactorials {
  double c[N + 1] = {};
  constexpr InverseFactorials() {
    for (int k = 0; k <= N; ++k) c[k] = 1.0 / factorial(k + S);
  }
};

// sum_{k=0..N} x^k / (k + S)! by Horner's rule.
template <int N, int S>
RFLO_INLINE double exp_series(double x) {
  static constexpr InverseFactorials<N, S> kInverse{};
  double y = kInverse.c[N];
  for (int k = N - 1; k >= 0; --k) y = y * x + kInverse.c[k];
  return y;
}

// exp: x = k ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, the first with
// trailing zero bits so that k ln2_hi is exact), exp(r) by its Taylor series
// to r^13 (the first term left out is below 4e-18 exp(r)), times 2^k rebuilt
// from its bits.  Arguments are clamped to [-708, 709] (2^k stays normal).
RFLO_INLINE double fast_exp(double x) {
  x = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  // round x log2(e) to the nearest integer k with the 1.5 * 2^52 trick
  const double t = x * 1.4426950408889634 + 6755399441055744.0;
  const double n = t - 6755399441055744.0;
  const int64_t k = __builtin_bit_cast(int64_t, t) - 0x4338000000000000LL;
  double r = x - n * 0.693145751953125;
  r = r - n * 1.4286068203094173e-06;
  return exp_series<13, 0>(r) * __builtin_bit_cast(double, (k + 1023) << 52);
}

// tanh|x| = -m / (2 + m) with m = expm1(-2|x|), the sign put back.  m is
// exp(-2|x|) - 1 for |x| >= 1/4, where the subtraction loses at most 2 bits,
// and its Taylor series to y^15 below (y = -2|x|, |y| < 1/2: the first term
// left out is below 1e-18 |m|), which keeps the small tanh's relative accuracy.
RFLO_INLINE double fast_tanh(double x) {
  const double ax = std::fabs(x), y = -2.0 * ax;
  const double m = ax < 0.25 ? exp_series<14, 1>(y) * y : fast_exp(y) - 1.0;
  return std::copysign(-m / (2.0 + m), x);
}

RFLO_INLINE float tanh_(float x) { return fast_tanh(x); }
RFLO_INLINE double tanh_(double x) { return fast_tanh(x); }
RFLO_INLINE float exp_(float x) { return fast_exp(x); }
RFLO_INLINE double exp_(double x) { return fast_exp(x); }

template <typename T>
RFLO_INLINE T fprime(T u, bool exact) {
  if (exact) {
    T t = tanh_(u);
    return T(1) - t * t;
  }
  // the seed notebook's 1 / cosh(10 tanh(u / 10))^2, as 4 e / (1 + e)^2
  T z = T(10) * tanh_(u / T(10));
  T e = exp_(T(-2) * std::fabs(z));
  return T(4) * e / ((T(1) + e) * (T(1) + e));
}

// A unit's leak toward tanh(u): h + (tanh(u) - h) / tau, from th = tanh(u).
template <typename T>
RFLO_INLINE T leak(T h, T th, T tau) {
  return h + (th - h) / tau;
}

// One step of np units from their currents u: h_new = leak(h, tanh(u), tau)
// and d = a f'(u) (the exact tanh' shares tanh(u) with the update).
template <typename T>
RFLO_INLINE void neuron_step(const T* __restrict u, const T* __restrict h, T* __restrict h_new,
                             T* __restrict d, int64_t np, T tau, T a, bool exact) {
  if (exact) {
#pragma omp simd
    for (int64_t i = 0; i < np; ++i) {
      const T th = tanh_(u[i]);
      h_new[i] = leak(h[i], th, tau);
      d[i] = a * (T(1) - th * th);
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < np; ++i) {
      h_new[i] = leak(h[i], tanh_(u[i]), tau);
      d[i] = a * fprime(u[i], false);
    }
  }
}

// The offline trial's step split in two: the leak inside the loop over steps
// (and the forward kernel's), and d = a f'(u) for every step after it
// (u kept in d's rows meanwhile), off the chain of dependent steps: inside
// the loop the derivative's divisions (the seed's, 3 a unit) held up the
// next step's tanh.  The same arithmetic as neuron_step, the same bits.
template <typename T>
RFLO_INLINE void leak_step(const T* __restrict u, const T* __restrict h, T* __restrict h_new,
                           int64_t np, T tau) {
#pragma omp simd
  for (int64_t i = 0; i < np; ++i) h_new[i] = leak(h[i], tanh_(u[i]), tau);
}

template <typename T, bool Exact>
void derivatives(T* __restrict u_to_d, int64_t count, T a) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) u_to_d[i] = a * fprime(u_to_d[i], Exact);
}

template <typename T>
void derivatives(T* __restrict u_to_d, int64_t count, T a, bool exact) {
  exact ? derivatives<T, true>(u_to_d, count, a) : derivatives<T, false>(u_to_d, count, a);
}

// 64-byte vectors (GCC/Clang vector extensions: 16 floats or 8 doubles, split
// by the compiler into the registers the processor has), so that the
// accumulators of the products below stay in registers.
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(64)));
};
template <typename T>
using Vec = typename VecOf<T>::type;

template <typename T>
RFLO_INLINE Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
RFLO_INLINE void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}

// Working arrays start on a cache line, so that no 64-byte load or store
// spans two: std::vector's memory is aligned to 16 bytes only.  Aligned, the
// kernels at n_rec 50 (T 1000) took 8-10 % less: online RFLO 470 -> 435 ns a
// step, BPTT 435 -> 400, offline RFLO 350 -> 320.
template <typename T>
struct CacheLines {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLines() = default;
  template <typename U>
  CacheLines(const CacheLines<U>&) {}
  T* allocate(std::size_t count) {
    return static_cast<T*>(::operator new(count * sizeof(T), kAlign));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const CacheLines<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const CacheLines<U>&) const {
    return false;
  }
};
template <typename T>
using AlignedVector = std::vector<T, CacheLines<T>>;

// The same, but its entries start unset (default-initialised, not zeroed):
// for the arrays whose every entry a trial writes before it reads it, or
// zeroes itself (the offline trial's per-step rows: zeroing them on creation
// was 3 % of a trial at T 1000).
template <typename T>
struct Unset : CacheLines<T> {
  Unset() = default;
  template <typename U>
  Unset(const Unset<U>&) {}
  template <typename U>
  struct rebind {
    using other = Unset<U>;
  };
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};
template <typename T>
using UnsetVector = std::vector<T, Unset<T>>;

// Units are padded to whole 64-byte vectors (16 floats, 8 doubles): padded<T>(n).
template <typename T>
constexpr int64_t padded(int64_t n) {
  constexpr int64_t L = 64 / sizeof(T);
  return (n + L - 1) / L * L;
}

// Calls fn(std::integral_constant<int, V>{}, i0) for blocks [i0, i0 + V L) of
// the np padded units: blocks of Max vectors, then one of the 1 .. Max-1 left,
// so that a block's accumulators are a fixed number of registers.
template <typename T, int Max, typename F>
RFLO_INLINE void in_blocks(int64_t np, F&& fn) {
  constexpr int64_t L = 64 / sizeof(T);
  int64_t i0 = 0;
  for (; i0 + Max * L <= np; i0 += Max * L) fn(std::integral_constant<int, Max>{}, i0);
  switch ((np - i0) / L) {
    case 3:
      if constexpr (Max > 3) fn(std::integral_constant<int, 3>{}, i0);
      break;
    case 2:
      if constexpr (Max > 2) fn(std::integral_constant<int, 2>{}, i0);
      break;
    case 1:
      if constexpr (Max > 1) fn(std::integral_constant<int, 1>{}, i0);
      break;
    default:
      break;
  }
}

// The same blocks, in the opposite order where `backward`: the one left over
// first, then the full ones from the last.
template <typename T, int Max, typename F>
RFLO_INLINE void in_blocks(int64_t np, F&& fn, bool backward) {
  if (!backward) return in_blocks<T, Max>(np, fn);
  constexpr int64_t L = 64 / sizeof(T);
  const int64_t full = np / (Max * L) * (Max * L);
  in_blocks<T, Max>(np - full, [&](auto block, int64_t i0) { fn(block, full + i0); });
  for (int64_t i0 = full - Max * L; i0 >= 0; i0 -= Max * L)
    fn(std::integral_constant<int, Max>{}, i0);
}

// to[j * np + i] = from[i * cols + j] for i < rows, j < cols: a row-major
// matrix into columns of np entries (the kernels' presynaptic-major copies),
// column after column, so that the writes run along a column and the strided
// reads are the ones that jump (at 50 units the other order, writes jumping,
// was a quarter of an ensemble's per-network setup).
template <typename T>
void to_columns(const T* __restrict from, int64_t rows, int64_t cols, int64_t np,
                T* __restrict to) {
  for (int64_t j = 0; j < cols; ++j) {
    T* __restrict col = to + j * np;
    for (int64_t i = 0; i < rows; ++i) col[i] = from[i * cols + j];
  }
}

// Above this many bytes per matrix, the column passes (combine, update_rec)
// stream the matrix column after column, each cache line once, with the
// units' sums kept in L1, instead of holding 4 vectors of units in registers
// across all the columns, which revisits every column once per 4 vectors: at
// 200 units online RFLO took 1.5-1.65 ms per trial that way, 0.9 ms streamed.
constexpr int64_t kStreamBytes = 64 * 1024;

// out[0:np] (+)= sum_j cols[j * np : (j + 1) * np] * v[j]   (np = padded<T>(n))
//
// backward: the register blocks of units in the opposite order (each unit's
// sum the same, in the same order of j).  A loop that calls combine on the
// same matrix at every step alternates it, so that a step starts on the
// block the step before ended on, still in L1: at 100 units (a 44.8 KiB
// matrix, L1 32 KiB) a chain of dependent matrix-vector products took 0.33
// us a product that way against 0.39 us in one order (none at 64-90 units,
// whose matrix fits L1, nor at 128); BPTT's trial, 146 -> 133-140 us.
template <typename T>
void combine(const T* __restrict cols, int64_t np, const T* __restrict v, int64_t count,
             T* __restrict out, bool accumulate, bool backward = false) {
  constexpr int64_t L = 64 / sizeof(T);
  if (count * np * int64_t(sizeof(T)) > kStreamBytes) {
    // the even columns' sum into out, the odd ones' into odd, then added: each
    // unit's sum in the same order as the register blocks below
    thread_local AlignedVector<T> odd_;
    if (int64_t(odd_.size()) < np) odd_.resize(np);
    T* __restrict odd = odd_.data();
    if (!accumulate) std::fill(out, out + np, T(0));
    std::fill(odd, odd + np, T(0));
    int64_t j = 0;
    // eight columns per pass over the units, so that out and odd are read and
    // written once per eight columns instead of once per two (the same sums in
    // the same order: even columns into out, odd ones into odd)
    for (; j + 7 < count; j += 8) {
      const T* c = cols + j * np;
      const T v0 = v[j], v1 = v[j + 1], v2 = v[j + 2], v3 = v[j + 3];
      const T v4 = v[j + 4], v5 = v[j + 5], v6 = v[j + 6], v7 = v[j + 7];
      for (int64_t i = 0; i < np; i += L) {
        Vec<T> e = load(out + i), o = load(odd + i);
        e += load(c + i) * v0;
        o += load(c + np + i) * v1;
        e += load(c + 2 * np + i) * v2;
        o += load(c + 3 * np + i) * v3;
        e += load(c + 4 * np + i) * v4;
        o += load(c + 5 * np + i) * v5;
        e += load(c + 6 * np + i) * v6;
        o += load(c + 7 * np + i) * v7;
        store(out + i, e);
        store(odd + i, o);
      }
    }
    for (; j + 1 < count; j += 2) {
      const T* c = cols + j * np;
      const T* d = c + np;
      const T s = v[j], r = v[j + 1];
      for (int64_t i = 0; i < np; i += L) {
        store(out + i, load(out + i) + load(c + i) * s);
        store(odd + i, load(odd + i) + load(d + i) * r);
      }
    }
    if (j < count) {
      const T* c = cols + j * np;
      const T s = v[j];
      for (int64_t i = 0; i < np; i += L) store(out + i, load(out + i) + load(c + i) * s);
    }
    for (int64_t i = 0; i < np; i += L) store(out + i, load(out + i) + load(odd + i));
    return;
  }
  in_blocks<T, 4>(np, [&](auto block, int64_t i0) {
    constexpr int V = decltype(block)::value;
    // two sets of accumulators (even and odd j): independent sums, so that
    // the adds do not wait on each other
    Vec<T> a[V], b[V];
    for (int k = 0; k < V; ++k) {
      a[k] = accumulate ? load(out + i0 + k * L) : Vec<T>{};
      b[k] = Vec<T>{};
    }
    int64_t j = 0;
    for (; j + 1 < count; j += 2) {
      const T* c = cols + j * np + i0;
      const T* d = c + np;
      const T s = v[j], r = v[j + 1];
      for (int k = 0; k < V; ++k) {
        a[k] += load(c + k * L) * s;
        b[k] += load(d + k * L) * r;
      }
    }
    if (j < count) {
      const T* c = cols + j * np + i0;
      const T s = v[j];
      for (int k = 0; k < V; ++k) a[k] += load(c + k * L) * s;
    }
    for (int k = 0; k < V; ++k) store(out + i0 + k * L, a[k] + b[k]);
  }, backward);
}

#if defined(__AVX512F__)
constexpr int kRegisters = 32;  // vector registers: the blocked loops size their accumulators by it
#else
constexpr int kRegisters = 16;
#endif
constexpr int kCols = kRegisters / 8;  // 4 or 2

// Keeps v in a register where vectors fit one (AVX-512): without this GCC
// folds the loads of outer_sum's row into every multiply-add that uses it, as
// a memory operand, one load per product instead of one per row.
template <typename T>
RFLO_INLINE void in_register(Vec<T>& v) {
#if defined(__AVX512F__)
  asm("" : "+v"(v));
#else
  (void)v;
#endif
}

// out[j * np + i] = sum_s rows_a[s * np + j] rows_b[s * np + i] for j < count
// (a sum of outer products over s; rows padded to np, rows_a by at least 3
// entries past count).  kCols columns j by up to kCols vectors of i at a
// time, all accumulators in registers: 4 x 4 where there are 32 vector
// registers, at 100-200 units 97-109 GFLOP/s on one core (about its matmul
// peak) against 79-88 with 4 x 2 and the row's loads folded into the
// products (4 x 4 without in_register was no faster).  A function of its
// own (RFLO_ALONE): inlined into the offline trial, GCC kept the row's
// vectors on the stack, four stores per step of the sum.
template <typename T>
RFLO_ALONE void outer_sum(const T* __restrict rows_a, const T* __restrict rows_b, int64_t steps,
                          int64_t np, int64_t count, T* __restrict out) {
  constexpr int64_t L = 64 / sizeof(T);
  for (int64_t j = 0; j < count; j += kCols) {
    in_blocks<T, kCols>(np, [&](auto block, int64_t i0) {
      constexpr int V = decltype(block)::value;
      Vec<T> acc[kCols][V] = {};
      for (int64_t s = 0; s < steps; ++s) {
        const T* r = rows_b + s * np + i0;
        Vec<T> v[V];
        for (int k = 0; k < V; ++k) {
          v[k] = load(r + k * L);
          in_register<T>(v[k]);
        }
        const T* col = rows_a + s * np + j;
        for (int c = 0; c < kCols; ++c)
          for (int k = 0; k < V; ++k) acc[c][k] += v[k] * col[c];
      }
      for (int c = 0; c < kCols && j + c < count; ++c)
        for (int k = 0; k < V; ++k) store(out + (j + c) * np + i0 + k * L, acc[c][k]);
    });
  }
}

}  // namespace
