/*
 * safetensors.c: the safetensors reader and writer (see safetensors.h).
 */
#include "safetensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Names are cut to this many bytes in messages. */
#define NAME_SHOWN 64


static const struct {
  const char *name;
  io_elem kind;
} st_dtypes[] = {
  { "F32", IO_F32 }, { "F16", IO_F16 }, { "BF16", IO_BF16 },
  { "F64", IO_F64 }, { "I64", IO_I64 }, { "I32", IO_I32 },
  { "I16", IO_I16 }, { "I8", IO_I8 }, { "U8", IO_U8 }, { "U16", IO_U16 },
  { "U32", IO_U32 }, { "BOOL", IO_BOOL },
};

/* Dtypes of the format that have no exact float32 or int64 value. */
static const char *const st_unsupported[] = {
  "U64", "F8_E4M3", "F8_E5M2",
};


static const char *dtype_name(io_elem kind) {
  for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
    if (st_dtypes[i].kind == kind) return st_dtypes[i].name;
  return "?";
}


/* --------------------------------------------------------- parse state */

typedef struct parser {
  json_reader json;
  st_file *file;
  char *err;
  size_t errlen;
  size_t strings_used;
  int tensors_cap, meta_cap;
  int out_of_memory;
} parser;


static int fail(parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(parser *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err, p->errlen, fmt, ap);
  va_end(ap);
  return 0;
}


static int fail_memory(parser *p) {
  p->out_of_memory = 1;
  return fail(p, "out of memory");
}


static int json_failed(parser *p) {
  return fail(p, "header: %s", p->json.err);
}


/* Reads a string into the string area. With `keep` the string stays
 * there, otherwise the next string reuses its space. */
static int read_string(parser *p, const char **s, size_t *len, int keep) {
  char *out = p->file->strings + p->strings_used;
  *s = out;
  *len = 0;
  if (!json_read_string(&p->json, out, len)) return json_failed(p);
  if (keep) p->strings_used += *len + 1;
  return 1;
}


static int is_key(const char *s, size_t len, const char *key) {
  return len == strlen(key) && memcmp(s, key, len) == 0;
}


static void *grow(void *array, int *cap, int count, size_t elem) {
  if (count < *cap) return array;
  int ncap = *cap ? *cap * 2 : 16;
  void *a = realloc(array, (size_t)ncap * elem);
  if (a != NULL) *cap = ncap;
  return a;
}


/* ---------------------------------------------------------- the header */

static int parse_metadata(parser *p) {
  st_file *f = p->file;
  if (json_peek(&p->json) == 'n') {   /* "__metadata__": null */
    if (!json_skip_value(&p->json)) return json_failed(p);
    return 1;
  }
  if (json_peek(&p->json) != '{')
    return fail(p, "header: __metadata__ is not an object");
  p->json.pos++;
  if (json_accept(&p->json, '}')) return 1;
  do {
    st_pair pair;
    if (!read_string(p, &pair.key, &pair.key_len, 1)) return 0;
    if (!json_expect(&p->json, ':', "after a metadata key"))
      return json_failed(p);
    if (json_peek(&p->json) != '"')
      return fail(p, "header: metadata value for key '%.*s' is not a string",
                  NAME_SHOWN, pair.key);
    if (!read_string(p, &pair.value, &pair.value_len, 1)) return 0;
    st_pair *meta = grow(f->meta, &p->meta_cap, f->nmeta, sizeof *meta);
    if (meta == NULL) return fail_memory(p);
    f->meta = meta;
    f->meta[f->nmeta++] = pair;
  } while (json_accept(&p->json, ','));
  if (!json_expect(&p->json, '}', "to close __metadata__"))
    return json_failed(p);
  return 1;
}


