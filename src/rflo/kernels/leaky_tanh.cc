// Kernels of the leaky tanh network (rflo.kernels.leaky_tanh), each one XLA
// custom call that does what a compiled per-step loop of the library does, in
// one pass per step instead of several small XLA operations.  Notation of the
// rules: a = 1 / tau, c = 1 - a, d[t] = f'(u[t]).  Leading dimensions of every
// operand are networks (jax.vmap with vmap_method="broadcast_all"), run in turn.
//
// Forward (rflo.rules.base.forward), for t = 1 .. T-1 from h = h0:
//   u[t] = w_rec h[t-1] + drive[t]              h[t] = h[t-1] + (tanh(u[t]) - h[t-1]) / tau
//
// Adjoint (rflo.rules.bptt.adjoint_backward), for t = S-1 .. 0 from zero:
//   delta[t] = e[t] + c delta[t+1] + w_rec^T v[t+1]      v[t] = ad[t] * delta[t]
//
// RTRL over a trial with fixed weights (rflo.rules.rtrl, offline), t = 1 .. T-1:
//   J = c I + a diag(d) w_rec    P <- J P + a delta_{ki} d_i pre_j    dW += g^T P
// with P the influence of every w_rec and w_in entry, its columns split over threads.
//
// Online trial of a local-trace rule (RFLO, its "local" ablation, e-prop) with
// the squared-error loss and plain SGD (rflo.trainer._online_update with
// rflo.rules.rflo's step and direction), for t = 1 .. T-1:
//   u     = w_rec h + w_in x[t]               h' = h + (tanh(u) - h) / tau
//   y     = w_out h'                           err = m[t] (y*[t] - y)
//   g     = F err     (F = b, or w_out^T before this step's update)
//   p     = c p + a f'(u) h^T                  q = c q + a f'(u) x[t]^T
//   w_rec += (lr_rec / T) g * p   (then the mask and Dale's signs)
//   w_in  += (lr_in / T) g * q                 w_out += (lr_out / T) err h'^T
// It keeps O(n_rec^2) state, and the outputs y only when asked (keep_outputs).
//
// Offline step (rflo.trainer.run_trials with plain SGD and rflo.guard.guard_step):
// the offline trial's direction d, then w' = w + lr d / T (mask, Dale), and the
// divergence guard's choice between w', the last good network and the best one,
// written over its inputs (input_output_aliases).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "workers.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// tanh and exp in float32 without library calls, so that the compiler can
// vectorise the loops that use them: tanh is the clamped rational
// approximation that XLA's CPU backend (after Eigen) uses, exp the Cephes
// polynomial with the exponent rebuilt from its bits.  float64 uses <cmath>.
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

RFLO_INLINE float tanh_(float x) { return fast_tanh(x); }
RFLO_INLINE double tanh_(double x) { return std::tanh(x); }
RFLO_INLINE float exp_(float x) { return fast_exp(x); }
RFLO_INLINE double exp_(double x) { return std::exp(x); }

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

// One step of np units from their currents u: h_new = h + (tanh(u) - h) / tau
// and d = a f'(u) (the exact tanh' shares tanh(u) with the update).
template <typename T>
RFLO_INLINE void neuron_step(const T* __restrict u, const T* __restrict h, T* __restrict h_new,
                             T* __restrict d, int64_t np, T tau, T a, bool exact) {
  if (exact) {
#pragma omp simd
    for (int64_t i = 0; i < np; ++i) {
      const T th = tanh_(u[i]);
      h_new[i] = h[i] + (th - h[i]) / tau;
      d[i] = a * (T(1) - th * th);
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < np; ++i) {
      h_new[i] = h[i] + (tanh_(u[i]) - h[i]) / tau;
      d[i] = a * fprime(u[i], false);
    }
  }
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
template <typename T>
void combine(const T* __restrict cols, int64_t np, const T* __restrict v, int64_t count,
             T* __restrict out, bool accumulate) {
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
  });
}

// out[j * np + i] = sum_s rows_a[s * np + j] rows_b[s * np + i] for j < count
// (a sum of outer products over s; rows padded to np, rows_a by at least 3
// entries past count).  kCols columns j by two vectors of i at a time, all
// accumulators in registers (more columns where there are 32 vector registers).
#if defined(__AVX512F__)
constexpr int kCols = 4;
#else
constexpr int kCols = 2;
#endif

template <typename T>
void outer_sum(const T* __restrict rows_a, const T* __restrict rows_b, int64_t steps, int64_t np,
               int64_t count, T* __restrict out) {
  constexpr int64_t L = 64 / sizeof(T);
  for (int64_t j = 0; j < count; j += kCols) {
    in_blocks<T, 2>(np, [&](auto block, int64_t i0) {
      constexpr int V = decltype(block)::value;
      Vec<T> acc[kCols][V] = {};
      for (int64_t s = 0; s < steps; ++s) {
        const T* r = rows_b + s * np + i0;
        Vec<T> v[V];
        for (int k = 0; k < V; ++k) v[k] = load(r + k * L);
        const T* col = rows_a + s * np + j;
        for (int c = 0; c < kCols; ++c)
          for (int k = 0; k < V; ++k) acc[c][k] += v[k] * col[c];
      }
      for (int c = 0; c < kCols && j + c < count; ++c)
        for (int k = 0; k < V; ++k) store(out + (j + c) * np + i0 + k * L, acc[c][k]);
    });
  }
}

// Runs fn(k) for the networks k = 0 .. nets-1 of one call on up to `threads`
// threads, kept between calls (workers.h): each network is computed by one
// thread, as it would be alone, so the results do not depend on the count.
template <typename F>
void for_each_network(int64_t nets, int64_t threads, F&& fn) {
  rflo_workers::for_each(nets, threads, std::forward<F>(fn));
}

// A thread's working memory, kept between networks and calls (one offline
// step's direction).
template <typename T>
AlignedVector<T>& scratch() {
  thread_local AlignedVector<T> memory;
  return memory;
}

