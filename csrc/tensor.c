/*
 * tensor.c: storage, shapes, views and strided iteration (see tensor.h).
 */
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


size_t sae_dtype_size(sae_dtype dtype) {
  return dtype == SAE_INT64 ? sizeof(int64_t) : sizeof(float);
}


const char *sae_dtype_name(sae_dtype dtype) {
  return dtype == SAE_INT64 ? "int64" : "float32";
}


/* ---------------------------------------------------------------- storage */

sae_storage *storage_new(size_t nbytes, int zero) {
  sae_storage *s = malloc(sizeof *s);
  if (s == NULL) return NULL;
  /* 64-byte alignment suits AVX-512 loads. C11 aligned_alloc requires the
   * size to be a multiple of the alignment, so it is rounded up. */
  size_t alloc = (nbytes + 63) & ~(size_t)63;
  if (alloc < nbytes) { free(s); return NULL; }
  if (alloc == 0) alloc = 64;
  s->data = aligned_alloc(64, alloc);
  if (s->data == NULL) { free(s); return NULL; }
  if (zero) memset(s->data, 0, alloc);
  s->nbytes = nbytes;
  s->refcount = 1;
  s->release = NULL;
  s->context = NULL;
  return s;
}


void storage_retain(sae_storage *s) {
  s->refcount++;
}


void storage_release(sae_storage *s) {
  if (s == NULL || --s->refcount > 0) return;
  if (s->release != NULL) s->release(s);
  else free(s->data);
  free(s);
}


/* ----------------------------------------------------------------- shapes */

int64_t shape_numel(int ndim, const int64_t *size) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (size[d] < 0) return -1;
    if (size[d] != 0 && n > INT64_MAX / size[d]) return -1;
    n *= size[d];
  }
  return n;
}


void shape_contiguous_strides(int ndim, const int64_t *size, int64_t *stride) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = s;
    s *= size[d] > 0 ? size[d] : 1;
  }
}


int shape_equal(int na, const int64_t *a, int nb, const int64_t *b) {
  if (na != nb) return 0;
  for (int d = 0; d < na; d++)
    if (a[d] != b[d]) return 0;
  return 1;
}


sae_status shape_broadcast(int na, const int64_t *a, int nb, const int64_t *b,
                           int *nout, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int d = 0; d < n; d++) {
    int ia = na - n + d, ib = nb - n + d;
    int64_t sa = ia >= 0 ? a[ia] : 1;
    int64_t sb = ib >= 0 ? b[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) return SAE_ESHAPE;
    out[d] = sa == 1 ? sb : sa;
  }
  *nout = n;
  return SAE_OK;
}


void shape_format(int ndim, const int64_t *size, char *buf, size_t buflen) {
  size_t used = 0;
  if (buflen == 0) return;
  buf[0] = '\0';
  used += (size_t)snprintf(buf, buflen, "[");
  for (int d = 0; d < ndim && used < buflen; d++)
    used += (size_t)snprintf(buf + used, buflen - used, d ? ", %lld" : "%lld",
                             (long long)size[d]);
  if (used < buflen) snprintf(buf + used, buflen - used, "]");
}


/* ---------------------------------------------------------------- tensors */

sae_status tensor_alloc(sae_tensor *t, sae_dtype dtype, int ndim,
                        const int64_t *size, int zero) {
  int64_t n = shape_numel(ndim, size);
  size_t esize = sae_dtype_size(dtype);
  if (n < 0 || ndim > SAE_MAX_DIMS || (uint64_t)n > SIZE_MAX / esize)
    return SAE_ERANGE;
  sae_storage *s = storage_new((size_t)n * esize, zero);
  if (s == NULL) return SAE_ENOMEM;
  t->storage = s;
  t->dtype = dtype;
  t->ndim = ndim;
  t->offset = 0;
  for (int d = 0; d < ndim; d++) t->size[d] = size[d];
  shape_contiguous_strides(ndim, size, t->stride);
  return SAE_OK;
}


void tensor_view(sae_tensor *dst, const sae_tensor *src) {
  *dst = *src;
  if (dst->storage != NULL) storage_retain(dst->storage);
}


void tensor_free(sae_tensor *t) {
  storage_release(t->storage);
  t->storage = NULL;
}


int64_t tensor_numel(const sae_tensor *t) {
  return shape_numel(t->ndim, t->size);
}


int tensor_is_contiguous(const sae_tensor *t) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->size[d] != 1 && t->stride[d] != s) return 0;
    s *= t->size[d];
  }
  return 1;
}


float *tensor_f32(const sae_tensor *t) {
  return (float *)t->storage->data + t->offset;
}


int64_t *tensor_i64(const sae_tensor *t) {
  return (int64_t *)t->storage->data + t->offset;
}


