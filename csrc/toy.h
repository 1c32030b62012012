/*
 * toy.h: the toy models of superposition (Elhage et al., "Toy Models of
 * Superposition", Anthropic 2022), n_instances independent models
 * trained side by side. Shapes: B batch, I instances, F features,
 * H hidden.
 *
 *   linear:       h = W x,          x' = ReLU(W^T h + b_final)
 *   neuron:       h = ReLU(W x),    x' = ReLU(W^T h + b_final)
 *   computation:  h = ReLU(W1 x),   x' = ReLU(W2 h + b_final), target |x|
 *
 * with W, W1 [I,H,F], W2 [I,F,H], b_final [I,F]. The loss is the sum over
 * instances of the mean over batch and features of
 * importance * (x' - target)^2.
 */
#ifndef SAE_TOY_H
#define SAE_TOY_H

#include <stdint.h>

#include "random.h"
#include "tensor.h"

typedef enum { TOY_LINEAR = 0, TOY_NEURON = 1, TOY_COMPUTATION = 2 } toy_kind;

typedef struct toy_model {
  toy_kind kind;
  int64_t n_instances, n_features, n_hidden;
  int64_t n_correlated_pairs, n_anticorrelated_pairs;
  /* params: W (or W1 then W2) then b_final; grads: the same layout.
   * buffers: feature_probability [I,F] then importance [I,F]. */
  sae_storage *params, *grads, *buffers;
  int64_t n_params;
  float *W1, *W2, *b_final;      /* W2 is NULL unless kind is computation */
  float *dW1, *dW2, *db_final;
  float *feature_probability, *importance;
  sae_generator generator;
  /* Per feature [I,F], refilled from feature_probability for each batch:
   * presence threshold on 32 random bits and their scale to [0, 1). */
  uint64_t *draw_threshold;
  float *draw_scale;
  /* Scratch for backward, grown on demand outside parallel regions. */
  float *scratch;
  int64_t scratch_floats;
  int32_t *index_scratch;
  int64_t index_scratch_count;
} toy_model;

/* Allocates the storages and sets the views; parameters are zero and the
 * probability and importance buffers are 1. Returns SAE_ENOMEM on
 * failure (toy_free is still safe to call). */
sae_status toy_init(toy_model *m, toy_kind kind, int64_t n_instances,
                    int64_t n_features, int64_t n_hidden, uint64_t seed);
void toy_free(toy_model *m);

/* Xavier-normal weights as torch.nn.init.xavier_normal_ gives a 3-D
 * tensor [a, b, c] (fan_in = b * c, fan_out = a * c) and zero b_final,
 * drawn from the model's generator. */
void toy_reset_parameters(toy_model *m);

/* out [B,I,F]: correlated pairs first, then anticorrelated pairs, then
 * independent features, with values uniform in [0, 1) (in [-1, 1) for
 * the computation kind) when present. Draws from the model's generator. */
void toy_generate_batch(toy_model *m, float *out, int64_t batch);

/* Forward pass over contiguous x [B,I,F]. Writes hidden [B,I,H] and out
 * [B,I,F] when not NULL. */
void toy_forward(const toy_model *m, const float *x, int64_t batch,
                 float *hidden, float *out);

/* Loss of out against x (both [B,I,F], contiguous); writes the
 * per-instance losses into inst_loss [I] and returns their sum. */
double toy_loss(const toy_model *m, const float *out, const float *x,
                int64_t batch, double *inst_loss);

/* Forward, loss and gradients in one pass over x [B,I,F]; the gradients
 * are added to the grads storage (call zero_grad first to overwrite).
 * Writes the per-instance losses into inst_loss [I] (may be NULL) and
 * returns their sum. Returns a negative value when scratch memory could
 * not be allocated. */
double toy_backward(toy_model *m, const float *x, int64_t batch,
                    double *inst_loss);

/* toy_backward on a fresh batch from the model's generator, drawn inside
 * the pass instead of stored: the same loss and gradients as
 * toy_backward(m, x) with x from toy_generate_batch. */
double toy_train_backward(toy_model *m, int64_t batch, double *inst_loss);

#endif
