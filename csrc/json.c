/*
 * json.c: the strict pull reader declared in json.h.
 */
#include "json.h"

#include <stdio.h>
#include <string.h>


void json_init(json_reader *r, const char *text, size_t len) {
  r->start = text;
  r->pos = text;
  r->end = text + len;
  r->err[0] = '\0';
}


size_t json_offset(const json_reader *r) {
  return (size_t)(r->pos - r->start);
}


int json_fail(json_reader *r, const char *what) {
  snprintf(r->err, sizeof r->err, "invalid JSON at byte %zu: %s",
           json_offset(r), what);
  return 0;
}


static void skip_ws(json_reader *r) {
  while (r->pos < r->end && (*r->pos == ' ' || *r->pos == '\t' ||
                             *r->pos == '\n' || *r->pos == '\r'))
    r->pos++;
}


int json_peek(json_reader *r) {
  skip_ws(r);
  return r->pos < r->end ? (unsigned char)*r->pos : -1;
}


int json_expect(json_reader *r, char c, const char *context) {
  char msg[120];
  if (json_peek(r) == (unsigned char)c) {
    r->pos++;
    return 1;
  }
  if (r->pos == r->end)
    snprintf(msg, sizeof msg, "expected '%c' %s, got the end of the text", c,
             context);
  else
    snprintf(msg, sizeof msg, "expected '%c' %s", c, context);
  return json_fail(r, msg);
}


int json_accept(json_reader *r, char c) {
  if (json_peek(r) != (unsigned char)c) return 0;
  r->pos++;
  return 1;
}


int json_expect_end(json_reader *r) {
  if (json_peek(r) != -1) return json_fail(r, "unexpected text after the value");
  return 1;
}


/* Length of the UTF-8 sequence at s (at most n bytes available), or 0
 * when it is invalid: overlong, a surrogate, above U+10FFFF or cut off. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (n < len) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return len;
}


int json_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    size_t k = utf8_sequence(p + i, len - i);
    if (k == 0) return 0;
    i += k;
  }
  return 1;
}


static int hex4(json_reader *r, unsigned *v) {
  if (r->end - r->pos < 4) return json_fail(r, "truncated \\u escape");
  unsigned x = 0;
  for (int i = 0; i < 4; i++) {
    char c = r->pos[i];
    x <<= 4;
    if (c >= '0' && c <= '9') x |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') x |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') x |= (unsigned)(c - 'A' + 10);
    else return json_fail(r, "invalid hex digit in a \\u escape");
  }
  r->pos += 4;
  *v = x;
  return 1;
}


static size_t put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}


/* Decodes one escape after the backslash into out and returns the bytes
 * written, or 0 on failure. Every escape is at least 2 raw bytes and
 * writes at most as many bytes as it consumed, so `out` never outruns
 * the raw text. */
static size_t read_escape(json_reader *r, char *out) {
  if (r->pos == r->end) return (size_t)json_fail(r, "truncated escape");
  char c = *r->pos++;
  switch (c) {
  case '"': case '\\': case '/': out[0] = c; return 1;
  case 'b': out[0] = '\b'; return 1;
  case 'f': out[0] = '\f'; return 1;
  case 'n': out[0] = '\n'; return 1;
  case 'r': out[0] = '\r'; return 1;
  case 't': out[0] = '\t'; return 1;
  case 'u': break;
  default: return (size_t)json_fail(r, "invalid escape in a string");
  }
  unsigned cp;
  if (!hex4(r, &cp)) return 0;
  if (cp >= 0xDC00 && cp <= 0xDFFF)
    return (size_t)json_fail(r, "lone low surrogate in a \\u escape");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    unsigned lo;
    if (r->end - r->pos < 2 || r->pos[0] != '\\' || r->pos[1] != 'u')
      return (size_t)json_fail(r, "lone high surrogate in a \\u escape");
    r->pos += 2;
    if (!hex4(r, &lo)) return 0;
    if (lo < 0xDC00 || lo > 0xDFFF)
      return (size_t)json_fail(r, "high surrogate not followed by a low one");
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  return put_utf8(out, cp);
}


int json_read_string(json_reader *r, char *out, size_t *outlen) {
  if (json_peek(r) != '"') return json_fail(r, "expected a string");
  r->pos++;
  size_t n = 0;
  for (;;) {
    if (r->pos == r->end) return json_fail(r, "unterminated string");
    unsigned char c = (unsigned char)*r->pos;
    if (c == '"') {
      r->pos++;
      break;
    }
    if (c < 0x20) return json_fail(r, "control character in a string");
    if (c == '\\') {
      r->pos++;
      size_t k = read_escape(r, out + n);
      if (k == 0) return 0;
      n += k;
      continue;
    }
    size_t k = utf8_sequence((const unsigned char *)r->pos,
                             (size_t)(r->end - r->pos));
    if (k == 0) return json_fail(r, "invalid UTF-8 in a string");
    memcpy(out + n, r->pos, k);
    n += k;
    r->pos += k;
  }
  out[n] = '\0';
  *outlen = n;
  return 1;
}