// One vector of column j of update_rec: p = c p + d h_j, then w += gs p (gs =
// step g; then the mask, and Dale's law with unit j's sign); stores both and
// returns the new w.
template <typename T>
RFLO_INLINE Vec<T> trace_and_weight(T* __restrict pc, T* __restrict wc, const T* __restrict mk,
                                    const T* __restrict sign, int64_t j, Vec<T> d, Vec<T> gs,
                                    T hj, T c) {
  const Vec<T> zero = {};
  const Vec<T> pk = load(pc) * c + d * hj;
  Vec<T> wk = load(wc) + gs * pk;
  if (mk) wk *= load(mk);
  if (sign) {
    const Vec<T> v = wk * sign[j];
    wk = (v > zero ? v : zero) * sign[j];
  }
  store(pc, pk);
  store(wc, wk);
  return wk;
}

// One step of the recurrent traces and weights, column by column (presynaptic
// unit j), up to 4 vectors of postsynaptic units at a time held in registers:
//   p[:, j] = c p[:, j] + d h[j],   w[:, j] += step g * p[:, j]   (then mask, Dale)
// and, from the updated weights, u_next = w h_new (the next step's recurrent input).
template <typename T>
void update_rec(T* __restrict p, T* __restrict w, const T* __restrict mask,
                const T* __restrict sign, const T* __restrict d, const T* __restrict g,
                const T* __restrict h, const T* __restrict h_new, T c, T step, int64_t n,
                int64_t np, T* __restrict u_next) {
  constexpr int64_t L = 64 / sizeof(T);
  const Vec<T> zero = {};
  if (n * np * int64_t(sizeof(T)) > kStreamBytes) {
    // column by column, each once, u_next kept in L1 (kStreamBytes); four
    // columns per pass over the units, so that u_next is read and written once
    // per four columns (each unit's sum still in the order of j)
    std::fill(u_next, u_next + np, T(0));
    int64_t j0 = 0;
    for (; j0 + 3 < n; j0 += 4) {
      for (int64_t i = 0; i < np; i += L) {
        const Vec<T> dk = load(d + i), gs = load(g + i) * step;
        Vec<T> acc = load(u_next + i);
        for (int64_t j = j0; j < j0 + 4; ++j) {
          const T* mk = mask ? mask + j * np + i : nullptr;
          acc += trace_and_weight(p + j * np + i, w + j * np + i, mk, sign, j, dk, gs, h[j], c) *
                 h_new[j];
        }
        store(u_next + i, acc);
      }
    }
    for (int64_t j = j0; j < n; ++j) {
      T* pc = p + j * np;
      T* wc = w + j * np;
      const T hj = h[j], hn = h_new[j];
      for (int64_t i = 0; i < np; i += L) {
        const Vec<T> wk = trace_and_weight(pc + i, wc + i, mask ? mask + j * np + i : nullptr,
                                           sign, j, load(d + i), load(g + i) * step, hj, c);
        store(u_next + i, load(u_next + i) + wk * hn);
      }
    }
    return;
  }
  in_blocks<T, 4>(np, [&](auto block, int64_t i0) {
    constexpr int V = decltype(block)::value;
    Vec<T> d_[V], gs[V], acc[V];
    for (int k = 0; k < V; ++k) {
      d_[k] = load(d + i0 + k * L);
      gs[k] = load(g + i0 + k * L) * step;
      acc[k] = zero;
    }
    for (int64_t j = 0; j < n; ++j) {
      T* pc = p + j * np + i0;
      T* wc = w + j * np + i0;
      const T hj = h[j], hn = h_new[j];
      for (int k = 0; k < V; ++k) {
        const T* mk = mask ? mask + j * np + i0 + k * L : nullptr;
        acc[k] += trace_and_weight(pc + k * L, wc + k * L, mk, sign, j, d_[k], gs[k], hj, c) * hn;
      }
    }
    for (int k = 0; k < V; ++k) store(u_next + i0 + k * L, acc[k]);
  });
}

// One network's online trial (the loop described at the top): from w_in, w_rec,
// w_out (wi0, wr0, Wo0) with the scalars s = (tau, lr_in, lr_rec, lr_out),
// writes the updated matrices to wi1, wr1, Wo (Wo may be Wo0) and, with
// keep_outputs, the outputs; returns the trial's summed step loss.
template <typename T>
RFLO_ALONE T online_network(const T* wi0, const T* wr0, const T* Wo0, const T* B, const T* h0,
                 const T* M, const T* sg, const T* s, const T* X, const T* Y, const T* Ms,
                 int64_t steps, int64_t n_in, int64_t n_out, int64_t n, bool readout,
                 bool exact, bool dale, bool has_mask, int64_t trained, bool keep_outputs,
                 T* wi1, T* wr1, T* Wo, T* out) {
  const bool train_in = trained & 1, train_rec = trained & 2, train_out = trained & 4;
  // Working copies are presynaptic-major (w_rec^T, w_in^T, p^T, q^T), so that
  // every inner loop runs over the postsynaptic units i without a reduction:
  // u += w_rec[:, j] h[j], p[:, j] = c p[:, j] + a d h[j], ...
  // columns are padded to whole vectors of units (zeros that stay zero: the
  // padded units get no input and no feedback)
  const int64_t np = padded<T>(n);
  // (the copies of the matrices zeroed: their padded units stay zero; the
  // rest is set below or written before it is read)
  AlignedVector<T> wr(n * np), wi(n_in * np), mt_(has_mask ? n * np : 0);
  UnsetVector<T> p(n * np), q(n_in * np), h(np), hn(np), u(np), d(np), g(np), err(n_out);
  const T tau = s[0], a = T(1) / tau, c = T(1) - a;
  const T step_in = s[1] / T(steps), step_rec = s[2] / T(steps), step_out = s[3] / T(steps);
  to_columns(wr0, n, n, np, wr.data());
  to_columns(wi0, n, n_in, np, wi.data());
  if (has_mask) to_columns(M, n, n, np, mt_.data());
  if (Wo0 != Wo) std::copy(Wo0, Wo0 + n_out * n, Wo);
  std::fill(h.begin(), h.end(), T(0));
  std::copy(h0, h0 + n, h.begin());
  std::fill(p.begin(), p.end(), T(0));
  std::fill(q.begin(), q.end(), T(0));
  T total = T(0);
  T* __restrict U = u.data();
  T* __restrict H = h.data();
  T* __restrict HN = hn.data();
  T* __restrict D = d.data();
  T* __restrict G = g.data();

  for (int64_t t = 1; t < steps; ++t) {
    const T* xt = X + t * n_in;
    const T* yt = Y + t * n_out;
    const T mt = Ms[t];
    // u = w_rec h + w_in x[t]  (w_rec h comes from the previous step's update loop)
    if (t == 1 || !train_rec) combine(wr.data(), np, H, n, U, false);
    combine(wi.data(), np, xt, n_in, U, true);
    neuron_step(U, H, HN, D, np, tau, a, exact);
    T step_loss = T(0);
    for (int64_t o = 0; o < n_out; ++o) {
      T acc = T(0);
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < n; ++i) acc += Wo[o * n + i] * HN[i];
      if (keep_outputs) out[(t - 1) * n_out + o] = acc;
      const T diff = yt[o] - acc;
      err[o] = mt * diff;
      step_loss += diff * diff;
    }
    total += T(0.5) * mt * step_loss;
    // feedback g = F err, with w_out from before this step's update
    std::fill(g.begin(), g.end(), T(0));
    for (int64_t o = 0; o < n_out; ++o) {
      const T e = err[o];
      if (readout)
        for (int64_t i = 0; i < n; ++i) G[i] += Wo[o * n + i] * e;
      else
        for (int64_t i = 0; i < n; ++i) G[i] += B[i * n_out + o] * e;
    }
    if (train_rec)
      update_rec(p.data(), wr.data(), has_mask ? mt_.data() : nullptr, dale ? sg : nullptr, D, G,
                 H, HN, c, step_rec, n, np, U);
    if (train_in) {
      for (int64_t j = 0; j < n_in; ++j) {
        T* __restrict qc = q.data() + j * np;
        T* __restrict wc = wi.data() + j * np;
        const T xj = xt[j];
#pragma omp simd
        for (int64_t i = 0; i < np; ++i) {
          qc[i] = c * qc[i] + D[i] * xj;
          wc[i] += step_in * G[i] * qc[i];
        }
      }
    }
    if (train_out)
      for (int64_t o = 0; o < n_out; ++o) {
        const T e = step_out * err[o];
        T* wo = Wo + o * n;
        for (int64_t i = 0; i < n; ++i) wo[i] += e * HN[i];
      }
    std::copy(hn.begin(), hn.end(), h.begin());
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) wr1[i * n + j] = wr[j * np + i];
    for (int64_t j = 0; j < n_in; ++j) wi1[i * n_in + j] = wi[j * np + i];
  }
  return total;
}

