// Whole-sequence LSTM and GRU layers for float32 on the CPU, forward and backward.
//
// Why: nn.LSTM/nn.GRU on small windows (batch 32, 30 steps, 50 units) spend most of their time
// outside arithmetic. Here each step is one small product with weights packed once per call (an
// LSTM multiplies [x_t, h_t-1] by [W_ih, W_hh]; a GRU its input and its state separately) plus
// one fused loop over the gates; the backward pass needs no transcendental functions, and the
// weight gradients of all time steps are one matrix product each. Rows of the batch are
// independent, so chunks of rows run their whole recurrence on separate threads.
//
// Layout: buffers are time-major (T, B, ...), so the rows of one step are contiguous. Gate order
// and equations are PyTorch's (LSTM: i, f, g, o; GRU: r, z, n), so nn.LSTM/nn.GRU weights load
// unchanged.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/ops/mm_cpu_dispatch.h>
#include <torch/extension.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// AVX-512 and AVX2+FMA copies of each kernel, chosen when the library loads; SSE2 elsewhere
#define KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KERNEL
#endif

namespace {

// exp(x) for |x| <= 60 as 2^k e^r, |r| <= ln2/2, with Cephes' expf polynomial (about 1 ulp).
// Written out so that gcc vectorises the gate loops inline instead of calling libm per lane.
inline float exp_small(float x) {
  const float rounded = x * 1.44269504f + (x >= 0.f ? .5f : -.5f);  // x / ln2, to nearest
  const float k = static_cast<float>(static_cast<int32_t>(rounded));
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;  // ln2 split in two for precision
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(k) + 127) << 23;  // 2^k
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// the inputs are clamped so that exp_small never leaves its range
inline float sigmoid(float x) {
  x = x < -60.f ? -60.f : (x > 60.f ? 60.f : x);
  return 1.f / (1.f + exp_small(-x));
}

inline float tanh_f(float x) { return 2.f * sigmoid(2.f * x) - 1.f; }

// Rows [0, n) of one LSTM step: activates the gates in place and writes c, tanh(c) and h
// (h into the next step's [x, h] rows, whose stride is h_stride, and into the output).
KERNEL void lstm_gates_forward(int64_t n, int64_t H, float* __restrict g,
                                  const float* __restrict c_prev, float* __restrict c,
                                  float* __restrict tc, float* __restrict h, int64_t h_stride,
                                  float* __restrict out, int64_t out_stride) {
  for (int64_t b = 0; b < n; ++b) {
    float* gi = g + b * 4 * H;
    float* gf = gi + H;
    float* gg = gi + 2 * H;
    float* go = gi + 3 * H;
    const float* cp = c_prev + b * H;
    float* cb = c + b * H;
    float* tcb = tc + b * H;
    float* hb = h + b * h_stride;
    float* ob = out + b * out_stride;
    for (int64_t j = 0; j < H; ++j) {
      const float i = sigmoid(gi[j]);
      const float f = sigmoid(gf[j]);
      const float gv = tanh_f(gg[j]);
      const float o = sigmoid(go[j]);
      const float cv = f * cp[j] + i * gv;
      const float t = tanh_f(cv);
      gi[j] = i;
      gf[j] = f;
      gg[j] = gv;
      go[j] = o;
      cb[j] = cv;
      tcb[j] = t;
      hb[j] = o * t;
      ob[j] = o * t;
    }
  }
}

// Rows [0, n) of one LSTM step backwards: overwrites the saved gates with the gradient of the
// pre-activations and carries dc to the previous step. dL/dh_t is the output's gradient plus
// what flows back from step t+1 (carry, stride carry_stride; null at the last step).
KERNEL void lstm_gates_backward(int64_t n, int64_t H, float* __restrict g,
                                   const float* __restrict c_prev, const float* __restrict tc,
                                   const float* __restrict dout, int64_t dout_stride,
                                   const float* __restrict carry, int64_t carry_stride,
                                   float* __restrict dc) {
  for (int64_t b = 0; b < n; ++b) {
    float* gi = g + b * 4 * H;
    float* gf = gi + H;
    float* gg = gi + 2 * H;
    float* go = gi + 3 * H;
    const float* cp = c_prev + b * H;
    const float* tcb = tc + b * H;
    const float* db = dout + b * dout_stride;
    const float* cr = carry + b * carry_stride;
    float* dcb = dc + b * H;
    for (int64_t j = 0; j < H; ++j) {
      const float i = gi[j], f = gf[j], gv = gg[j], o = go[j], t = tcb[j];
      const float dh = db[j] + cr[j];
      const float dcv = dcb[j] + dh * o * (1.f - t * t);
      gi[j] = dcv * gv * i * (1.f - i);
      gf[j] = dcv * cp[j] * f * (1.f - f);
      gg[j] = dcv * i * (1.f - gv * gv);
      go[j] = dh * t * o * (1.f - o);
      dcb[j] = dcv * f;
    }
  }
}

// Rows [0, n) of one GRU step. gi: input projections (r, z, n) with b_ih; gh: h W_hh^T + b_hh,
// whose n part is kept for the backward pass. Writes r, z, n activated into gi.
KERNEL void gru_gates_forward(int64_t n, int64_t H, float* __restrict gi,
                                 const float* __restrict gh, const float* __restrict h_prev,
                                 float* __restrict h, float* __restrict out, int64_t out_stride) {
  for (int64_t b = 0; b < n; ++b) {
    float* gr = gi + b * 3 * H;
    float* gz = gr + H;
    float* gn = gr + 2 * H;
    const float* hr = gh + b * 3 * H;
    const float* hz = hr + H;
    const float* hn = hr + 2 * H;
    const float* hp = h_prev + b * H;
    float* hb = h + b * H;
    float* ob = out + b * out_stride;
    for (int64_t j = 0; j < H; ++j) {
      const float r = sigmoid(gr[j] + hr[j]);
      const float z = sigmoid(gz[j] + hz[j]);
      const float nv = tanh_f(gn[j] + r * hn[j]);
      const float hv = (1.f - z) * nv + z * hp[j];
      gr[j] = r;
      gz[j] = z;
      gn[j] = nv;
      hb[j] = hv;
      ob[j] = hv;
    }
  }
}

// Rows [0, n) of one GRU step backwards. On exit gi holds the gradient of the input
// pre-activations and gh that of h W_hh^T + b_hh; dh_prev (null at the first step) gets the
// part of dL/dh_{t-1} that does not pass through W_hh.
KERNEL void gru_gates_backward(int64_t n, int64_t H, float* __restrict gi,
                               float* __restrict gh, const float* __restrict h_prev,
                               const float* __restrict dh, float* __restrict dh_prev) {
  for (int64_t b = 0; b < n; ++b) {
    float* gr = gi + b * 3 * H;
    float* gz = gr + H;
    float* gn = gr + 2 * H;
    float* hr = gh + b * 3 * H;
    float* hz = hr + H;
    float* hn = hr + 2 * H;
    const float* hp = h_prev + b * H;
    const float* dhb = dh + b * H;
    if (dh_prev) {
      float* dp = dh_prev + b * H;
      for (int64_t j = 0; j < H; ++j) dp[j] += dhb[j] * gz[j];
    }
    for (int64_t j = 0; j < H; ++j) {
      const float r = gr[j], z = gz[j], nv = gn[j], d = dhb[j];
      const float dn = d * (1.f - z) * (1.f - nv * nv);
      const float dz = d * (hp[j] - nv) * z * (1.f - z);
      const float dr = dn * hn[j] * r * (1.f - r);
      gr[j] = dr;
      gz[j] = dz;
      gn[j] = dn;
      hr[j] = dr;
      hz[j] = dz;
      hn[j] = dn * r;
    }
  }
}

// ------------------------------------------------------------------ small matrix products
// Per step the recurrence multiplies a few rows by the same weights; a general BLAS call
// repacks the weights every time, which at 16-32 rows costs as much as the arithmetic.
// Here the weights are packed once per call of the layer and a register-blocked kernel
// (4 rows x 16 columns held in eight 8-lane accumulators) streams through them.
typedef float v8 __attribute__((vector_size(32)));
constexpr int64_t kTile = 16;

inline int64_t padded(int64_t n) { return (n + kTile - 1) / kTile * kTile; }

inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// C[r, j] (+)= sum_k A[r, k] P[k, j] (+ bias[j]) for rows r < R and columns j0 <= j < j0 + 16
template <int R>
inline __attribute__((always_inline)) void gemm_tile(int64_t K, const float* A, int64_t lda,
                                                     const float* P, int64_t ldp, int64_t j0,
                                                     int64_t width, float* C, int64_t ldc,
                                                     const float* bias, bool accumulate) {
  v8 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = v8{};
  const float* p = P + j0;
  for (int64_t k = 0; k < K; ++k, p += ldp) {
    const v8 p0 = load8(p), p1 = load8(p + 8);
    for (int r = 0; r < R; ++r) {
      const float a = A[r * lda + k];
      acc[r][0] += a * p0;
      acc[r][1] += a * p1;
    }
  }
  for (int r = 0; r < R; ++r) {
    float* c = C + r * ldc + j0;
    if (width == kTile) {
      v8 c0 = acc[r][0], c1 = acc[r][1];
      if (bias) {
        c0 += load8(bias + j0);
        c1 += load8(bias + j0 + 8);
      }
      if (accumulate) {
        c0 += load8(c);
        c1 += load8(c + 8);
      }
      store8(c, c0);
      store8(c + 8, c1);
    } else {
      float tmp[kTile];
      store8(tmp, acc[r][0]);
      store8(tmp + 8, acc[r][1]);
      for (int64_t j = 0; j < width; ++j) {
        c[j] = tmp[j] + (bias ? bias[j0 + j] : 0.f) + (accumulate ? c[j] : 0.f);
      }
    }
  }
}

// C (n x N, row stride ldc) (+)= A (n x K, row stride lda) P (+ bias), where P is K x N
// packed with row stride padded(N) and zeros beyond N; bias (padded(N) long) may be null.
KERNEL void gemm_packed(int64_t n, int64_t K, int64_t N, const float* __restrict A, int64_t lda,
                        const float* __restrict P, float* __restrict C, int64_t ldc,
                        const float* __restrict bias, bool accumulate) {
  const int64_t ldp = padded(N);
  for (int64_t j0 = 0; j0 < N; j0 += kTile) {
    const int64_t width = std::min(kTile, N - j0);
    int64_t r = 0;
    for (; r + 4 <= n; r += 4) {
      gemm_tile<4>(K, A + r * lda, lda, P, ldp, j0, width, C + r * ldc, ldc, bias, accumulate);
    }
    for (; r < n; ++r) {
      gemm_tile<1>(K, A + r * lda, lda, P, ldp, j0, width, C + r * ldc, ldc, bias, accumulate);
    }
  }
}

// P (K x padded(N)) with P[k, j] = w[j, k]: w transposed for gemm_packed
at::Tensor pack_transposed(const at::Tensor& w) {
  at::Tensor p = at::zeros({w.size(1), padded(w.size(0))}, w.options());
  p.narrow(1, 0, w.size(0)).copy_(w.t());
  return p;
}

// P (K x padded(N)) with P[k, j] = w[k, j]; a vector becomes one padded row
at::Tensor pack(const at::Tensor& w) {
  const at::Tensor m = w.dim() == 1 ? w.unsqueeze(0) : w;
  at::Tensor p = at::zeros({m.size(0), padded(m.size(1))}, w.options());
  p.narrow(1, 0, m.size(1)).copy_(m);
  return p;
}

void check_inputs(const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh,
                  int64_t gates) {
  TORCH_CHECK(x.dim() == 3, "windows must be (batch, time, features)");
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat, "float32 CPU tensors only");
  TORCH_CHECK(w_hh.size(0) == gates * w_hh.size(1), "recurrent weights have the wrong shape");
  TORCH_CHECK(w_ih.size(1) == x.size(2), "input weights do not match the number of features");
}

