/*
 * filemap.h: what the safetensors and .npy readers and writers share:
 * memory-mapped input files, element types found in files and their
 * conversion to float32 or int64, and writing through a temporary file
 * that is renamed into place.
 */
#ifndef SAE_FILEMAP_H
#define SAE_FILEMAP_H

#include <stddef.h>
#include <stdio.h>

#include "tensor.h"

/* Element types a file may hold. Floating types and BOOL load as
 * float32 (masks are float in this library), integer types as int64. */
typedef enum {
  IO_F16, IO_BF16, IO_F32, IO_F64, IO_BOOL, IO_U8, IO_I8, IO_I16, IO_U16,
  IO_I32, IO_U32, IO_I64
} io_elem;

size_t io_elem_size(io_elem kind);
sae_dtype io_elem_dtype(io_elem kind);

/* Converts n elements of `kind` stored at src (any alignment, little- or
 * big-endian) into dst, which has io_elem_dtype(kind). Conversions to
 * float32 are exact except from F64, which rounds to nearest. */
void io_convert(void *dst, const unsigned char *src, size_t n, io_elem kind,
                int big_endian);
/* Decodes IEEE half-precision bits exactly (subnormals, inf, NaN). */
float io_half_to_float(uint16_t h);

/* A whole file mapped copy-on-write (MAP_PRIVATE, readable and writable
 * in memory, opened read-only), so tensors can be views of it and
 * in-place changes never reach the file. `storage` owns the mapping and
 * unmaps it when its last reference goes. It is NULL for an empty file. */
typedef struct io_map {
  sae_storage *storage;
  const unsigned char *data;
  size_t size;
} io_map;

/* Maps `path`. Returns SAE_EIO with a message when the file cannot be
 * opened, is not a regular file or cannot be mapped, or SAE_ENOMEM. */
sae_status io_map_open(io_map *m, const char *path, char *err, size_t errlen);
/* Drops the reader's reference; views of the mapping keep it alive. */
void io_map_close(io_map *m);

/* Fills `t` with the numel(size) elements of `kind` at byte `pos` of the
 * mapping, which the caller has checked lie inside it. The elements
 * are in C order, or column-major (Fortran) order when `fortran` is set.
 * Little-endian F32 and I64 data aligned to its element size becomes a
 * view of the mapping; anything else is converted into new storage. */
sae_status io_map_tensor(io_map *m, sae_tensor *t, size_t pos, io_elem kind,
                         int big_endian, int ndim, const int64_t *size,
                         int fortran);

/* A file written under a temporary name in the target's directory and
 * renamed over the target on commit, so a failed write never leaves a
 * partial file at `path`. */
typedef struct io_writer {
  FILE *file;
  char *tmp_path;
  const char *path;
  int failed;
  int error;     /* errno of the first failure */
} io_writer;

sae_status io_writer_open(io_writer *w, const char *path, char *err,
                          size_t errlen);
void io_write(io_writer *w, const void *data, size_t n);
/* Writes the elements of t in C order, little-endian, whatever its
 * strides. */
void io_write_tensor(io_writer *w, const sae_tensor *t);
/* Flushes, closes and renames; on any earlier or current failure removes
 * the temporary file and returns SAE_EIO with a message. */
sae_status io_writer_commit(io_writer *w, char *err, size_t errlen);
/* Closes and removes the temporary file. */
void io_writer_abort(io_writer *w);

#endif
