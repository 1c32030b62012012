/*
 * filemap.c: mapped input files, element conversion and atomic output
 * files for the safetensors and .npy formats (see filemap.h).
 */
#include "filemap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LITTLE_ENDIAN 1
#else
#define HOST_LITTLE_ENDIAN 0
#endif


/* ------------------------------------------------------- element types */

size_t io_elem_size(io_elem kind) {
  switch (kind) {
  case IO_BOOL: case IO_U8: case IO_I8: return 1;
  case IO_F16: case IO_BF16: case IO_I16: case IO_U16: return 2;
  case IO_F32: case IO_I32: case IO_U32: return 4;
  case IO_F64: case IO_I64: return 8;
  }
  return 1;
}


sae_dtype io_elem_dtype(io_elem kind) {
  switch (kind) {
  case IO_F16: case IO_BF16: case IO_F32: case IO_F64: case IO_BOOL:
    return SAE_FLOAT32;
  default:
    return SAE_INT64;
  }
}


float io_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  uint32_t bits;
  if (exponent == 0 && mantissa == 0) {
    bits = sign;
  } else if (exponent == 0) {
    /* A subnormal is mantissa * 2^-24. Shifting its leading 1 up to bit 10
     * gives a normal float32 with exponent -14 - shifts (bias 127). */
    int shifts = 0;
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      shifts++;
    }
    bits = sign | ((uint32_t)(113 - shifts) << 23) | ((mantissa & 0x3FF) << 13);
  } else if (exponent == 31) {
    bits = sign | 0x7F800000u | (mantissa << 13);   /* inf, or NaN payload */
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}


/* Reads an unsigned integer of n bytes (1, 2, 4 or 8) at p. */
static uint64_t load_uint(const unsigned char *p, size_t n, int big_endian) {
  uint64_t v = 0;
  if (big_endian)
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
  else
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}


void io_convert(void *dst, const unsigned char *src, size_t n, io_elem kind,
                int big_endian) {
  size_t es = io_elem_size(kind);
  float *f = dst;
  int64_t *q = dst;
  for (size_t i = 0; i < n; i++, src += es) {
    uint64_t u = load_uint(src, es, big_endian);
    switch (kind) {
    case IO_F16: f[i] = io_half_to_float((uint16_t)u); break;
    case IO_BF16: {
      uint32_t bits = (uint32_t)u << 16;
      memcpy(&f[i], &bits, sizeof bits);
      break;
    }
    case IO_F32: {
      uint32_t bits = (uint32_t)u;
      memcpy(&f[i], &bits, sizeof bits);
      break;
    }
    case IO_F64: {
      double d;
      memcpy(&d, &u, sizeof d);
      f[i] = (float)d;
      break;
    }
    case IO_BOOL: f[i] = u != 0 ? 1.0f : 0.0f; break;
    case IO_U8: case IO_U16: case IO_U32: q[i] = (int64_t)u; break;
    case IO_I8: q[i] = (int8_t)(uint8_t)u; break;
    case IO_I16: q[i] = (int16_t)(uint16_t)u; break;
    case IO_I32: q[i] = (int32_t)(uint32_t)u; break;
    case IO_I64: q[i] = (int64_t)u; break;
    }
  }
}


/* ------------------------------------------------------- mapped files */

static void unmap_storage(sae_storage *s) {
  munmap(s->data, s->nbytes);
}


sae_status io_map_open(io_map *m, const char *path, char *err, size_t errlen) {
  m->storage = NULL;
  m->data = NULL;
  m->size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    return SAE_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(err, errlen, "%s", strerror(errno));
    close(fd);
    return SAE_EIO;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "not a regular file");
    close(fd);
    return SAE_EIO;
  }
  if (st.st_size == 0) {
    close(fd);
    return SAE_OK;
  }
  size_t size = (size_t)st.st_size;
  /* Writable but private: in-place ops on views copy the touched pages
   * and never reach the file, which was opened read-only.
   * NOTE: if another process truncates the file while views of it are
   * alive, touching the lost pages raises SIGBUS, and nothing here guards
   * against that. */
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  close(fd);
  if (p == MAP_FAILED) {
    snprintf(err, errlen, "cannot map the file: %s", strerror(map_errno));
    return SAE_EIO;
  }
  sae_storage *s = malloc(sizeof *s);
  if (s == NULL) {
    munmap(p, size);
    return SAE_ENOMEM;
  }
  s->data = p;
  s->nbytes = size;
  s->refcount = 1;
  s->release = unmap_storage;
  s->context = NULL;
  m->storage = s;
  m->data = p;
  m->size = size;
  return SAE_OK;
}


void io_map_close(io_map *m) {
  storage_release(m->storage);
  m->storage = NULL;
  m->data = NULL;
  m->size = 0;
}


static void fortran_strides(int ndim, const int64_t *size, int64_t *stride) {
  int64_t s = 1;
  for (int d = 0; d < ndim; d++) {
    stride[d] = s;
    s *= size[d] > 0 ? size[d] : 1;
  }
}