template <ffi::DataType DT>
ffi::Error ForwardImpl(ffi::Buffer<DT> w_rec, ffi::Buffer<DT> drive, ffi::Buffer<DT> h0,
                       ffi::Buffer<DT> tau_, ffi::ResultBuffer<DT> u_out,
                       ffi::ResultBuffer<DT> h_out, int64_t threads) {
  using T = ffi::NativeType<DT>;
  auto dd = drive.dimensions();
  if (dd.size() < 2) return ffi::Error::InvalidArgument("forward: drive needs (S, n_rec)");
  const int64_t steps = dd[dd.size() - 2], n = dd[dd.size() - 1];
  const int64_t nets = h0.element_count() / n;
  if (w_rec.element_count() != nets * n * n || drive.element_count() != nets * steps * n ||
      tau_.element_count() != nets)
    return ffi::Error::InvalidArgument("forward: operand shapes do not agree");
  const int64_t np = padded<T>(n);
  for_each_network(nets, threads, [&](int64_t k) {
    AlignedVector<T> wt(n * np);  // zeroed: its padded units stay zero
    UnsetVector<T> h(np), u(np);
    const T tau = tau_.typed_data()[k];
    const T* W = w_rec.typed_data() + k * n * n;
    to_columns(W, n, n, np, wt.data());
    std::fill(h.begin(), h.end(), T(0));
    std::copy(h0.typed_data() + k * n, h0.typed_data() + (k + 1) * n, h.begin());
    const T* Dr = drive.typed_data() + k * steps * n;
    T* U = u_out->typed_data() + k * steps * n;
    T* Hs = h_out->typed_data() + k * steps * n;
    for (int64_t t = 0; t < steps; ++t) {
      combine(wt.data(), np, h.data(), n, u.data(), false);
      for (int64_t i = 0; i < n; ++i) U[t * n + i] = u[i] + Dr[t * n + i];
      T* ut = U + t * n;
      T* ht = Hs + t * n;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T hi = h[i] + (tanh_(ut[i]) - h[i]) / tau;
        ht[i] = hi;
      }
      std::copy(ht, ht + n, h.begin());
    }
  });
  return ffi::Error::Success();
}

