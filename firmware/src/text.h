/* A bounded text writer: ASCII text into a fixed buffer, flushed to a port function when it fills (DUT replies)
 * or cut with `overflow` set (boot event notes). Numbers are formatted as Python formats them. (Internal header.)
 */
#ifndef WEDGE_TEXT_H
#define WEDGE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wedge_text {
    char *buf;
    size_t cap;
    size_t len;
    int (*flush)(void *ctx, const uint8_t *data, size_t len); /* NULL: cut at cap, set overflow */
    void *ctx;
    bool overflow;
    int error; /* the first error flush returned */
} wedge_text_t;

void wedge_text_init(wedge_text_t *t, char *buf, size_t cap);
void wedge_text_put(wedge_text_t *t, const char *s, size_t n);
void wedge_text_str(wedge_text_t *t, const char *s);
void wedge_text_char(wedge_text_t *t, char c);
void wedge_text_u64(wedge_text_t *t, uint64_t v);
void wedge_text_i64(wedge_text_t *t, int64_t v);
/* Python's f"{v:,}". */
void wedge_text_grouped(wedge_text_t *t, uint64_t v);
/* Python's f"{float(v):.9g}" for a float32 v: nine significant digits, correctly rounded (half to even). */
void wedge_text_f32(wedge_text_t *t, float v);
void wedge_text_hex2(wedge_text_t *t, uint8_t b);
/* Bytes that arrived as text: ASCII kept, every other byte '?' (Python's ascii decode with errors="replace",
 * then its ascii encode with errors="replace"). */
void wedge_text_bytes(wedge_text_t *t, const uint8_t *s, size_t n);
/* Python's repr() of such text (quotes chosen and escapes written as repr does), non-ASCII bytes as '?'. */
void wedge_text_repr(wedge_text_t *t, const uint8_t *s, size_t n);
/* A small printf: %s a C string, %S a wedge_str_t *, %B bytes as text (const uint8_t *, size_t: non-ASCII as '?'),
 * %R the same as Python's repr(), %u uint32_t, %d int32_t, %U uint64_t, %G uint64_t grouped by thousands (Python's
 * `:,`). One call instead of a call per piece keeps the callers small. */
void wedge_text_fmt(wedge_text_t *t, const char *fmt, ...);

/* Send what is buffered (no-op without flush); returns t->error. */
int wedge_text_flush(wedge_text_t *t);
/* NUL-terminate a non-flushing writer's text (the terminator takes the last byte of cap). */
void wedge_text_terminate(wedge_text_t *t);

#endif
