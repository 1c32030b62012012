/*
 * json.h: a strict pull reader for JSON text (RFC 8259) held in memory,
 * used to parse the safetensors header.
 *
 * The caller drives the reader value by value, so nothing is built that
 * the caller does not keep, and memory stays bounded by the caller's
 * own structures. The reader never reads past `end`, rejects invalid
 * UTF-8, control characters in strings and lone surrogates, and limits
 * nesting depth when skipping values, so hostile text cannot blow the
 * stack. On failure a function returns 0 and writes a message with the
 * byte offset into `err`; the caller stops at the first failure.
 */
#ifndef SAE_JSON_H
#define SAE_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

typedef struct json_reader {
  const char *start, *pos, *end;
  char err[200];
} json_reader;

void json_init(json_reader *r, const char *text, size_t len);

/* Skips whitespace and returns the next byte without consuming it, or -1
 * at the end of the text. */
int json_peek(json_reader *r);
/* Skips whitespace and consumes `c`, or fails naming `context` when the
 * next byte differs. */
int json_expect(json_reader *r, char c, const char *context);
/* Skips whitespace and consumes `c` when it comes next. Returns 1 when it
 * did and 0 otherwise, which is not a failure. */
int json_accept(json_reader *r, char c);
/* Requires that only whitespace remains. */
int json_expect_end(json_reader *r);

/* Reads a string value, decoding escapes into `out`, which must have room
 * for the raw length of the string plus a NUL (the remaining text length
 * plus one is always enough). Stores the decoded length (the text may
 * contain NUL through \u0000). */
int json_read_string(json_reader *r, char *out, size_t *outlen);
/* Reads an integer in [0, INT64_MAX] written without fraction or
 * exponent. `what` names the value in messages. */
int json_read_size(json_reader *r, int64_t *v, const char *what);
/* Skips one value of any type (strictly checked), nesting at most
 * JSON_MAX_DEPTH deep. */
int json_skip_value(json_reader *r);

/* Byte offset of the reader in the text (for messages). */
size_t json_offset(const json_reader *r);
/* Records a failure at the current offset and returns 0. */
int json_fail(json_reader *r, const char *what);
/* True when `s` of length `len` is valid UTF-8 (no surrogates, no
 * overlong forms). */
int json_utf8_valid(const char *s, size_t len);

#endif
