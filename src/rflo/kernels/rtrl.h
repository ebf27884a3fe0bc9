// RTRL over one trial with fixed weights, for a range of a network's
// influence columns (the offline RTRL kernel splits them over threads).
// (leaky_tanh.cc includes this file; rflo.kernels builds it with the kernel,
// and a change here rebuilds it.)
#pragma once

#include <algorithm>
#include <cstdint>

#include "vectors.h"

namespace {

constexpr int kRows = kRegisters / 4;  // 8 or 4 (vectors.h)

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
    neuron_step(u.data(), h.data(), hn.data(), ad.data(), n, tau, a, exact);
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

}  // namespace
