// One network's online trial (the loop described at the top of leaky_tanh.cc):
// the traces and weights updated at every step, column by column.
// (leaky_tanh.cc includes this file; rflo.kernels builds it with the kernel,
// and a change here rebuilds it.)
#pragma once

#include <algorithm>
#include <cstdint>

#include "vectors.h"

namespace {

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
RFLO_ALONE T online_network(const T* wi0, const T* wr0, const T* Wo0, const T* B,
                            const T* h0, const T* M, const T* sg, const T* s, const T* X,
                            const T* Y, const T* Ms, int64_t steps, int64_t n_in,
                            int64_t n_out, int64_t n, bool readout, bool exact, bool dale,
                            bool has_mask, int64_t trained, bool keep_outputs, T* wi1,
                            T* wr1, T* Wo, T* out) {
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

}  // namespace