// rows per thread: below this a thread costs more than it saves
constexpr int64_t kMinRows = 8;

// ---------------------------------------------------------------------------------- LSTM
// Each step is one product [x_t, h_{t-1}] [W_ih, W_hh]^T: the input projection rides along
// with the recurrent one, and backwards one product gives both dx_t and dh_{t-1}.
//
// x (B, T, F) -> out (B, T, H), h_n, c_n, and what the backward pass needs.
// keep: whether the backward pass will run; without it the gates and cell states of one step
// are overwritten by the next, so inference touches a few kilobytes per row, not megabytes.
std::vector<at::Tensor> lstm_forward(const at::Tensor& x_in, const at::Tensor& w_ih,
                                     const at::Tensor& w_hh, const at::Tensor& b_ih,
                                     const at::Tensor& b_hh, bool keep) {
  check_inputs(x_in, w_ih, w_hh, 4);
  const int64_t B = x_in.size(0), T = x_in.size(1), F = x_in.size(2), H = w_hh.size(1);
  const int64_t K = F + H;
  const at::Tensor w_packed = pack_transposed(at::cat({w_ih, w_hh}, 1));  // (F + H, 4H)
  const at::Tensor bias = pack(b_ih + b_hh);
  // xh[t] holds the rows [x_t, h_{t-1}]; xh[T] only h_T
  at::Tensor xh = at::empty({T + 1, B, K}, x_in.options());
  xh.narrow(2, 0, F).narrow(0, 0, T).copy_(x_in.transpose(0, 1));
  xh.narrow(2, 0, F)[T].zero_();
  xh[0].narrow(1, F, H).zero_();
  const int64_t kept = keep ? T : 1;  // steps whose gates stay in memory
  at::Tensor gates = at::empty({kept, B, 4 * H}, x_in.options());
  at::Tensor cs = at::empty({keep ? T + 1 : 2, B, H}, x_in.options());  // else c_{t-1}, c_t
  cs[0].zero_();
  at::Tensor tcs = at::empty({kept, B, H}, x_in.options());
  at::Tensor out = at::empty({B, T, H}, x_in.options());
  float* xhp = xh.data_ptr<float>();
  float* gp = gates.data_ptr<float>();
  float* c = cs.data_ptr<float>();
  float* tc = tcs.data_ptr<float>();
  float* o = out.data_ptr<float>();

  at::parallel_for(0, B, kMinRows, [&](int64_t b0, int64_t b1) {
    const int64_t n = b1 - b0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t step = keep ? t : 0;
      const int64_t c_prev = keep ? t : t % 2, c_next = keep ? t + 1 : (t + 1) % 2;
      float* g = gp + (step * B + b0) * 4 * H;
      gemm_packed(n, K, 4 * H, xhp + (t * B + b0) * K, K, w_packed.data_ptr<float>(), g, 4 * H,
                  bias.data_ptr<float>(), false);
      lstm_gates_forward(n, H, g, c + (c_prev * B + b0) * H, c + (c_next * B + b0) * H,
                         tc + (step * B + b0) * H, xhp + ((t + 1) * B + b0) * K + F, K,
                         o + (b0 * T + t) * H, T * H);
    }
  });
  // final states of their own, not views of the buffers kept for the backward pass
  at::Tensor h_n = xh[T].narrow(1, F, H).clone();
  return {out, h_n, cs[keep ? T : T % 2].clone(), xh, gates, cs, tcs};
}