void tensor_broadcast_strides(const sae_tensor *t, int ndim,
                              const int64_t *size, int64_t *stride) {
  for (int d = 0; d < ndim; d++) {
    int td = t->ndim - ndim + d;
    if (td < 0 || (t->size[td] == 1 && size[d] != 1)) stride[d] = 0;
    else stride[d] = t->size[td] == 1 ? 0 : t->stride[td];
  }
}


void tensor_copy(sae_tensor *dst, const sae_tensor *src) {
  const int64_t *strides[2] = { dst->stride, NULL };
  int64_t sstride[SAE_MAX_DIMS];
  tensor_broadcast_strides(src, dst->ndim, dst->size, sstride);
  strides[1] = sstride;
  sae_iter it;
  iter_init(&it, dst->ndim, dst->size, 2, strides);
  if (it.empty) return;
  do {
    int64_t n = it.inner, sd = it.step[0], ss = it.step[1];
    if (dst->dtype == SAE_FLOAT32 && src->dtype == SAE_FLOAT32) {
      float *d = tensor_f32(dst) + it.ptr[0];
      const float *s = tensor_f32(src) + it.ptr[1];
      if (sd == 1 && ss == 1) memmove(d, s, (size_t)n * sizeof *d);
      else for (int64_t i = 0; i < n; i++) d[i * sd] = s[i * ss];
    } else if (dst->dtype == SAE_INT64 && src->dtype == SAE_INT64) {
      int64_t *d = tensor_i64(dst) + it.ptr[0];
      const int64_t *s = tensor_i64(src) + it.ptr[1];
      if (sd == 1 && ss == 1) memmove(d, s, (size_t)n * sizeof *d);
      else for (int64_t i = 0; i < n; i++) d[i * sd] = s[i * ss];
    } else if (dst->dtype == SAE_FLOAT32) {
      float *d = tensor_f32(dst) + it.ptr[0];
      const int64_t *s = tensor_i64(src) + it.ptr[1];
      for (int64_t i = 0; i < n; i++) d[i * sd] = (float)s[i * ss];
    } else {
      /* float to int64 truncates toward zero, as PyTorch's .long() does;
       * values outside the int64 range or NaN become 0 instead of being UB */
      int64_t *d = tensor_i64(dst) + it.ptr[0];
      const float *s = tensor_f32(src) + it.ptr[1];
      for (int64_t i = 0; i < n; i++) {
        float v = s[i * ss];
        d[i * sd] = (v > -9.2233715e18f && v < 9.2233715e18f) ? (int64_t)v : 0;
      }
    }
  } while (iter_next(&it));
}


/* -------------------------------------------------------------- iteration */

void iter_init(sae_iter *it, int ndim, const int64_t *size, int nops,
               const int64_t *const *strides) {
  it->nops = nops;
  it->empty = 0;
  /* drop size-1 dims, then merge neighbours whose strides chain */
  int n = 0;
  for (int d = 0; d < ndim; d++) {
    if (size[d] == 0) it->empty = 1;
    if (size[d] == 1) continue;
    if (n > 0) {
      int merge = 1;
      for (int k = 0; k < nops; k++)
        if (it->stride[k][n - 1] != strides[k][d] * size[d]) merge = 0;
      if (merge) {
        it->size[n - 1] *= size[d];
        for (int k = 0; k < nops; k++) it->stride[k][n - 1] = strides[k][d];
        continue;
      }
    }
    it->size[n] = size[d];
    for (int k = 0; k < nops; k++) it->stride[k][n] = strides[k][d];
    n++;
  }
  if (n == 0) {
    it->size[0] = 1;
    for (int k = 0; k < nops; k++) it->stride[k][0] = 0;
    n = 1;
  }
  it->ndim = n;
  it->inner = it->size[n - 1];
  for (int k = 0; k < nops; k++) {
    it->step[k] = it->stride[k][n - 1];
    it->ptr[k] = 0;
  }
  for (int d = 0; d < n; d++) it->index[d] = 0;
}


int iter_next(sae_iter *it) {
  for (int d = it->ndim - 2; d >= 0; d--) {
    if (++it->index[d] < it->size[d]) {
      for (int k = 0; k < it->nops; k++) it->ptr[k] += it->stride[k][d];
      return 1;
    }
    for (int k = 0; k < it->nops; k++)
      it->ptr[k] -= it->stride[k][d] * (it->size[d] - 1);
    it->index[d] = 0;
  }
  return 0;
}


int64_t iter_runs(const sae_iter *it) {
  if (it->empty) return 0;
  int64_t n = 1;
  for (int d = 0; d < it->ndim - 1; d++) n *= it->size[d];
  return n;
}


void iter_seek(sae_iter *it, int64_t run) {
  for (int k = 0; k < it->nops; k++) it->ptr[k] = 0;
  for (int d = it->ndim - 2; d >= 0; d--) {
    it->index[d] = run % it->size[d];
    run /= it->size[d];
    for (int k = 0; k < it->nops; k++)
      it->ptr[k] += it->index[d] * it->stride[k][d];
  }
}
