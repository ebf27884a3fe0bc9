// The divergence guard's decisions for one network (rflo.guard.guard_step),
// and the test that its trained matrices are finite.
// (leaky_tanh.cc includes this file; rflo.kernels builds it with the kernel,
// and a change here rebuilds it.)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "vectors.h"

namespace {

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

}  // namespace
