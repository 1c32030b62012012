/*
 * npy.h: reading and writing NumPy .npy files (format versions 1.0, 2.0
 * and 3.0, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 * the magic "\x93NUMPY", a version, a 2- or 4-byte little-endian header
 * length, a Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ended by a newline, then the raw data.
 *
 * The reader treats the file as hostile: it accepts only that dict with
 * exactly those three keys, checks the shape against SAE_MAX_DIMS and
 * overflow, and requires the data to fill the rest of the file exactly.
 */
#ifndef SAE_NPY_H
#define SAE_NPY_H

#include "filemap.h"
#include "tensor.h"

typedef struct npy_file {
  io_map map;
  size_t data_start;
  io_elem kind;
  int big_endian;
  int fortran;
  int ndim;
  int64_t size[SAE_MAX_DIMS];
} npy_file;

/* Maps and validates the file at `path`. Returns SAE_EIO when it cannot
 * be opened or mapped, SAE_EFORMAT when it is malformed or contains a type
 * other than bool, float16/32/64, int8 to int64 or uint8 to uint32, and
 * writes the reason to `err`. On failure `f` has nothing to close. */
sae_status npy_open(npy_file *f, const char *path, char *err, size_t errlen);
/* Makes `t` the array: a view of the mapping for aligned little-endian
 * float32 and int64 data, otherwise a converted copy. A Fortran-order
 * array gives a tensor with column-major strides. */
sae_status npy_tensor(npy_file *f, sae_tensor *t);
void npy_close(npy_file *f);

/* Writes t as a version 1.0 file with descr '<f4' or '<i8' in C order,
 * through a temporary file. */
sae_status npy_save(const char *path, const sae_tensor *t, char *err,
                    size_t errlen);

#endif