static int parse_dtype(parser *p, st_info *t) {
  const char *s;
  size_t len;
  if (json_peek(&p->json) != '"')
    return fail(p, "tensor '%.*s': dtype is not a string", NAME_SHOWN,
                t->name);
  if (!read_string(p, &s, &len, 0)) return 0;
  for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
    if (is_key(s, len, st_dtypes[i].name)) {
      t->kind = st_dtypes[i].kind;
      return 1;
    }
  for (size_t i = 0; i < sizeof st_unsupported / sizeof st_unsupported[0]; i++)
    if (is_key(s, len, st_unsupported[i]))
      return fail(p, "tensor '%.*s': dtype %s is not supported", NAME_SHOWN,
                  t->name, st_unsupported[i]);
  return fail(p, "tensor '%.*s': unknown dtype '%.*s'", NAME_SHOWN, t->name,
              NAME_SHOWN, s);
}


static int parse_shape(parser *p, st_info *t) {
  char what[NAME_SHOWN + 40];
  if (!json_expect(&p->json, '[', "to open a shape")) return json_failed(p);
  t->ndim = 0;
  if (json_accept(&p->json, ']')) return 1;
  do {
    if (t->ndim == SAE_MAX_DIMS)
      return fail(p, "tensor '%.*s': shape has more than %d dims", NAME_SHOWN,
                  t->name, SAE_MAX_DIMS);
    snprintf(what, sizeof what, "tensor '%.*s': shape[%d]", NAME_SHOWN,
             t->name, t->ndim);
    if (!json_read_size(&p->json, &t->size[t->ndim], what))
      return json_failed(p);
    t->ndim++;
  } while (json_accept(&p->json, ','));
  if (!json_expect(&p->json, ']', "to close a shape")) return json_failed(p);
  return 1;
}


static int parse_offsets(parser *p, st_info *t) {
  char what[NAME_SHOWN + 40];
  snprintf(what, sizeof what, "tensor '%.*s': data_offsets", NAME_SHOWN,
           t->name);
  if (!json_expect(&p->json, '[', "to open data_offsets"))
    return json_failed(p);
  if (!json_read_size(&p->json, &t->begin, what)) return json_failed(p);
  if (!json_expect(&p->json, ',', "between the two data_offsets"))
    return json_failed(p);
  if (!json_read_size(&p->json, &t->end, what)) return json_failed(p);
  if (!json_expect(&p->json, ']', "after the two data_offsets"))
    return json_failed(p);
  return 1;
}


static int parse_tensor(parser *p, st_info *t) {
  enum { HAS_DTYPE = 1, HAS_SHAPE = 2, HAS_OFFSETS = 4 };
  int seen = 0;
  if (json_peek(&p->json) != '{')
    return fail(p, "header: tensor '%.*s' is not an object", NAME_SHOWN,
                t->name);
  p->json.pos++;
  if (!json_accept(&p->json, '}')) {
    do {
      const char *key;
      size_t len;
      int field = 0;
      if (!read_string(p, &key, &len, 0)) return 0;
      if (!json_expect(&p->json, ':', "after a key")) return json_failed(p);
      if (is_key(key, len, "dtype")) field = HAS_DTYPE;
      else if (is_key(key, len, "shape")) field = HAS_SHAPE;
      else if (is_key(key, len, "data_offsets")) field = HAS_OFFSETS;
      if (field & seen)
        return fail(p, "tensor '%.*s': duplicate key '%.*s'", NAME_SHOWN,
                    t->name, NAME_SHOWN, key);
      seen |= field;
      int ok = field == HAS_DTYPE ? parse_dtype(p, t)
             : field == HAS_SHAPE ? parse_shape(p, t)
             : field == HAS_OFFSETS ? parse_offsets(p, t)
             : (json_skip_value(&p->json) || json_failed(p));
      if (!ok) return 0;
    } while (json_accept(&p->json, ','));
    if (!json_expect(&p->json, '}', "to close a tensor entry"))
      return json_failed(p);
  }
  const char *missing = !(seen & HAS_DTYPE) ? "dtype"
                      : !(seen & HAS_SHAPE) ? "shape"
                      : !(seen & HAS_OFFSETS) ? "data_offsets" : NULL;
  if (missing != NULL)
    return fail(p, "tensor '%.*s': missing %s", NAME_SHOWN, t->name, missing);
  return 1;
}


