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
//
// The arithmetic is in the headers beside this file: vectors.h (units in
// 64-byte vectors, the column passes), online.h and offline.h (one network's
// trial), guard.h (the divergence guard), rtrl.h (RTRL's influence columns);
// this file holds the custom calls that run them over an ensemble's networks.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "guard.h"
#include "offline.h"
#include "online.h"
#include "rtrl.h"
#include "vectors.h"
#include "workers.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

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
      combine(wt.data(), np, h.data(), n, u.data(), false, t & 1);
      for (int64_t i = 0; i < n; ++i) U[t * n + i] = u[i] + Dr[t * n + i];
      T* ut = U + t * n;
      T* ht = Hs + t * n;
      leak_step(ut, h.data(), ht, n, tau);
      std::copy(ht, ht + n, h.begin());
    }
  });
  return ffi::Error::Success();
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