// Gradients of x, w_ih, w_hh and the bias (the same for b_ih and b_hh).
std::vector<at::Tensor> lstm_backward(const at::Tensor& grad_out, const at::Tensor& grad_hn,
                                      const at::Tensor& grad_cn, const at::Tensor& w_ih,
                                      const at::Tensor& w_hh, const at::Tensor& xh,
                                      at::Tensor gates, const at::Tensor& cs,
                                      const at::Tensor& tcs, bool need_dx) {
  const int64_t T = gates.size(0), B = gates.size(1), H = w_hh.size(1), F = w_ih.size(1);
  const int64_t K = F + H;
  const at::Tensor w_packed = pack(at::cat({w_ih, w_hh}, 1));  // (4H, F + H)
  // what flows into h_T from outside the sequence output: h_n's gradient
  at::Tensor dout = grad_out.contiguous();
  if (grad_hn.defined()) {
    dout = dout.clone();
    dout.select(1, T - 1).add_(grad_hn);
  }
  at::Tensor dc = grad_cn.defined() ? grad_cn.contiguous().clone()
                                    : at::zeros({B, H}, dout.options());
  // dxh[t] = dgates_t [W_ih, W_hh] = [dx_t, carry into h_{t-1}]
  at::Tensor dxh = at::empty({T, B, K}, dout.options());
  const at::Tensor zeros = at::zeros({B, H}, dout.options());
  const float* c = cs.data_ptr<float>();
  const float* tc = tcs.data_ptr<float>();
  const float* d = dout.data_ptr<float>();
  float* dxhp = dxh.data_ptr<float>();
  float* gp = gates.data_ptr<float>();

  at::parallel_for(0, B, kMinRows, [&](int64_t b0, int64_t b1) {
    const int64_t n = b1 - b0;
    for (int64_t t = T - 1; t >= 0; --t) {
      float* g = gp + (t * B + b0) * 4 * H;
      const int64_t row = (t * B + b0) * H;
      const bool last = t == T - 1;
      const float* carry = last ? zeros.data_ptr<float>() + b0 * H
                                : dxhp + ((t + 1) * B + b0) * K + F;
      lstm_gates_backward(n, H, g, c + row, tc + row, d + (b0 * T + t) * H, T * H, carry,
                          last ? H : K, dc.data_ptr<float>() + b0 * H);
      gemm_packed(n, 4 * H, K, g, 4 * H, w_packed.data_ptr<float>(), dxhp + (t * B + b0) * K, K,
                  nullptr, false);
    }
  });
  const at::Tensor dg = gates.view({T * B, 4 * H});
  const at::Tensor d_w = at::cpu::mm(dg.t(), xh.narrow(0, 0, T).reshape({T * B, K}));
  at::Tensor dx;
  if (need_dx) dx = dxh.narrow(2, 0, F).transpose(0, 1).contiguous();
  return {dx, d_w.narrow(1, 0, F).contiguous(), d_w.narrow(1, F, H).contiguous(), dg.sum(0)};
}