static int parse_header(parser *p) {
  st_file *f = p->file;
  int seen_metadata = 0;
  if (!json_expect(&p->json, '{', "at the start of the header"))
    return json_failed(p);
  if (!json_accept(&p->json, '}')) {
    do {
      const char *name;
      size_t len;
      if (!read_string(p, &name, &len, 1)) return 0;
      if (!json_expect(&p->json, ':', "after a key")) return json_failed(p);
      if (is_key(name, len, "__metadata__")) {
        if (seen_metadata++) return fail(p, "header: duplicate __metadata__");
        if (!parse_metadata(p)) return 0;
        continue;
      }
      st_info *ts = grow(f->tensors, &p->tensors_cap, f->ntensors, sizeof *ts);
      if (ts == NULL) return fail_memory(p);
      f->tensors = ts;
      st_info *t = &f->tensors[f->ntensors++];
      memset(t, 0, sizeof *t);
      t->name = name;
      t->name_len = len;
      if (!parse_tensor(p, t)) return 0;
    } while (json_accept(&p->json, ','));
    if (!json_expect(&p->json, '}', "to close the header"))
      return json_failed(p);
  }
  if (!json_expect_end(&p->json)) return json_failed(p);
  return 1;
}


/* ------------------------------------------------------ validation */

static int compare_names(const char *a, size_t na, const char *b, size_t nb) {
  int c = memcmp(a, b, na < nb ? na : nb);
  if (c != 0) return c;
  return na < nb ? -1 : na > nb;
}


static int by_name(const void *a, const void *b) {
  const st_info *x = a, *y = b;
  return compare_names(x->name, x->name_len, y->name, y->name_len);
}


static int by_key(const void *a, const void *b) {
  const st_pair *x = a, *y = b;
  return compare_names(x->key, x->key_len, y->key, y->key_len);
}


static int by_offset(const void *a, const void *b) {
  const st_info *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}


static int check_tensor(parser *p, const st_info *t, uint64_t data_size) {
  char shape[200];
  shape_format(t->ndim, t->size, shape, sizeof shape);
  int64_t numel = shape_numel(t->ndim, t->size);
  uint64_t es = io_elem_size(t->kind);
  if (numel < 0 || (uint64_t)numel > UINT64_MAX / es)
    return fail(p, "tensor '%.*s': shape %s has too many elements",
                NAME_SHOWN, t->name, shape);
  uint64_t nbytes = (uint64_t)numel * es;
  if (t->begin > t->end)
    return fail(p, "tensor '%.*s': data_offsets [%lld, %lld] end before "
                "they begin", NAME_SHOWN, t->name, (long long)t->begin,
                (long long)t->end);
  if ((uint64_t)t->end > data_size)
    return fail(p, "tensor '%.*s': data_offsets [%lld, %lld] lie outside "
                "the data section of %llu bytes", NAME_SHOWN, t->name,
                (long long)t->begin, (long long)t->end,
                (unsigned long long)data_size);
  if ((uint64_t)(t->end - t->begin) != nbytes)
    return fail(p, "tensor '%.*s': shape %s of %s needs %llu bytes, but "
                "data_offsets [%lld, %lld] span %lld", NAME_SHOWN, t->name,
                shape, dtype_name(t->kind), (unsigned long long)nbytes,
                (long long)t->begin, (long long)t->end,
                (long long)(t->end - t->begin));
  return 1;
}


