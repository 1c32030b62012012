/*
 * safetensors.h: reading and writing the safetensors format
 * (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
 *    "__metadata__": {"key": "value"}}
 * then the data section, where each tensor occupies bytes [b, e).
 *
 * The reader treats the file as hostile. It checks every length, offset
 * and shape against the file before any tensor is touched, and rejects
 * duplicate names. The tensors must cover the data section exactly, with
 * no overlaps, holes or trailing bytes, as Metadata::validate in the
 * reference Rust implementation (safetensors/src/tensor.rs) requires.
 */
#ifndef SAE_SAFETENSORS_H
#define SAE_SAFETENSORS_H

#include "filemap.h"
#include "tensor.h"

/* Headers above this size are rejected before anything is allocated. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct st_info {
  const char *name;
  size_t name_len;
  io_elem kind;
  int ndim;
  int64_t size[SAE_MAX_DIMS];
  int64_t begin, end;          /* byte offsets in the data section */
} st_info;

typedef struct st_pair {
  const char *key, *value;
  size_t key_len, value_len;
} st_pair;

typedef struct st_file {
  io_map map;
  size_t data_start;           /* 8 + header length */
  int ntensors, nmeta;
  st_info *tensors;            /* sorted by data offset */
  st_pair *meta;               /* sorted by key */
  char *strings;               /* decoded names, keys and values */
} st_file;

/* Maps and validates the file at `path`. Returns SAE_EIO when it cannot
 * be opened or mapped, SAE_EFORMAT when it is malformed, or SAE_ENOMEM, and
 * writes the reason to `err`. On failure `f` has nothing to close. */
sae_status st_open(st_file *f, const char *path, char *err, size_t errlen);
/* Makes `t` tensor i of the file: a view of the mapping for aligned F32
 * and I64 data, otherwise a converted copy. */
sae_status st_tensor(st_file *f, int i, sae_tensor *t);
void st_close(st_file *f);

typedef struct st_item {
  const char *name;
  size_t name_len;
  const sae_tensor *tensor;
} st_item;

/* Writes the tensors and metadata to `path` through a temporary file.
 * Names and metadata must be valid UTF-8 and names must be distinct
 * (checked by the caller). Sorts `meta` by key and `items` into the
 * file's order:
 * int64 tensors, then float32 ones, each by name, so every tensor stays
 * aligned to its element size and mapped loads can use views. Returns
 * SAE_EIO or SAE_ENOMEM with a message on failure. */
sae_status st_save(const char *path, st_item *items, int n,
                   st_pair *meta, int nmeta, char *err, size_t errlen);

#endif