// ----------------------------------------------------------------------------------- GRU
// keep: as for lstm_forward; without it h W_hh^T of one step is overwritten by the next
std::vector<at::Tensor> gru_forward(const at::Tensor& x_in, const at::Tensor& w_ih,
                                    const at::Tensor& w_hh, const at::Tensor& b_ih,
                                    const at::Tensor& b_hh, bool keep) {
  check_inputs(x_in, w_ih, w_hh, 3);
  const int64_t B = x_in.size(0), T = x_in.size(1), F = x_in.size(2), H = w_hh.size(1);
  const at::Tensor x_tm = x_in.transpose(0, 1).contiguous();
  // per step: x W_ih^T + b_ih (activated in place) and h W_hh^T + b_hh, on the step's threads
  at::Tensor gi = at::empty({keep ? T : 1, B, 3 * H}, x_in.options());
  at::Tensor gh = at::empty({keep ? T : 1, B, 3 * H}, x_in.options());
  at::Tensor hs = at::zeros({T + 1, B, H}, x_in.options());
  at::Tensor out = at::empty({B, T, H}, x_in.options());
  const at::Tensor wi_packed = pack_transposed(w_ih);  // (F, 3H)
  const at::Tensor wh_packed = pack_transposed(w_hh);  // (H, 3H)
  const at::Tensor bias_i = pack(b_ih), bias_h = pack(b_hh);
  const float* x = x_tm.data_ptr<float>();
  float* h = hs.data_ptr<float>();
  float* o = out.data_ptr<float>();
  float* gip = gi.data_ptr<float>();
  float* ghp = gh.data_ptr<float>();

  at::parallel_for(0, B, kMinRows, [&](int64_t b0, int64_t b1) {
    const int64_t n = b1 - b0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t step = ((keep ? t : 0) * B + b0) * 3 * H;
      const int64_t row = (t * B + b0) * H;
      gemm_packed(n, F, 3 * H, x + (t * B + b0) * F, F, wi_packed.data_ptr<float>(), gip + step,
                  3 * H, bias_i.data_ptr<float>(), false);
      gemm_packed(n, H, 3 * H, h + row, H, wh_packed.data_ptr<float>(), ghp + step, 3 * H,
                  bias_h.data_ptr<float>(), false);
      gru_gates_forward(n, H, gip + step, ghp + step, h + row, h + row + B * H,
                        o + (b0 * T + t) * H, T * H);
    }
  });
  return {out, hs[T].clone(), x_tm, gi, gh, hs};
}