static int validate(parser *p, uint64_t data_size) {
  st_file *f = p->file;
  for (int i = 0; i < f->ntensors; i++)
    if (!check_tensor(p, &f->tensors[i], data_size)) return 0;

  if (f->nmeta > 1) qsort(f->meta, (size_t)f->nmeta, sizeof *f->meta, by_key);
  for (int i = 1; i < f->nmeta; i++)
    if (by_key(&f->meta[i - 1], &f->meta[i]) == 0)
      return fail(p, "header: duplicate metadata key '%.*s'", NAME_SHOWN,
                  f->meta[i].key);

  if (f->ntensors > 1)
    qsort(f->tensors, (size_t)f->ntensors, sizeof *f->tensors, by_name);
  for (int i = 1; i < f->ntensors; i++)
    if (by_name(&f->tensors[i - 1], &f->tensors[i]) == 0)
      return fail(p, "header: duplicate tensor name '%.*s'", NAME_SHOWN,
                  f->tensors[i].name);

  /* The tensors must tile the data section in offset order. */
  if (f->ntensors > 1)
    qsort(f->tensors, (size_t)f->ntensors, sizeof *f->tensors, by_offset);
  int64_t covered = 0;
  for (int i = 0; i < f->ntensors; i++) {
    const st_info *t = &f->tensors[i];
    if (t->begin < covered)
      return fail(p, "tensors '%.*s' and '%.*s' overlap: data_offsets "
                  "[%lld, %lld] and [%lld, %lld]", NAME_SHOWN,
                  f->tensors[i - 1].name, NAME_SHOWN, t->name,
                  (long long)f->tensors[i - 1].begin,
                  (long long)f->tensors[i - 1].end, (long long)t->begin,
                  (long long)t->end);
    if (t->begin > covered)
      return fail(p, "bytes [%lld, %lld) of the data section belong to no "
                  "tensor", (long long)covered, (long long)t->begin);
    covered = t->end;
  }
  if ((uint64_t)covered != data_size)
    return fail(p, "the data section has %llu bytes but the tensors cover "
                "only the first %lld", (unsigned long long)data_size,
                (long long)covered);
  return 1;
}


/* ----------------------------------------------------------- reading */

static void free_parsed(st_file *f) {
  free(f->tensors);
  free(f->meta);
  free(f->strings);
  f->tensors = NULL;
  f->meta = NULL;
  f->strings = NULL;
  f->ntensors = f->nmeta = 0;
}


