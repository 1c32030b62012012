/*
 * npy.c: the .npy reader and writer (see npy.h).
 */
#include "npy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

static const char npy_magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };


/* ------------------------------------------------- the header literal */

typedef struct lexer {
  const char *start, *pos, *end;
  char *err;
  size_t errlen;
} lexer;


static int fail(lexer *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(lexer *x, const char *fmt, ...) {
  char what[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(x->err, x->errlen, "invalid header at byte %zu: %s",
           (size_t)(x->pos - x->start), what);
  return 0;
}


static int peek(lexer *x) {
  while (x->pos < x->end && (*x->pos == ' ' || *x->pos == '\t' ||
                             *x->pos == '\n' || *x->pos == '\r'))
    x->pos++;
  return x->pos < x->end ? (unsigned char)*x->pos : -1;
}


static int accept(lexer *x, char c) {
  if (peek(x) != (unsigned char)c) return 0;
  x->pos++;
  return 1;
}


static int expect(lexer *x, char c) {
  if (accept(x, c)) return 1;
  return fail(x, "expected '%c'", c);
}


/* A quoted string without escapes (none of the keys or type codes that
 * NumPy writes needs one). */
static int read_string(lexer *x, const char **s, size_t *len) {
  int q = peek(x);
  if (q != '\'' && q != '"') return fail(x, "expected a quoted string");
  const char *p = ++x->pos;
  while (p < x->end && *p != q) {
    if (*p == '\\' || *p == '\n') return fail(x, "unsupported string");
    p++;
  }
  if (p == x->end) return fail(x, "unterminated string");
  *s = x->pos;
  *len = (size_t)(p - x->pos);
  x->pos = p + 1;
  return 1;
}


static int read_bool(lexer *x, int *v) {
  peek(x);
  size_t left = (size_t)(x->end - x->pos);
  if (left >= 4 && memcmp(x->pos, "True", 4) == 0) {
    x->pos += 4;
    *v = 1;
  } else if (left >= 5 && memcmp(x->pos, "False", 5) == 0) {
    x->pos += 5;
    *v = 0;
  } else {
    return fail(x, "fortran_order expected True or False");
  }
  return 1;
}


static int read_shape(lexer *x, npy_file *f) {
  if (!expect(x, '(')) return 0;
  f->ndim = 0;
  while (!accept(x, ')')) {
    int c = peek(x);
    if (c < '0' || c > '9')
      return fail(x, "shape expected non-negative integers");
    if (f->ndim == SAE_MAX_DIMS)
      return fail(x, "shape has more than %d dims", SAE_MAX_DIMS);
    int64_t v = 0;
    while (x->pos < x->end && *x->pos >= '0' && *x->pos <= '9') {
      int d = *x->pos - '0';
      if (v > (INT64_MAX - d) / 10) return fail(x, "shape size too large");
      v = v * 10 + d;
      x->pos++;
    }
    f->size[f->ndim++] = v;
    /* (3,) needs the comma, but (2, 3) may end without one */
    if (!accept(x, ',')) {
      if (f->ndim == 1) return fail(x, "expected ',' after a 1-tuple size");
      if (!expect(x, ')')) return 0;
      break;
    }
  }
  return 1;
}


static int parse_descr(lexer *x, npy_file *f, const char *s, size_t len) {
  static const struct {
    const char *code;
    io_elem kind;
  } types[] = {
    { "f2", IO_F16 }, { "f4", IO_F32 }, { "f8", IO_F64 }, { "b1", IO_BOOL },
    { "u1", IO_U8 }, { "i1", IO_I8 }, { "i2", IO_I16 }, { "u2", IO_U16 },
    { "i4", IO_I32 }, { "u4", IO_U32 }, { "i8", IO_I64 },
  };
  if (len == 3 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
      if (memcmp(s + 1, types[i].code, 2) != 0) continue;
      f->kind = types[i].kind;
      f->big_endian = s[0] == '>';
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
      if (s[0] == '=') f->big_endian = 1;
#endif
      if (s[0] == '|' && io_elem_size(f->kind) != 1) break;
      return 1;
    }
  }
  return fail(x, "unsupported descr '%.*s' (supported: bool, float16, "
              "float32, float64, int8 to int64, uint8 to uint32)",
              (int)(len > 40 ? 40 : len), s);
}


static int parse_dict(lexer *x, npy_file *f) {
  enum { HAS_DESCR = 1, HAS_FORTRAN = 2, HAS_SHAPE = 4 };
  int seen = 0;
  if (!expect(x, '{')) return 0;
  while (!accept(x, '}')) {
    const char *key, *value;
    size_t len, vlen;
    int field;
    if (!read_string(x, &key, &len)) return 0;
    if (len == 5 && memcmp(key, "descr", 5) == 0) field = HAS_DESCR;
    else if (len == 13 && memcmp(key, "fortran_order", 13) == 0)
      field = HAS_FORTRAN;
    else if (len == 5 && memcmp(key, "shape", 5) == 0) field = HAS_SHAPE;
    else return fail(x, "unexpected key '%.*s'", (int)(len > 40 ? 40 : len),
                     key);
    if (seen & field)
      return fail(x, "duplicate key '%.*s'", (int)len, key);
    seen |= field;
    if (!expect(x, ':')) return 0;
    if (field == HAS_DESCR) {
      if (peek(x) != '\'' && peek(x) != '"')
        return fail(x, "descr expected a type string such as '<f4'");
      if (!read_string(x, &value, &vlen)) return 0;
      if (!parse_descr(x, f, value, vlen)) return 0;
    } else if (field == HAS_FORTRAN) {
      if (!read_bool(x, &f->fortran)) return 0;
    } else {
      if (!read_shape(x, f)) return 0;
    }
    if (!accept(x, ',')) {
      if (!expect(x, '}')) return 0;
      break;
    }
  }
  if (seen != (HAS_DESCR | HAS_FORTRAN | HAS_SHAPE))
    return fail(x, "missing key '%s'", !(seen & HAS_DESCR) ? "descr"
                : !(seen & HAS_FORTRAN) ? "fortran_order" : "shape");
  if (peek(x) != -1) return fail(x, "unexpected text after the dict");
  return 1;
}


/* ------------------------------------------------------------ reading */

static sae_status malformed(npy_file *f, char *err, size_t errlen,
                            const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static sae_status malformed(npy_file *f, char *err, size_t errlen,
                            const char *fmt, ...) {
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  io_map_close(&f->map);
  return SAE_EFORMAT;
}


sae_status npy_open(npy_file *f, const char *path, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  sae_status st = io_map_open(&f->map, path, err, errlen);
  if (st != SAE_OK) return st;
  const unsigned char *b = f->map.data;
  size_t size = f->map.size;

  if (size < 10 || memcmp(b, npy_magic, sizeof npy_magic) != 0)
    return malformed(f, err, errlen, "not a .npy file (no \\x93NUMPY magic)");
  int major = b[6], minor = b[7];
  size_t header_len, header_at;
  if (major == 1 && minor == 0) {
    header_len = (size_t)b[8] | (size_t)b[9] << 8;
    header_at = 10;
  } else if ((major == 2 || major == 3) && minor == 0) {
    if (size < 12)
      return malformed(f, err, errlen, "file ends inside the header length");
    header_len = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
                 (size_t)b[11] << 24;
    header_at = 12;
  } else {
    return malformed(f, err, errlen, "unsupported format version %d.%d",
                     major, minor);
  }
  if (header_len > size - header_at)
    return malformed(f, err, errlen, "header length %zu exceeds the %zu "
                     "bytes after it (truncated file?)", header_len,
                     size - header_at);
  const char *header = (const char *)b + header_at;
  if (header_len == 0 || header[header_len - 1] != '\n')
    return malformed(f, err, errlen, "header does not end with a newline");
  if (major < 3) {
    for (size_t i = 0; i < header_len; i++)
      if ((unsigned char)header[i] >= 0x80)
        return malformed(f, err, errlen, "non-ASCII byte in a version %d.0 "
                         "header", major);
  } else if (!json_utf8_valid(header, header_len)) {
    return malformed(f, err, errlen, "header is not valid UTF-8");
  }

  lexer x = { header, header, header + header_len, err, errlen };
  if (!parse_dict(&x, f)) return malformed(f, err, errlen, NULL);

  char shape[200];
  shape_format(f->ndim, f->size, shape, sizeof shape);
  int64_t numel = shape_numel(f->ndim, f->size);
  size_t es = io_elem_size(f->kind);
  if (numel < 0 || (uint64_t)numel > SIZE_MAX / es)
    return malformed(f, err, errlen, "shape %s has too many elements", shape);
  size_t nbytes = (size_t)numel * es;
  f->data_start = header_at + header_len;
  size_t available = size - f->data_start;
  if (nbytes > available)
    return malformed(f, err, errlen, "shape %s needs %zu bytes of data, the "
                     "file has %zu (truncated file?)", shape, nbytes,
                     available);
  if (nbytes < available)
    return malformed(f, err, errlen, "shape %s needs %zu bytes of data, the "
                     "file has %zu more after them", shape, nbytes,
                     available - nbytes);
  return SAE_OK;
}


sae_status npy_tensor(npy_file *f, sae_tensor *t) {
  return io_map_tensor(&f->map, t, f->data_start, f->kind, f->big_endian,
                       f->ndim, f->size, f->fortran);
}


void npy_close(npy_file *f) {
  io_map_close(&f->map);
}


/* ------------------------------------------------------------ writing */

sae_status npy_save(const char *path, const sae_tensor *t, char *err,
                    size_t errlen) {
  char header[512];
  int n = snprintf(header, sizeof header,
                   "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   t->dtype == SAE_INT64 ? "<i8" : "<f4");
  for (int d = 0; d < t->ndim; d++)
    n += snprintf(header + n, sizeof header - (size_t)n, "%lld, ",
                  (long long)t->size[d]);
  if (t->ndim > 1) n -= 2;          /* (2, 3), but (3,) keeps its comma */
  else if (t->ndim == 1) n -= 1;
  n += snprintf(header + n, sizeof header - (size_t)n, "), }");
  /* Pad with spaces and a final newline so the data starts at a multiple
   * of 64 bytes, as NumPy does. */
  while ((10 + n + 1) % 64 != 0) header[n++] = ' ';
  header[n++] = '\n';

  io_writer w;
  sae_status st = io_writer_open(&w, path, err, errlen);
  if (st != SAE_OK) return st;
  unsigned char prefix[10];
  memcpy(prefix, npy_magic, sizeof npy_magic);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix[8] = (unsigned char)(n & 0xFF);
  prefix[9] = (unsigned char)(n >> 8);
  io_write(&w, prefix, sizeof prefix);
  io_write(&w, header, (size_t)n);
  io_write_tensor(&w, t);
  return io_writer_commit(&w, err, errlen);
}
