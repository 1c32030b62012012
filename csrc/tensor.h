/*
 * tensor.h: refcounted storage and strided views of float32 and int64
 * tensors, plus the shape helpers every kernel shares.
 *
 * This layer does not include lua.h. Functions that can fail return an
 * sae_status; callers (the Lua bindings) check shapes and arguments before
 * calling a kernel, so kernels assume valid input.
 */
#ifndef SAE_TENSOR_H
#define SAE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define SAE_MAX_DIMS 8

typedef enum { SAE_FLOAT32 = 0, SAE_INT64 = 1 } sae_dtype;

typedef enum {
  SAE_OK = 0,
  SAE_ENOMEM,     /* allocation failed */
  SAE_ESHAPE,     /* shapes do not match or do not broadcast */
  SAE_ERANGE,     /* size or index out of range */
  SAE_EIO,        /* read or write failed */
  SAE_EFORMAT     /* malformed file */
} sae_status;

/* A flat buffer shared by every view of it. `release` frees `data`
 * (free() when NULL); memory-mapped files set their own. */
typedef struct sae_storage {
  void *data;
  size_t nbytes;
  int refcount;
  void (*release)(struct sae_storage *s);
  void *context;        /* for `release`, e.g. the mapping base and length */
} sae_storage;

/* A view: element (i1, ..., in) lives at
 * data[offset + sum_k i_k * stride[k]] with 0-based i_k. Sizes of 0 are
 * allowed; a 0-dimensional tensor has one element. */
typedef struct sae_tensor {
  sae_storage *storage;
  sae_dtype dtype;
  int ndim;
  int64_t offset;                 /* in elements */
  int64_t size[SAE_MAX_DIMS];
  int64_t stride[SAE_MAX_DIMS];   /* in elements; 0 for expanded dims */
} sae_tensor;

size_t sae_dtype_size(sae_dtype dtype);
const char *sae_dtype_name(sae_dtype dtype);

/* Storage. storage_new returns NULL when out of memory or when the byte
 * count overflows. `zero` requests zero-filled memory. */
sae_storage *storage_new(size_t nbytes, int zero);
void storage_retain(sae_storage *s);
void storage_release(sae_storage *s);

/* Shapes. shape_numel returns -1 when the product overflows int64 or a
 * size is negative. */
int64_t shape_numel(int ndim, const int64_t *size);
void shape_contiguous_strides(int ndim, const int64_t *size, int64_t *stride);
int shape_equal(int na, const int64_t *a, int nb, const int64_t *b);
/* NumPy broadcasting of two shapes; SAE_ESHAPE when they do not broadcast. */
sae_status shape_broadcast(int na, const int64_t *a, int nb, const int64_t *b,
                           int *nout, int64_t *out);
/* Writes "[2, 3, 4]" into buf (always NUL-terminated). */
void shape_format(int ndim, const int64_t *size, char *buf, size_t buflen);

/* Tensors. tensor_alloc gives `t` a fresh contiguous storage of its own.
 * tensor_view makes `dst` a view of `src` (retaining the storage). */
sae_status tensor_alloc(sae_tensor *t, sae_dtype dtype, int ndim,
                        const int64_t *size, int zero);
void tensor_view(sae_tensor *dst, const sae_tensor *src);
void tensor_free(sae_tensor *t);   /* releases the storage, if any */
int64_t tensor_numel(const sae_tensor *t);
int tensor_is_contiguous(const sae_tensor *t);
/* Pointers to the first element of the view. */
float *tensor_f32(const sae_tensor *t);
int64_t *tensor_i64(const sae_tensor *t);

/* Strides of `t` seen as shape (ndim, size) under broadcasting: leading
 * and size-1 dims that are expanded get stride 0. The shapes must
 * broadcast (checked by the caller). */
void tensor_broadcast_strides(const sae_tensor *t, int ndim,
                              const int64_t *size, int64_t *stride);

/* Copies src into dst elementwise, converting dtype if they differ.
 * Shapes must match exactly (same numel and dims). */
void tensor_copy(sae_tensor *dst, const sae_tensor *src);

/* --------------------------------------------------------------------
 * Strided iteration over up to 4 operands that share one shape (after
 * broadcasting). Dims that can be merged are merged, so a contiguous
 * tensor becomes a single run. Use:
 *
 *   sae_iter it;
 *   iter_init(&it, ndim, size, 2, strides);   // strides[k][d], elements
 *   do {
 *     for (int64_t i = 0; i < it.inner; i++) ... it.ptr[k] + i*it.step[k]
 *   } while (iter_next(&it));
 *
 * `ptr[k]` are element offsets relative to each operand's first element.
 */
#define SAE_ITER_MAX_OPS 4
typedef struct sae_iter {
  int nops, ndim;                         /* ndim after merging, >= 1 */
  int64_t size[SAE_MAX_DIMS];
  int64_t stride[SAE_ITER_MAX_OPS][SAE_MAX_DIMS];
  int64_t index[SAE_MAX_DIMS];
  int64_t ptr[SAE_ITER_MAX_OPS];          /* start offset of current run */
  int64_t inner;                          /* run length (innermost size) */
  int64_t step[SAE_ITER_MAX_OPS];         /* innermost stride per operand */
  int empty;                              /* some size is 0 */
} sae_iter;

void iter_init(sae_iter *it, int ndim, const int64_t *size, int nops,
               const int64_t *const *strides);
/* Advances to the next run; returns 0 when done. */
int iter_next(sae_iter *it);
/* Positions the iterator at flat run number `run` (for splitting work
 * across threads); runs are numbered 0 .. iter_runs(it) - 1. */
int64_t iter_runs(const sae_iter *it);
void iter_seek(sae_iter *it, int64_t run);

#endif