sae_status io_map_tensor(io_map *m, sae_tensor *t, size_t pos, io_elem kind,
                         int big_endian, int ndim, const int64_t *size,
                         int fortran) {
  sae_dtype dtype = io_elem_dtype(kind);
  int64_t numel = shape_numel(ndim, size);
  if (numel < 0 || ndim > SAE_MAX_DIMS) return SAE_ERANGE;
  int native = (kind == IO_F32 || kind == IO_I64) &&
               big_endian == !HOST_LITTLE_ENDIAN;
  size_t es = io_elem_size(kind);

  if (native && numel > 0 && pos % es == 0) {
    t->storage = m->storage;
    storage_retain(m->storage);
    t->dtype = dtype;
    t->ndim = ndim;
    t->offset = (int64_t)(pos / es);
    for (int d = 0; d < ndim; d++) t->size[d] = size[d];
  } else {
    sae_status st = tensor_alloc(t, dtype, ndim, size, 0);
    if (st != SAE_OK) return st;
    if (numel > 0)
      io_convert(t->storage->data, m->data + pos, (size_t)numel, kind,
                 big_endian);
  }
  if (fortran) fortran_strides(ndim, size, t->stride);
  else shape_contiguous_strides(ndim, size, t->stride);
  return SAE_OK;
}


/* ---------------------------------------------------------- writing */

sae_status io_writer_open(io_writer *w, const char *path, char *err,
                          size_t errlen) {
  static unsigned counter;
  size_t n = strlen(path);
  w->file = NULL;
  w->path = path;
  w->failed = 0;
  w->error = 0;
  w->tmp_path = malloc(n + 64);
  if (w->tmp_path == NULL) return SAE_ENOMEM;
  /* O_EXCL with mode 0666 lets the kernel apply the umask, which mkstemp
   * would not. A name that is taken is retried with the next counter. */
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    snprintf(w->tmp_path, n + 64, "%s.tmp-%ld-%u", path, (long)getpid(),
             counter++);
    fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    snprintf(err, errlen, "cannot create %s: %s", w->tmp_path,
             strerror(errno));
    free(w->tmp_path);
    w->tmp_path = NULL;
    return SAE_EIO;
  }
  w->file = fdopen(fd, "wb");
  if (w->file == NULL) {
    snprintf(err, errlen, "cannot open %s: %s", w->tmp_path, strerror(errno));
    close(fd);
    unlink(w->tmp_path);
    free(w->tmp_path);
    w->tmp_path = NULL;
    return SAE_EIO;
  }
  return SAE_OK;
}


void io_write(io_writer *w, const void *data, size_t n) {
  if (w->failed || n == 0) return;
  if (fwrite(data, 1, n, w->file) != n) {
    w->failed = 1;
    w->error = errno;
  }
}


/* Writes n elements of size es from src with stride `step` (elements),
 * little-endian. */
static void write_run(io_writer *w, const unsigned char *src, int64_t n,
                      int64_t step, size_t es) {
  if (step == 1 && HOST_LITTLE_ENDIAN) {
    io_write(w, src, (size_t)n * es);
    return;
  }
  unsigned char buf[8192];
  size_t per = sizeof buf / es, used = 0;
  for (int64_t i = 0; i < n; i++) {
    const unsigned char *e = src + (size_t)(i * step) * es;
    for (size_t b = 0; b < es; b++)
      buf[used * es + b] = HOST_LITTLE_ENDIAN ? e[b] : e[es - 1 - b];
    if (++used == per) {
      io_write(w, buf, used * es);
      used = 0;
    }
  }
  io_write(w, buf, used * es);
}


void io_write_tensor(io_writer *w, const sae_tensor *t) {
  size_t es = sae_dtype_size(t->dtype);
  const int64_t *strides[1] = { t->stride };
  sae_iter it;
  iter_init(&it, t->ndim, t->size, 1, strides);
  if (it.empty) return;
  const unsigned char *base =
      (const unsigned char *)t->storage->data + (size_t)t->offset * es;
  do {
    write_run(w, base + (size_t)it.ptr[0] * es, it.inner, it.step[0], es);
  } while (iter_next(&it));
}


sae_status io_writer_commit(io_writer *w, char *err, size_t errlen) {
  if (!w->failed && fflush(w->file) != 0) {
    w->failed = 1;
    w->error = errno;
  }
  if (!w->failed && fsync(fileno(w->file)) != 0) {
    w->failed = 1;
    w->error = errno;
  }
  if (fclose(w->file) != 0 && !w->failed) {
    w->failed = 1;
    w->error = errno;
  }
  w->file = NULL;
  if (!w->failed && rename(w->tmp_path, w->path) != 0) {
    w->failed = 1;
    w->error = errno;
  }
  if (w->failed) {
    snprintf(err, errlen, "write failed: %s", strerror(w->error));
    unlink(w->tmp_path);
  }
  free(w->tmp_path);
  w->tmp_path = NULL;
  return w->failed ? SAE_EIO : SAE_OK;
}


void io_writer_abort(io_writer *w) {
  if (w->file != NULL) fclose(w->file);
  w->file = NULL;
  if (w->tmp_path != NULL) unlink(w->tmp_path);
  free(w->tmp_path);
  w->tmp_path = NULL;
}