// One network's offline trial with fixed weights (local traces, or the exact
// adjoint with backprop): the summed direction DR (n, n), DI (n, n_in), DO
// (n_out, n), row-major, the outputs out (S, n_out), and the trial's summed
// step loss sum_s 0.5 m[s] |y*[s] - y[s]|^2 (returned).
template <typename T>
RFLO_ALONE T offline_network(const T* W, const T* Wi, const T* Wo, const T* B, const T* h0, T tau,
                  const T* X, const T* Y, const T* M, int64_t steps, int64_t n_in,
                  int64_t n_out, int64_t n, bool backprop, bool readout, bool exact, T* DR,
                  T* DI, T* DO, T* out) {
  const int64_t np = padded<T>(n), S = steps - 1;
  // presynaptic-major padded copies; H row s is h[s] (row 0: h0), D, V rows are steps 1..T-1
  // the copies of the matrices zeroed (their padded units stay zero); the
  // per-step rows unset: every entry is written before it is read (H's row 0
  // is zeroed below, the forward loop writes the others whole)
  AlignedVector<T> wt(n * np), wr(backprop ? n * np : 0), wit(n_in * np), fb(n_out * np);
  UnsetVector<T> H((S + 1) * np), D(S * np), V(S * np), E(S * n_out), run(np), back(np),
      dt(n * np), dit(n_in * np), u(np);
  const T a = T(1) / tau, c = T(1) - a;
  std::fill(H.begin(), H.begin() + np, T(0));
  to_columns(W, n, n, np, wt.data());
  to_columns(Wi, n, n_in, np, wit.data());
  for (int64_t i = 0; i < n; ++i) {
    if (backprop)
      for (int64_t j = 0; j < n; ++j) wr[i * np + j] = W[i * n + j];
    for (int64_t o = 0; o < n_out; ++o)  // feedback column o: F[:, o]
      fb[o * np + i] = readout ? Wo[o * n + i] : B[i * n_out + o];
  }
  std::copy(h0, h0 + n, H.begin());

  // forward, with a f'(u) kept per step
  for (int64_t s = 0; s < S; ++s) {
    const T* hp = H.data() + s * np;
    const T* xt = X + (s + 1) * n_in;
    combine(wt.data(), np, hp, n, u.data(), false);
    combine(wit.data(), np, xt, n_in, u.data(), true);
    T* __restrict hn = H.data() + (s + 1) * np;
    T* __restrict ds = D.data() + s * np;
    neuron_step(u.data(), hp, hn, ds, np, tau, a, exact);
    for (int64_t i = n; i < np; ++i) hn[i] = T(0);  // padded units stay silent
  }
  // readout and errors
  T loss = T(0);
  for (int64_t s = 0; s < S; ++s) {
    const T* hs = H.data() + (s + 1) * np;
    T step_loss = T(0);
    for (int64_t o = 0; o < n_out; ++o) {
      T acc = T(0);
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < n; ++i) acc += Wo[o * n + i] * hs[i];
      out[s * n_out + o] = acc;
      const T diff = Y[(s + 1) * n_out + o] - acc;
      E[s * n_out + o] = M[s + 1] * diff;
      step_loss += diff * diff;
    }
    loss += T(0.5) * M[s + 1] * step_loss;
  }
  // credit: v[s] = a f'(u[s]) * (G[s] or delta[s]), backward in time
  std::fill(run.begin(), run.end(), T(0));
  std::fill(back.begin(), back.end(), T(0));
  for (int64_t s = S - 1; s >= 0; --s) {
    T* __restrict r = run.data();
    const T* bk = back.data();
    for (int64_t i = 0; i < np; ++i) r[i] = c * r[i] + bk[i];
    for (int64_t o = 0; o < n_out; ++o) {
      const T e = E[s * n_out + o];
      const T* f = fb.data() + o * np;
#pragma omp simd
      for (int64_t i = 0; i < np; ++i) r[i] += f[i] * e;
    }
    T* __restrict vs = V.data() + s * np;
    const T* ds = D.data() + s * np;
#pragma omp simd
    for (int64_t i = 0; i < np; ++i) vs[i] = ds[i] * r[i];
    if (backprop) {  // back = w_rec^T v[s] = sum_i v[s, i] w_rec[i, :]
      combine(wr.data(), np, vs, n, back.data(), false);
    }
  }
  // products: d_rec^T[j, :] = sum_s h[s, j] v[s, :],  d_in^T[k, :] = sum_s x[s+1, k] v[s, :]
  outer_sum(H.data(), V.data(), S, np, n, dt.data());
  std::fill(dit.begin(), dit.end(), T(0));
  for (int64_t s = 0; s < S; ++s) {
    const T* vs = V.data() + s * np;
    for (int64_t j = 0; j < n_in; ++j) {
      const T xj = X[(s + 1) * n_in + j];
      T* col = dit.data() + j * np;
#pragma omp simd
      for (int64_t i = 0; i < np; ++i) col[i] += vs[i] * xj;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) DR[i * n + j] = dt[j * np + i];
    for (int64_t j = 0; j < n_in; ++j) DI[i * n_in + j] = dit[j * np + i];
  }
  for (int64_t o = 0; o < n_out; ++o) {
    T* row = DO + o * n;
    std::fill(row, row + n, T(0));
    for (int64_t s = 0; s < S; ++s) {
      const T e = E[s * n_out + o];
      const T* hs = H.data() + (s + 1) * np;
      for (int64_t i = 0; i < n; ++i) row[i] += e * hs[i];
    }
  }
  return loss;
}

// A trial's sizes, from x (nets, T, n_in), y (nets, T, n_out) and h0 (nets, n_rec).
struct Trial {
  int64_t steps, n_in, n_out, n, nets;
};

// Reads the sizes into t; false where x, y or h0 has too few dimensions.
template <ffi::DataType DT>
bool trial_sizes(const ffi::Buffer<DT>& x, const ffi::Buffer<DT>& y, const ffi::Buffer<DT>& h0,
                 Trial& t) {
  auto xd = x.dimensions();
  auto yd = y.dimensions();
  auto hd = h0.dimensions();
  if (xd.size() < 2 || yd.size() < 2 || hd.size() < 1) return false;
  t.steps = xd[xd.size() - 2];
  t.n_in = xd[xd.size() - 1];
  t.n_out = yd[yd.size() - 1];
  t.n = hd[hd.size() - 1];
  t.nets = h0.element_count() / t.n;
  return true;
}

// Whether the weights, b, tau and the trial's x, y, mask fit the sizes (a trial kernel's operands).
template <ffi::DataType DT>
bool trial_fits(const Trial& t, const ffi::Buffer<DT>& w_in, const ffi::Buffer<DT>& w_rec,
                const ffi::Buffer<DT>& w_out, const ffi::Buffer<DT>& b,
                const ffi::Buffer<DT>& tau, const ffi::Buffer<DT>& x,
                const ffi::Buffer<DT>& y, const ffi::Buffer<DT>& m) {
  const int64_t k = t.nets, n = t.n;
  return w_rec.element_count() == k * n * n && w_in.element_count() == k * n * t.n_in &&
         w_out.element_count() == k * t.n_out * n && b.element_count() == k * n * t.n_out &&
         x.element_count() == k * t.steps * t.n_in && y.element_count() == k * t.steps * t.n_out &&
         m.element_count() == k * t.steps && tau.element_count() == k;
}