sae_status st_open(st_file *f, const char *path, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  sae_status st = io_map_open(&f->map, path, err, errlen);
  if (st != SAE_OK) return st;

  size_t size = f->map.size;
  if (size < 8) {
    snprintf(err, errlen, "file is %zu bytes, too short for the 8-byte "
             "header length", size);
    io_map_close(&f->map);
    return SAE_EFORMAT;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | f->map.data[i];
  if (n > ST_MAX_HEADER) {
    snprintf(err, errlen, "header length %llu is larger than the limit of "
             "%llu bytes", (unsigned long long)n,
             (unsigned long long)ST_MAX_HEADER);
    io_map_close(&f->map);
    return SAE_EFORMAT;
  }
  if (n > size - 8) {
    snprintf(err, errlen, "header length %llu exceeds the %zu bytes after "
             "the length field (truncated file?)", (unsigned long long)n,
             size - 8);
    io_map_close(&f->map);
    return SAE_EFORMAT;
  }

  parser p;
  memset(&p, 0, sizeof p);
  p.file = f;
  p.err = err;
  p.errlen = errlen;
  /* Decoded strings plus their NULs never exceed the header's length,
   * because every string has two quotes and no escape grows. */
  f->strings = malloc((size_t)n + 1);
  if (f->strings == NULL) {
    io_map_close(&f->map);
    return SAE_ENOMEM;
  }
  json_init(&p.json, (const char *)f->map.data + 8, (size_t)n);
  f->data_start = 8 + (size_t)n;
  if (!parse_header(&p) || !validate(&p, size - 8 - n)) {
    free_parsed(f);
    io_map_close(&f->map);
    return p.out_of_memory ? SAE_ENOMEM : SAE_EFORMAT;
  }
  return SAE_OK;
}


sae_status st_tensor(st_file *f, int i, sae_tensor *t) {
  const st_info *info = &f->tensors[i];
  return io_map_tensor(&f->map, t, f->data_start + (size_t)info->begin,
                       info->kind, 0, info->ndim, info->size, 0);
}


void st_close(st_file *f) {
  free_parsed(f);
  io_map_close(&f->map);
}


/* ----------------------------------------------------------- writing */

typedef struct buffer {
  char *data;
  size_t len, cap;
  int failed;
} buffer;


static void put(buffer *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) {
      b->failed = 1;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
}


static void put_str(buffer *b, const char *s) {
  put(b, s, strlen(s));
}


/* Writes s as a JSON string. s is valid UTF-8, so only quotes,
 * backslashes and control characters need escapes. */
static void put_json_string(buffer *b, const char *s, size_t n) {
  put(b, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    put(b, s + run, i - run);
    char esc[8];
    if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", c);
    else snprintf(esc, sizeof esc, "\\u%04x", c);
    put_str(b, esc);
    run = i + 1;
  }
  put(b, s + run, n - run);
  put(b, "\"", 1);
}


static int by_file_order(const void *a, const void *b) {
  const st_item *x = a, *y = b;
  size_t sx = sae_dtype_size(x->tensor->dtype);
  size_t sy = sae_dtype_size(y->tensor->dtype);
  if (sx != sy) return sx > sy ? -1 : 1;
  return compare_names(x->name, x->name_len, y->name, y->name_len);
}


static int by_pair_key(const void *a, const void *b) {
  return by_key(a, b);
}


static void build_header(buffer *b, const st_item *items, int n,
                         const st_pair *meta, int nmeta) {
  char num[32];
  int first = 1;
  put(b, "{", 1);
  if (nmeta > 0) {
    put_str(b, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i > 0) put(b, ",", 1);
      put_json_string(b, meta[i].key, meta[i].key_len);
      put(b, ":", 1);
      put_json_string(b, meta[i].value, meta[i].value_len);
    }
    put(b, "}", 1);
    first = 0;
  }
  int64_t offset = 0;
  for (int i = 0; i < n; i++) {
    const sae_tensor *t = items[i].tensor;
    int64_t nbytes = tensor_numel(t) * (int64_t)sae_dtype_size(t->dtype);
    if (!first) put(b, ",", 1);
    first = 0;
    put_json_string(b, items[i].name, items[i].name_len);
    put_str(b, t->dtype == SAE_INT64 ? ":{\"dtype\":\"I64\",\"shape\":["
                                     : ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->size[d]);
      put_str(b, num);
    }
    snprintf(num, sizeof num, "%lld", (long long)offset);
    put_str(b, "],\"data_offsets\":[");
    put_str(b, num);
    offset += nbytes;
    snprintf(num, sizeof num, ",%lld]}", (long long)offset);
    put_str(b, num);
  }
  put(b, "}", 1);
  /* Pad with spaces so the data section starts 8-byte aligned. */
  while ((8 + b->len) % 8 != 0) put(b, " ", 1);
}


sae_status st_save(const char *path, st_item *items, int n,
                   st_pair *meta, int nmeta, char *err, size_t errlen) {
  if (n > 1) qsort(items, (size_t)n, sizeof *items, by_file_order);
  if (nmeta > 1) qsort(meta, (size_t)nmeta, sizeof *meta, by_pair_key);

  buffer header = { NULL, 0, 0, 0 };
  build_header(&header, items, n, meta, nmeta);
  if (header.failed) {
    free(header.data);
    return SAE_ENOMEM;
  }

  io_writer w;
  sae_status st = io_writer_open(&w, path, err, errlen);
  if (st != SAE_OK) {
    free(header.data);
    return st;
  }
  unsigned char length[8];
  for (int i = 0; i < 8; i++)
    length[i] = (unsigned char)((uint64_t)header.len >> (8 * i));
  io_write(&w, length, sizeof length);
  io_write(&w, header.data, header.len);
  free(header.data);
  for (int i = 0; i < n; i++) io_write_tensor(&w, items[i].tensor);
  return io_writer_commit(&w, err, errlen);
}
