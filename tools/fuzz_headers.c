/*
 * fuzz_headers.c: a libFuzzer driver for the safetensors and .npy readers.
 * Each input is written to a memory file and opened through
 * /proc/self/fd, so the readers run exactly as sae.load does, mapping
 * included. Inputs starting with the .npy magic go to the .npy reader.
 *
 * Build and run (clang with libFuzzer, from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc \
 *     tools/fuzz_headers.c csrc/safetensors.c csrc/npy.c csrc/json.c \
 *     csrc/filemap.c csrc/tensor.c -o build/fuzz_headers
 *   build/fuzz_headers -max_total_time=60 -max_len=4096 spec/fixtures
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "npy.h"
#include "safetensors.h"


/* Reads every element of t, so a view that reaches past the mapping is
 * caught by ASan or a fault. */
static void touch(const sae_tensor *t) {
  const int64_t *strides[1] = { t->stride };
  sae_iter it;
  volatile unsigned char sink = 0;
  size_t es = sae_dtype_size(t->dtype);
  iter_init(&it, t->ndim, t->size, 1, strides);
  if (it.empty) return;
  const unsigned char *base =
      (const unsigned char *)t->storage->data + (size_t)t->offset * es;
  do {
    for (int64_t i = 0; i < it.inner; i++)
      sink ^= base[(size_t)(it.ptr[0] + i * it.step[0]) * es + es - 1];
  } while (iter_next(&it));
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  char err[400];
  if (fd < 0) {
    fd = memfd_create("fuzz", 0);
    if (fd < 0) return 0;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
    return 0;

  if (size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0) {
    npy_file f;
    if (npy_open(&f, path, err, sizeof err) != SAE_OK) return 0;
    sae_tensor t;
    if (npy_tensor(&f, &t) == SAE_OK) {
      touch(&t);
      tensor_free(&t);
    }
    npy_close(&f);
    return 0;
  }
  st_file f;
  if (st_open(&f, path, err, sizeof err) != SAE_OK) return 0;
  for (int i = 0; i < f.ntensors; i++) {
    sae_tensor t;
    if (st_tensor(&f, i, &t) != SAE_OK) continue;
    touch(&t);
    tensor_free(&t);
  }
  st_close(&f);
  return 0;
}