template <ffi::DataType DT>
ffi::Error OfflineImpl(ffi::Buffer<DT> w_in, ffi::Buffer<DT> w_rec, ffi::Buffer<DT> w_out,
                       ffi::Buffer<DT> b, ffi::Buffer<DT> h0, ffi::Buffer<DT> tau_,
                       ffi::Buffer<DT> x, ffi::Buffer<DT> y, ffi::Buffer<DT> m,
                       ffi::ResultBuffer<DT> d_in, ffi::ResultBuffer<DT> d_rec,
                       ffi::ResultBuffer<DT> d_out, ffi::ResultBuffer<DT> outputs,
                       int64_t backprop, int64_t readout, int64_t exact, int64_t threads) {
  using T = ffi::NativeType<DT>;
  Trial tr;
  if (!trial_sizes(x, y, h0, tr))
    return ffi::Error::InvalidArgument("offline trial: x, y need (T, n) and h0 (n_rec,)");
  const int64_t steps = tr.steps, n_in = tr.n_in, n_out = tr.n_out, n = tr.n, nets = tr.nets;
  const int64_t S = steps - 1;
  if (!trial_fits(tr, w_in, w_rec, w_out, b, tau_, x, y, m))
    return ffi::Error::InvalidArgument("offline trial: operand shapes do not agree");
  for_each_network(nets, threads, [&](int64_t k) {
    const T* W = w_rec.typed_data() + k * n * n;
    const T* Wi = w_in.typed_data() + k * n * n_in;
    const T* Wo = w_out.typed_data() + k * n_out * n;
    offline_network(W, Wi, Wo, b.typed_data() + k * n * n_out, h0.typed_data() + k * n,
                    tau_.typed_data()[k], x.typed_data() + k * steps * n_in,
                    y.typed_data() + k * steps * n_out, m.typed_data() + k * steps, steps, n_in,
                    n_out, n, backprop, readout, exact, d_rec->typed_data() + k * n * n,
                    d_in->typed_data() + k * n * n_in, d_out->typed_data() + k * n_out * n,
                    outputs->typed_data() + k * S * n_out);
  });
  return ffi::Error::Success();
}


// The divergence guard's decisions for one network (rflo.guard.guard_step),
// from sc = (best, growth, best_w_loss) and iv = (trial, frozen_at, good_at,
// best_at); record() writes (best, best_w_loss, recorded loss) and (frozen_at,
// good_at, best_at).
template <typename T>
struct Verdict {
  T loss, best, growth, best_w_loss;
  int32_t trial, frozen_at, good_at, best_at;
  bool healthy, measured, take = false, lowest = false;
  Verdict(T loss_, const T* sc, const int32_t* iv)
      : loss(loss_), best(sc[0]), growth(sc[1]), best_w_loss(sc[2]), trial(iv[0]),
        frozen_at(iv[1]), good_at(iv[2]), best_at(iv[3]), healthy(iv[1] < 0),
        measured(iv[1] < 0 && std::isfinite(loss_) && loss_ <= sc[1] * sc[0]) {}
  // once the updated parameters' finiteness is known
  void decide(bool finite) {
    take = measured && finite;
    lowest = take && loss > T(0) && loss < best_w_loss;
  }
  void record(T* so, int32_t* io) const {
    so[0] = (take && loss > T(0)) ? std::min(best, loss) : best;
    so[1] = lowest ? loss : best_w_loss;
    so[2] = healthy ? loss : std::numeric_limits<T>::quiet_NaN();
    io[0] = (healthy && !take) ? trial : frozen_at;
    io[1] = measured ? trial : good_at;
    io[2] = lowest ? trial : best_at;
  }
};

// Whether every entry of the trained matrices (bits of `trained`) is finite, as
// guard_step tests it: one sum per matrix, finite iff every entry is (a sum
// overflows only for entries near the float range, which is divergence too).
// (The sum in vectors: XLA's order is not one-by-one either, and one add after
// another, each waiting for the last, took 3.5 us of a 50-unit network.)
template <typename T>
bool trained_finite(T* const mats[3], const int64_t* sizes, int64_t trained) {
  constexpr int64_t L = 64 / sizeof(T);
  T sum = T(0);
  for (int q = 0; q < 3; ++q) {
    if (!(trained & (1 << q))) continue;
    const T* a = mats[q];
    Vec<T> acc[4] = {};
    int64_t i = 0;
    for (; i + 4 * L <= sizes[q]; i += 4 * L)
      for (int k = 0; k < 4; ++k) acc[k] += load(a + i + k * L);
    const Vec<T> v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    T part = T(0);
    for (int k = 0; k < L; ++k) part += v[k];
    for (; i < sizes[q]; ++i) part += a[i];
    sum += part;
  }
  return std::isfinite(sum);
}

// copies count entries unless from and to are the same memory (aliased outputs)
template <typename T>
void move(const T* from, T* to, int64_t count) {
  if (from != to) std::memmove(to, from, count * sizeof(T));
}

// One network's w_in, w_rec, w_out (sizes: their entries per network) in
// three operands, or in three results.
template <ffi::DataType DT>
void matrices(const ffi::Buffer<DT>& a, const ffi::Buffer<DT>& b, const ffi::Buffer<DT>& c,
              const int64_t* sizes, int64_t k, const ffi::NativeType<DT>* out[3]) {
  out[0] = a.typed_data() + k * sizes[0];
  out[1] = b.typed_data() + k * sizes[1];
  out[2] = c.typed_data() + k * sizes[2];
}

template <ffi::DataType DT>
void matrices(ffi::ResultBuffer<DT>& a, ffi::ResultBuffer<DT>& b, ffi::ResultBuffer<DT>& c,
              const int64_t* sizes, int64_t k, ffi::NativeType<DT>* out[3]) {
  out[0] = a->typed_data() + k * sizes[0];
  out[1] = b->typed_data() + k * sizes[1];
  out[2] = c->typed_data() + k * sizes[2];
}

template <ffi::DataType DT>
bool three_fit(const ffi::Buffer<DT>& a, const ffi::Buffer<DT>& b, const ffi::Buffer<DT>& c,
               const int64_t* sizes, int64_t nets) {
  return a.element_count() == nets * sizes[0] && b.element_count() == nets * sizes[1] &&
         c.element_count() == nets * sizes[2];
}