std::vector<at::Tensor> gru_backward(const at::Tensor& grad_out, const at::Tensor& grad_hn,
                                     const at::Tensor& w_ih, const at::Tensor& w_hh,
                                     const at::Tensor& x_tm, at::Tensor gi, at::Tensor gh,
                                     const at::Tensor& hs, bool need_dx) {
  const int64_t T = x_tm.size(0), B = x_tm.size(1), F = x_tm.size(2), H = w_hh.size(1);
  // a copy always: dh is written to, and grad_out may be shared with other parts of the graph
  at::Tensor dh = at::empty({T, B, H}, grad_out.options());
  dh.copy_(grad_out.transpose(0, 1));
  if (grad_hn.defined()) dh[T - 1].add_(grad_hn);

  const float* h = hs.data_ptr<float>();
  float* d = dh.data_ptr<float>();
  float* ghp = gh.data_ptr<float>();
  const at::Tensor w_packed = pack(w_hh);  // (3H, H)

  at::parallel_for(0, B, kMinRows, [&](int64_t b0, int64_t b1) {
    const int64_t n = b1 - b0;
    for (int64_t t = T - 1; t >= 0; --t) {
      float* h_part = ghp + (t * B + b0) * 3 * H;
      const int64_t row = (t * B + b0) * H;
      gru_gates_backward(n, H, gi.data_ptr<float>() + 3 * row, h_part, h + row, d + row,
                         t > 0 ? d + row - B * H : nullptr);
      if (t > 0) {  // dL/dh_{t-1} += d(h W_hh^T) W_hh
        gemm_packed(n, 3 * H, H, h_part, 3 * H, w_packed.data_ptr<float>(), d + row - B * H, H,
                    nullptr, true);
      }
    }
  });
  const at::Tensor dgi = gi.view({T * B, 3 * H});
  const at::Tensor dgh = gh.view({T * B, 3 * H});
  at::Tensor d_w_hh = at::cpu::mm(dgh.t(), hs.narrow(0, 0, T).reshape({T * B, H}));
  at::Tensor d_w_ih = at::cpu::mm(dgi.t(), x_tm.view({T * B, F}));
  at::Tensor dx;
  if (need_dx) dx = at::cpu::mm(dgi, w_ih).view({T, B, F}).transpose(0, 1).contiguous();
  return {dx, d_w_ih, d_w_hh, dgi.sum(0), dgh.sum(0)};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstm_forward, "LSTM layer forward over a whole window");
  m.def("lstm_backward", &lstm_backward, "LSTM layer backward over a whole window");
  m.def("gru_forward", &gru_forward, "GRU layer forward over a whole window");
  m.def("gru_backward", &gru_backward, "GRU layer backward over a whole window");
}