/* Scans a number per the JSON grammar and reports whether it has a minus
 * sign and whether it is written as an integer. */
static int scan_number(json_reader *r, int *negative, int *integral) {
  const char *p = r->pos, *e = r->end;
  *negative = 0;
  *integral = 1;
  if (p < e && *p == '-') {
    *negative = 1;
    p++;
  }
  if (p == e || *p < '0' || *p > '9') return json_fail(r, "invalid number");
  if (*p == '0') p++;
  else while (p < e && *p >= '0' && *p <= '9') p++;
  if (p < e && *p == '.') {
    *integral = 0;
    p++;
    if (p == e || *p < '0' || *p > '9')
      return json_fail(r, "invalid number: no digit after '.'");
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    *integral = 0;
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    if (p == e || *p < '0' || *p > '9')
      return json_fail(r, "invalid number: no digit in the exponent");
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  r->pos = p;
  return 1;
}


int json_read_size(json_reader *r, int64_t *v, const char *what) {
  char msg[160];
  int c = json_peek(r);
  if (c != '-' && (c < '0' || c > '9')) {
    snprintf(msg, sizeof msg, "%s expected a non-negative integer", what);
    return json_fail(r, msg);
  }
  const char *begin = r->pos;
  int negative, integral;
  if (!scan_number(r, &negative, &integral)) return 0;
  int len = (int)(r->pos - begin > 40 ? 40 : r->pos - begin);
  if (negative || !integral) {
    r->pos = begin;
    snprintf(msg, sizeof msg, "%s expected a non-negative integer, got %.*s",
             what, len, begin);
    return json_fail(r, msg);
  }
  int64_t x = 0;
  for (const char *p = begin; p < r->pos; p++) {
    int d = *p - '0';
    if (x > (INT64_MAX - d) / 10) {
      r->pos = begin;
      snprintf(msg, sizeof msg, "%s is too large: %.*s", what, len, begin);
      return json_fail(r, msg);
    }
    x = x * 10 + d;
  }
  *v = x;
  return 1;
}


static int match_literal(json_reader *r, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(r->end - r->pos) < n || memcmp(r->pos, word, n) != 0)
    return json_fail(r, "invalid literal");
  r->pos += n;
  return 1;
}


static int skip_string(json_reader *r) {
  r->pos++;   /* opening quote, checked by the caller */
  for (;;) {
    if (r->pos == r->end) return json_fail(r, "unterminated string");
    unsigned char c = (unsigned char)*r->pos;
    if (c == '"') {
      r->pos++;
      return 1;
    }
    if (c < 0x20) return json_fail(r, "control character in a string");
    if (c == '\\') {
      char scratch[4];
      r->pos++;
      if (read_escape(r, scratch) == 0) return 0;
      continue;
    }
    size_t k = utf8_sequence((const unsigned char *)r->pos,
                             (size_t)(r->end - r->pos));
    if (k == 0) return json_fail(r, "invalid UTF-8 in a string");
    r->pos += k;
  }
}


static int skip_value(json_reader *r, int depth) {
  int negative, integral;
  int c = json_peek(r);
  switch (c) {
  case -1: return json_fail(r, "expected a value, got the end of the text");
  case '"': return skip_string(r);
  case 't': return match_literal(r, "true");
  case 'f': return match_literal(r, "false");
  case 'n': return match_literal(r, "null");
  case '[': case '{':
    break;
  default:
    if (c == '-' || (c >= '0' && c <= '9'))
      return scan_number(r, &negative, &integral);
    return json_fail(r, "expected a value");
  }
  if (depth >= JSON_MAX_DEPTH) return json_fail(r, "nesting too deep");
  r->pos++;
  char close = c == '[' ? ']' : '}';
  if (json_accept(r, close)) return 1;
  do {
    if (c == '{') {
      if (json_peek(r) != '"') return json_fail(r, "expected an object key");
      if (!skip_string(r)) return 0;
      if (!json_expect(r, ':', "after an object key")) return 0;
    }
    if (!skip_value(r, depth + 1)) return 0;
  } while (json_accept(r, ','));
  return json_expect(r, close, c == '[' ? "to close an array"
                                        : "to close an object");
}


int json_skip_value(json_reader *r) {
  return skip_value(r, 0);
}