// One update with plain SGD and the divergence guard (rflo.trainer.run_trials
// with rflo.guard.guard_step), per network; offline (online = 0):
//   d = offline_network(w)          new = w + lr * (d / T)   (w_rec: mask, Dale)
//   loss = summed step loss / norm  finite = sum(new) is finite
//   measured = healthy & loss finite & loss <= growth * best   take = measured & finite
//   good' = measured ? w : good     kept = take ? new : good'
//   best_w' = lowest ? w : best_w   (lowest = take & 0 < loss < best_w_loss)
// scal (9 per network): tau, lr_in, lr_rec, lr_out, best, growth, best_w_loss,
// 1 / norm, 1 / T; ints (4): trial, frozen_at, good_at, best_at.  Returns
// scal_out (3): best, best_w_loss, the recorded loss (NaN once frozen);
// ints_out (3): frozen_at, good_at, best_at.  Matrices not in `trained`
// (bits: w_in 1, w_rec 2, w_out 4) are copied through.
// Online (online = 1): the online trial (online_network), its summed step loss
// over norm the guard's loss, outputs (T-1, or with keep_outputs 0 one row, n_out).
template <ffi::DataType DT>
ffi::Error StepImpl(
    ffi::Buffer<DT> w_in, ffi::Buffer<DT> w_rec, ffi::Buffer<DT> w_out, ffi::Buffer<DT> good_in,
    ffi::Buffer<DT> good_rec, ffi::Buffer<DT> good_out, ffi::Buffer<DT> best_in,
    ffi::Buffer<DT> best_rec, ffi::Buffer<DT> best_out, ffi::Buffer<DT> b, ffi::Buffer<DT> h0,
    ffi::Buffer<DT> mask, ffi::Buffer<DT> sign, ffi::Buffer<DT> scal,
    ffi::Buffer<ffi::S32> ints, ffi::Buffer<DT> x, ffi::Buffer<DT> y, ffi::Buffer<DT> m,
    ffi::ResultBuffer<DT> kept_in, ffi::ResultBuffer<DT> kept_rec, ffi::ResultBuffer<DT> kept_out,
    ffi::ResultBuffer<DT> good_in_new, ffi::ResultBuffer<DT> good_rec_new,
    ffi::ResultBuffer<DT> good_out_new, ffi::ResultBuffer<DT> best_in_new,
    ffi::ResultBuffer<DT> best_rec_new, ffi::ResultBuffer<DT> best_out_new,
    ffi::ResultBuffer<DT> scal_out, ffi::ResultBuffer<ffi::S32> ints_out,
    ffi::ResultBuffer<DT> outputs, int64_t online, int64_t backprop, int64_t readout,
    int64_t exact, int64_t dale, int64_t has_mask, int64_t trained, int64_t keep_outputs,
    int64_t threads) {
  using T = ffi::NativeType<DT>;
  Trial tr;
  if (!trial_sizes(x, y, h0, tr))
    return ffi::Error::InvalidArgument("step: x, y need (T, n) and h0 (n_rec,)");
  const int64_t steps = tr.steps, n_in = tr.n_in, n_out = tr.n_out, n = tr.n, nets = tr.nets;
  const int64_t S = steps - 1;
  const int64_t sizes[3] = {n * n_in, n * n, n_out * n};
  const int64_t rows = (online && !keep_outputs) ? 1 : S;
  if (!three_fit(w_in, w_rec, w_out, sizes, nets) ||
      !three_fit(good_in, good_rec, good_out, sizes, nets) ||
      !three_fit(best_in, best_rec, best_out, sizes, nets) || b.element_count() != nets * n * n_out ||
      x.element_count() != nets * steps * n_in || y.element_count() != nets * steps * n_out ||
      m.element_count() != nets * steps || scal.element_count() != nets * 9 ||
      ints.element_count() != nets * 4 || (has_mask && mask.element_count() != nets * n * n) ||
      (dale && sign.element_count() != nets * n) ||
      outputs->element_count() != nets * rows * n_out)
    return ffi::Error::InvalidArgument("step: operand shapes do not agree");
  for_each_network(nets, threads, [&](int64_t k) {
    const T* sc = scal.typed_data() + 9 * k;
    const int32_t* iv = ints.typed_data() + 4 * k;
    const T *w[3], *good[3], *best[3];
    T *kept[3], *good2[3], *best2[3];
    matrices(w_in, w_rec, w_out, sizes, k, w);
    matrices(good_in, good_rec, good_out, sizes, k, good);
    matrices(best_in, best_rec, best_out, sizes, k, best);
    matrices(kept_in, kept_rec, kept_out, sizes, k, kept);
    matrices(good_in_new, good_rec_new, good_out_new, sizes, k, good2);
    matrices(best_in_new, best_rec_new, best_out_new, sizes, k, best2);
    T* out = outputs->typed_data() + k * rows * n_out;
    if (online) {
      AlignedVector<T>& mem = scratch<T>();  // the trial's new parameters
      mem.resize(std::max<size_t>(mem.size(), sizes[0] + sizes[1] + sizes[2]));
      T* nw[3] = {mem.data(), mem.data() + sizes[0], mem.data() + sizes[0] + sizes[1]};
      const T total = online_network(
          w[0], w[1], w[2], b.typed_data() + k * n * n_out, h0.typed_data() + k * n,
          has_mask ? mask.typed_data() + k * n * n : nullptr,
          dale ? sign.typed_data() + k * n : nullptr, sc, x.typed_data() + k * steps * n_in,
          y.typed_data() + k * steps * n_out, m.typed_data() + k * steps, steps, n_in, n_out, n,
          readout, exact, dale, has_mask, trained, keep_outputs, nw[0], nw[1], nw[2],
          out);
      Verdict<T> verdict(total * sc[7], sc + 4, iv);
      verdict.decide(trained_finite(nw, sizes, trained));
      // w is read (into best_w', good') before kept, which may share its memory, is written
      for (int q = 0; q < 3; ++q) {
        move(verdict.lowest ? w[q] : best[q], best2[q], sizes[q]);
        move(verdict.measured ? w[q] : good[q], good2[q], sizes[q]);
        move(verdict.take ? nw[q] : good2[q], kept[q], sizes[q]);
      }
      verdict.record(scal_out->typed_data() + 3 * k, ints_out->typed_data() + 3 * k);
      return;
    }
    // the direction (scratch, one slice per matrix)
    AlignedVector<T>& dir = scratch<T>();
    dir.resize(std::max<size_t>(dir.size(), sizes[0] + sizes[1] + sizes[2]));
    T* d[3] = {dir.data(), dir.data() + sizes[0], dir.data() + sizes[0] + sizes[1]};
    const T total =
        offline_network(w[1], w[0], w[2], b.typed_data() + k * n * n_out,
                        h0.typed_data() + k * n, sc[0], x.typed_data() + k * steps * n_in,
                        y.typed_data() + k * steps * n_out, m.typed_data() + k * steps, steps,
                        n_in, n_out, n, backprop, readout, exact, d[1], d[0], d[2],
                        out);
    const T loss = total * sc[7], inv_t = sc[8];
    Verdict<T> verdict(loss, sc + 4, iv);
    const bool measured = verdict.measured;
    // Outputs may share their inputs' memory (input_output_aliases: kept with
    // w, good' with good, best_w' with best_w), so w is saved into good' before
    // kept is written over it, and best_w' is copied from good'.
    for (int q = 0; q < 3; ++q) move(measured ? w[q] : good[q], good2[q], sizes[q]);
    if (measured) {  // the SGD step, in place: kept = w + lr d / T (w_rec: mask, Dale)
      for (int q = 0; q < 3; ++q) {
        T* v = kept[q];
        const T* old = good2[q];  // == w[q]
        if (!(trained & (1 << q))) {
          move(old, v, sizes[q]);
          continue;
        }
        // as XLA computes w + lr * (d / T): its two scalars folded, one fused
        // multiply-add, so that a run equals the trainer's XLA update bit for bit
        const T step = sc[1 + q] * inv_t;
        const T* dq = d[q];
        for (int64_t i = 0; i < sizes[q]; ++i) v[i] = std::fma(step, dq[i], old[i]);
        if (q == 1 && has_mask) {
          const T* mk = mask.typed_data() + k * n * n;
          for (int64_t i = 0; i < sizes[q]; ++i) v[i] = v[i] * mk[i];
        }
        if (q == 1 && dale) {
          const T* sg = sign.typed_data() + k * n;
          for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j) {
              const T z = sg[j] * v[i * n + j];
              v[i * n + j] = sg[j] * (z > T(0) ? z : T(0));
            }
        }
      }
    }
    verdict.decide(measured && trained_finite(kept, sizes, trained));
    for (int q = 0; q < 3; ++q) {  // good2 holds w when measured
      move(verdict.lowest ? good2[q] : best[q], best2[q], sizes[q]);
      if (!verdict.take) move(good2[q], kept[q], sizes[q]);
    }
    verdict.record(scal_out->typed_data() + 3 * k, ints_out->typed_data() + 3 * k);
  });
  return ffi::Error::Success();
}


