// One network's offline trial with fixed weights: the forward pass, the
// errors, the credit backward in time (local traces or the exact adjoint) and
// the summed direction as sums of outer products.
// (leaky_tanh.cc includes this file; rflo.kernels builds it with the kernel,
// and a change here rebuilds it.)
#pragma once

#include <algorithm>
#include <cstdint>

#include "vectors.h"

namespace {

// One network's offline trial with fixed weights (local traces, or the exact
// adjoint with backprop): the summed direction DR (n, n), DI (n, n_in), DO
// (n_out, n), row-major, the outputs out (S, n_out), and the trial's summed
// step loss sum_s 0.5 m[s] |y*[s] - y[s]|^2 (returned).
template <typename T>
RFLO_ALONE T offline_network(const T* W, const T* Wi, const T* Wo, const T* B, const T* h0,
                             T tau, const T* X, const T* Y, const T* M, int64_t steps,
                             int64_t n_in, int64_t n_out, int64_t n, bool backprop,
                             bool readout, bool exact, T* DR, T* DI, T* DO, T* out) {
  const int64_t np = padded<T>(n), S = steps - 1;
  // presynaptic-major padded copies; H row s is h[s] (row 0: h0), D, V rows are steps 1..T-1
  // the copies of the matrices zeroed (their padded units stay zero); the
  // per-step rows unset: every entry is written before it is read (H's row 0
  // is zeroed below, the forward loop writes the others whole)
  AlignedVector<T> wt(n * np), wr(backprop ? n * np : 0), wit(n_in * np), fb(n_out * np);
  UnsetVector<T> H((S + 1) * np), D(S * np), V(S * np), E(S * n_out), run(np), back(np),
      dt(n * np), dit(n_in * np);
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

  // forward, with u kept per step in D's rows, then a f'(u) (leak_step)
  for (int64_t s = 0; s < S; ++s) {
    const T* hp = H.data() + s * np;
    const T* xt = X + (s + 1) * n_in;
    T* __restrict us = D.data() + s * np;
    combine(wt.data(), np, hp, n, us, false, s & 1);
    combine(wit.data(), np, xt, n_in, us, true);
    T* __restrict hn = H.data() + (s + 1) * np;
    leak_step(us, hp, hn, np, tau);
    for (int64_t i = n; i < np; ++i) hn[i] = T(0);  // padded units stay silent
  }
  derivatives(D.data(), S * np, a, exact);
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
      combine(wr.data(), np, vs, n, back.data(), false, s & 1);
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

}  // namespace