#if defined(__AVX512F__)
constexpr int kRows = 8;
#else
constexpr int kRows = 4;
#endif

// RTRL over one trial with fixed weights, for the influence columns
// [c0, c1) of one network (columns: w_rec's (i, j) then w_in's (i, j), row
// major).  Every thread runs the (cheap, O(n^2)) forward pass itself, so the
// threads that share a network's columns never wait for each other.  Adds the
// columns' summed direction sum_t g[t]^T P[t] into dir (c1 - c0), and, with
// outputs, the readout direction and the outputs.
template <typename T>
void rtrl_columns(const T* Wi, const T* W, const T* Wo, const T* B, const T* h0, T tau,
                  const T* X, const T* Y, const T* M, int64_t steps, int64_t n, int64_t n_in,
                  int64_t n_out, bool readout, bool exact, int64_t c0, int64_t c1, T* dir,
                  T* d_out, T* out) {
  constexpr int64_t L = 64 / sizeof(T);
  const T a = T(1) / tau, c = T(1) - a;
  const int64_t width = (c1 - c0 + L - 1) / L * L, rows = (n + kRows - 1) / kRows * kRows;
  AlignedVector<T> P(rows * width), Pn(rows * width), J(rows * n), acc_dir(width), h(n), hn(n),
      u(n), ad(n), g(n), err(n_out), pre(width);
  std::vector<int64_t> unit(width, -1);  // the postsynaptic unit of each column
  for (int64_t col = c0; col < c1; ++col)
    unit[col - c0] = col < n * n ? col / n : (col - n * n) / n_in;
  std::copy(h0, h0 + n, h.begin());
  for (int64_t t = 1; t < steps; ++t) {
    const T* xt = X + t * n_in;
    for (int64_t i = 0; i < n; ++i) {
      T acc = T(0);
      for (int64_t j = 0; j < n; ++j) acc += W[i * n + j] * h[j];
      for (int64_t j = 0; j < n_in; ++j) acc += Wi[i * n_in + j] * xt[j];
      u[i] = acc;
    }
    for (int64_t i = 0; i < n; ++i) {
      const T th = tanh_(u[i]);
      hn[i] = h[i] + (th - h[i]) / tau;
      ad[i] = a * (exact ? T(1) - th * th : fprime(u[i], false));
    }
    for (int64_t o = 0; o < n_out; ++o) {
      T acc = T(0);
      for (int64_t i = 0; i < n; ++i) acc += Wo[o * n + i] * hn[i];
      if (out) out[(t - 1) * n_out + o] = acc;
      err[o] = M[t] * (Y[t * n_out + o] - acc);
    }
    for (int64_t i = 0; i < n; ++i) {
      T acc = T(0);
      for (int64_t o = 0; o < n_out; ++o)
        acc += (readout ? Wo[o * n + i] : B[i * n_out + o]) * err[o];
      g[i] = acc;
    }
    if (d_out)
      for (int64_t o = 0; o < n_out; ++o)
        for (int64_t i = 0; i < n; ++i) d_out[o * n + i] += err[o] * hn[i];
    // J = c I + diag(a f'(u)) w_rec (rows padded with zeros)
    for (int64_t r = 0; r < n; ++r)
      for (int64_t k = 0; k < n; ++k) J[r * n + k] = ad[r] * W[r * n + k] + (r == k ? c : T(0));
    // P <- J P, and the direction g^T (J P), kRows rows by one vector of columns at a time
    for (int64_t cb = 0; cb < width; cb += L) {
      Vec<T> d = load(acc_dir.data() + cb);
      for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
        Vec<T> acc[kRows] = {};
        for (int64_t k = 0; k < n; ++k) {
          const Vec<T> v = load(P.data() + k * width + cb);
          for (int rr = 0; rr < kRows; ++rr) acc[rr] += v * J[(r0 + rr) * n + k];
        }
        for (int rr = 0; rr < kRows; ++rr) {
          store(Pn.data() + (r0 + rr) * width + cb, acc[rr]);
          if (r0 + rr < n) d += acc[rr] * g[r0 + rr];
        }
      }
      store(acc_dir.data() + cb, d);
    }
    // the source a f'(u_i) pre_j of column (i, j), on row i
    for (int64_t col = c0; col < c1; ++col) {
      const int64_t q = col - c0, i = unit[q];
      const T s = ad[i] * (col < n * n ? h[col % n] : xt[(col - n * n) % n_in]);
      Pn[i * width + q] += s;
      acc_dir[q] += g[i] * s;
    }
    std::swap(P, Pn);
    std::swap(h, hn);
  }
  for (int64_t q = 0; q < c1 - c0; ++q) dir[q] += acc_dir[q];
}

template <ffi::DataType DT>
ffi::Error RtrlImpl(ffi::Buffer<DT> w_in, ffi::Buffer<DT> w_rec, ffi::Buffer<DT> w_out,
                    ffi::Buffer<DT> b, ffi::Buffer<DT> h0, ffi::Buffer<DT> tau_,
                    ffi::Buffer<DT> x, ffi::Buffer<DT> y, ffi::Buffer<DT> m,
                    ffi::ResultBuffer<DT> d_in, ffi::ResultBuffer<DT> d_rec,
                    ffi::ResultBuffer<DT> d_out, ffi::ResultBuffer<DT> outputs, int64_t readout,
                    int64_t exact, int64_t threads) {
  using T = ffi::NativeType<DT>;
  Trial tr;
  if (!trial_sizes(x, y, h0, tr))
    return ffi::Error::InvalidArgument("rtrl trial: x, y need (T, n) and h0 (n_rec,)");
  const int64_t steps = tr.steps, n_in = tr.n_in, n_out = tr.n_out, n = tr.n, nets = tr.nets;
  const int64_t S = steps - 1, cols = n * n + n * n_in;
  if (!trial_fits(tr, w_in, w_rec, w_out, b, tau_, x, y, m))
    return ffi::Error::InvalidArgument("rtrl trial: operand shapes do not agree");
  auto one = [&](int64_t k, int64_t parts) {
    // the network's columns in `parts` slices, one thread each (parts = 1: this thread)
    AlignedVector<T> dir(cols, T(0));
    T* DO = d_out->typed_data() + k * n_out * n;
    std::fill(DO, DO + n_out * n, T(0));
    auto slice = [&](int64_t part) {
      const int64_t per = (cols + parts - 1) / parts;
      const int64_t c0 = std::min(cols, part * per), c1 = std::min(cols, c0 + per);
      if (c0 >= c1) return;
      rtrl_columns<T>(w_in.typed_data() + k * n * n_in, w_rec.typed_data() + k * n * n,
                      w_out.typed_data() + k * n_out * n, b.typed_data() + k * n * n_out,
                      h0.typed_data() + k * n, tau_.typed_data()[k],
                      x.typed_data() + k * steps * n_in, y.typed_data() + k * steps * n_out,
                      m.typed_data() + k * steps, steps, n, n_in, n_out, readout != 0,
                      exact != 0, c0, c1, dir.data() + c0, part == 0 ? DO : nullptr,
                      part == 0 ? outputs->typed_data() + k * S * n_out : nullptr);
    };
    for_each_network(parts, parts, slice);
    T* DR = d_rec->typed_data() + k * n * n;
    T* DI = d_in->typed_data() + k * n * n_in;
    std::copy(dir.begin(), dir.begin() + n * n, DR);
    std::copy(dir.begin() + n * n, dir.end(), DI);
  };
  if (nets == 1) {
    one(0, std::max<int64_t>(1, threads));
  } else {
    for_each_network(nets, threads, [&](int64_t k) { one(k, 1); });
  }
  return ffi::Error::Success();
}

}  // namespace

#define RFLO_BIND_FORWARD(DT)                                                             \
  ffi::Ffi::Bind()                                                                        \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>()               \
      .Attr<int64_t>("threads")

XLA_FFI_DEFINE_HANDLER_SYMBOL(RfloForwardF32, ForwardImpl<ffi::F32>, RFLO_BIND_FORWARD(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(RfloForwardF64, ForwardImpl<ffi::F64>, RFLO_BIND_FORWARD(ffi::F64));

#define RFLO_BIND_OFFLINE(DT)                                                             \
  ffi::Ffi::Bind()                                                                        \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>()                                                             \
      .Attr<int64_t>("backprop").Attr<int64_t>("readout").Attr<int64_t>("exact")         \
      .Attr<int64_t>("threads")

XLA_FFI_DEFINE_HANDLER_SYMBOL(RfloOfflineF32, OfflineImpl<ffi::F32>, RFLO_BIND_OFFLINE(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(RfloOfflineF64, OfflineImpl<ffi::F64>, RFLO_BIND_OFFLINE(ffi::F64));

#define RFLO_BIND_STEP(DT)                                                                \
  ffi::Ffi::Bind()                                                                        \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<ffi::S32>>()         \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<ffi::S32>>().Ret<ffi::Buffer<DT>>()         \
      .Attr<int64_t>("online").Attr<int64_t>("backprop").Attr<int64_t>("readout")        \
      .Attr<int64_t>("exact").Attr<int64_t>("dale").Attr<int64_t>("has_mask")            \
      .Attr<int64_t>("trained").Attr<int64_t>("keep_outputs").Attr<int64_t>("threads")

XLA_FFI_DEFINE_HANDLER_SYMBOL(RfloStepF32, StepImpl<ffi::F32>, RFLO_BIND_STEP(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(RfloStepF64, StepImpl<ffi::F64>, RFLO_BIND_STEP(ffi::F64));

#define RFLO_BIND_RTRL(DT)                                                                \
  ffi::Ffi::Bind()                                                                        \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>()                                                             \
      .Attr<int64_t>("readout").Attr<int64_t>("exact").Attr<int64_t>("threads")

XLA_FFI_DEFINE_HANDLER_SYMBOL(RfloRtrlF32, RtrlImpl<ffi::F32>, RFLO_BIND_RTRL(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(RfloRtrlF64, RtrlImpl<ffi::F64>, RFLO_BIND_RTRL(ffi::F64));
