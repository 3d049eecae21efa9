/* The bounded text writer, and number formatting byte for byte as Python's format() writes it. */
#include "text.h"

#include <stdarg.h>
#include <string.h>

#include "wedge/manifest.h"
#include "bytes.h"

void wedge_text_init(wedge_text_t *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    t->flush = NULL;
    t->ctx = NULL;
    t->overflow = false;
    t->error = 0;
}

int wedge_text_flush(wedge_text_t *t)
{
    if (t->flush != NULL && t->len > 0) {
        int rc = t->flush(t->ctx, (const uint8_t *)t->buf, t->len);
        if (rc != 0 && t->error == 0) {
            t->error = rc;
        }
        t->len = 0;
    }
    return t->error;
}

void wedge_text_put(wedge_text_t *t, const char *s, size_t n)
{
    while (n > 0) {
        if (t->len == t->cap) {
            if (t->flush == NULL) {
                t->overflow = true;
                return;
            }
            wedge_text_flush(t);
        }
        size_t room = t->cap - t->len;
        size_t take = n < room ? n : room;
        memcpy(t->buf + t->len, s, take);
        t->len += take;
        s += take;
        n -= take;
    }
}

void wedge_text_str(wedge_text_t *t, const char *s)
{
    wedge_text_put(t, s, strlen(s));
}

void wedge_text_char(wedge_text_t *t, char c)
{
    wedge_text_put(t, &c, 1);
}

void wedge_text_terminate(wedge_text_t *t)
{
    if (t->cap == 0) {
        return;
    }
    if (t->len == t->cap) {
        t->len = t->cap - 1;
        t->overflow = true;
    }
    t->buf[t->len] = '\0';
}

/* v / 10 in place, its remainder returned: by 16-bit pieces, so a Cortex-M needs no 64-bit division routine. */
static unsigned div10(uint64_t *v)
{
    uint64_t q = 0;
    uint32_t r = 0;
    for (int shift = 48; shift >= 0; shift -= 16) {
        uint32_t cur = (r << 16) | (uint32_t)((*v >> shift) & 0xFFFFu);
        q |= (uint64_t)(cur / 10u) << shift;
        r = cur % 10u;
    }
    *v = q;
    return r;
}

void wedge_text_u64(wedge_text_t *t, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + div10(&v));
    } while (v != 0);
    wedge_text_put(t, digits + sizeof digits - n, n);
}

void wedge_text_i64(wedge_text_t *t, int64_t v)
{
    if (v < 0) {
        wedge_text_char(t, '-');
        wedge_text_u64(t, (uint64_t)0 - (uint64_t)v);
    } else {
        wedge_text_u64(t, (uint64_t)v);
    }
}

void wedge_text_grouped(wedge_text_t *t, uint64_t v)
{
    char digits[27];
    size_t n = 0;
    unsigned group = 0;
    do {
        if (group == 3) {
            digits[sizeof digits - 1 - n++] = ',';
            group = 0;
        }
        digits[sizeof digits - 1 - n++] = (char)('0' + div10(&v));
        group++;
    } while (v != 0);
    wedge_text_put(t, digits + sizeof digits - n, n);
}

void wedge_text_hex2(wedge_text_t *t, uint8_t b)
{
    static const char hex[] = "0123456789abcdef";
    char pair[2] = {hex[b >> 4], hex[b & 0x0Fu]};
    wedge_text_put(t, pair, 2);
}

void wedge_text_bytes(wedge_text_t *t, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wedge_text_char(t, s[i] < 0x80u ? (char)s[i] : '?');
    }
}

void wedge_text_repr(wedge_text_t *t, const uint8_t *s, size_t n)
{
    bool single = false;
    bool dbl = false;
    for (size_t i = 0; i < n; i++) {
        single |= s[i] == '\'';
        dbl |= s[i] == '"';
    }
    char quote = (single && !dbl) ? '"' : '\'';
    wedge_text_char(t, quote);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == (uint8_t)quote || c == '\\') {
            wedge_text_char(t, '\\');
            wedge_text_char(t, (char)c);
        } else if (c == '\t') {
            wedge_text_str(t, "\\t");
        } else if (c == '\n') {
            wedge_text_str(t, "\\n");
        } else if (c == '\r') {
            wedge_text_str(t, "\\r");
        } else if (c < 0x20u || c == 0x7Fu) {
            wedge_text_str(t, "\\x");
            wedge_text_hex2(t, c);
        } else {
            wedge_text_char(t, c < 0x80u ? (char)c : '?'); /* U+FFFD is printable: repr keeps it, ascii makes '?' */
        }
    }
    wedge_text_char(t, quote);
}

void wedge_text_fmt(wedge_text_t *t, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    for (const char *p = fmt; *p != '\0'; p++) {
        const char *run = p;
        while (*p != '\0' && *p != '%') {
            p++;
        }
        wedge_text_put(t, run, (size_t)(p - run));
        if (*p == '\0') {
            break;
        }
        switch (*++p) {
        case 's':
            wedge_text_str(t, va_arg(args, const char *));
            break;
        case 'S': {
            const wedge_str_t *s = va_arg(args, const wedge_str_t *);
            wedge_text_put(t, s->ptr, s->len);
            break;
        }
        case 'B':
        case 'R': {
            const uint8_t *bytes = va_arg(args, const uint8_t *);
            size_t n = va_arg(args, size_t);
            if (*p == 'B') {
                wedge_text_bytes(t, bytes, n);
            } else {
                wedge_text_repr(t, bytes, n);
            }
            break;
        }
        case 'u':
            wedge_text_u64(t, va_arg(args, uint32_t));
            break;
        case 'd':
            wedge_text_i64(t, va_arg(args, int32_t));
            break;
        case 'U':
            wedge_text_u64(t, va_arg(args, uint64_t));
            break;
        case 'G':
            wedge_text_grouped(t, va_arg(args, uint64_t));
            break;
        default:
            wedge_text_char(t, *p);
            break;
        }
    }
    va_end(args);
}

/* -- %.9g of a float32, exactly ------------------------------------------------------------------------------ */

#define BIG_LIMBS 8 /* m * 10^53 (the smallest subnormal scaled to nine digits) is below 2^201 */

typedef struct {
    uint32_t limb[BIG_LIMBS];
} big_t;

static void big_set(big_t *b, uint32_t v)
{
    memset(b, 0, sizeof *b);
    b->limb[0] = v;
}

static void big_mul(big_t *b, uint32_t factor)
{
    uint64_t carry = 0;
    for (int i = 0; i < BIG_LIMBS; i++) {
        uint64_t x = (uint64_t)b->limb[i] * factor + carry;
        b->limb[i] = (uint32_t)x;
        carry = x >> 32;
    }
}

static void big_shl(big_t *b, unsigned bits)
{
    for (; bits >= 32; bits -= 32) {
        memmove(&b->limb[1], &b->limb[0], sizeof(uint32_t) * (BIG_LIMBS - 1));
        b->limb[0] = 0;
    }
    if (bits == 0) {
        return;
    }
    for (int i = BIG_LIMBS - 1; i > 0; i--) {
        b->limb[i] = (b->limb[i] << bits) | (b->limb[i - 1] >> (32 - bits));
    }
    b->limb[0] <<= bits;
}

static bool big_bit(const big_t *b, unsigned bit)
{
    return bit < 32u * BIG_LIMBS && ((b->limb[bit / 32] >> (bit % 32)) & 1u);
}

static bool big_any_below(const big_t *b, unsigned bit)
{
    for (unsigned i = 0; i < bit && i < 32u * BIG_LIMBS; i++) {
        if (big_bit(b, i)) {
            return true;
        }
    }
    return false;
}

/* b >> bits as a uint64 (the caller knows it fits), or UINT64_MAX when it does not. */
static uint64_t big_shr64(const big_t *b, unsigned bits)
{
    uint64_t q = 0;
    for (unsigned i = 0; i < 64; i++) {
        if (big_bit(b, bits + i)) {
            q |= (uint64_t)1 << i;
        }
    }
    for (unsigned i = bits + 64; i < 32u * BIG_LIMBS; i++) {
        if (big_bit(b, i)) {
            return UINT64_MAX;
        }
    }
    return q;
}

static uint32_t big_div10(big_t *b)
{
    uint32_t rem = 0;
    for (int i = BIG_LIMBS - 1; i >= 0; i--) {
        uint32_t hi = (rem << 16) | (b->limb[i] >> 16);
        uint32_t lo = ((hi % 10u) << 16) | (b->limb[i] & 0xFFFFu);
        b->limb[i] = ((hi / 10u) << 16) | (lo / 10u);
        rem = lo % 10u;
    }
    return rem;
}

/* floor(m * 2^e * 10^p) and whether the rest is above, at, or below one half (round half to even after). */
static uint64_t scaled(uint32_t m, int e, int p, int *half, bool *sticky)
{
    big_t b;
    big_set(&b, m);
    *half = 0;
    *sticky = false;
    if (p >= 0) {
        for (int i = 0; i < p; i++) {
            big_mul(&b, 10u);
        }
        if (e >= 0) {
            big_shl(&b, (unsigned)e);
            return big_shr64(&b, 0);
        }
        unsigned s = (unsigned)-e;
        *half = big_bit(&b, s - 1) ? 1 : 0;
        *sticky = big_any_below(&b, s - 1);
        return big_shr64(&b, s);
    }
    big_shl(&b, (unsigned)e); /* p < 0 means a value of 1e9 or more: e >= 6 */
    uint32_t digit = 0;
    for (int i = 0; i < -p; i++) {
        *sticky |= digit != 0;
        digit = big_div10(&b);
    }
    *half = digit > 5 ? 2 : (digit == 5 ? 1 : 0);
    return big_shr64(&b, 0);
}

static int floor_div(int a, int b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

void wedge_text_f32(wedge_text_t *t, float v)
{
    uint32_t bits = wedge_f32_bits(v);
    uint32_t exp_bits = (bits >> 23) & 0xFFu;
    uint32_t m = bits & 0x7FFFFFu;
    if (exp_bits == 0xFFu) {
        wedge_text_str(t, m != 0 ? "nan" : (bits >> 31) ? "-inf" : "inf");
        return;
    }
    if (bits >> 31) {
        wedge_text_char(t, '-');
    }
    if (exp_bits == 0 && m == 0) {
        wedge_text_char(t, '0');
        return;
    }
    int e;
    if (exp_bits == 0) {
        e = -149;
    } else {
        m |= 0x800000u;
        e = (int)exp_bits - 150;
    }
    int top = 31;
    while (!((m >> top) & 1u)) {
        top--;
    }
    int k = floor_div((e + top) * 78913, 262144); /* floor(log10(2^b)), corrected below */
    uint64_t q;
    int half;
    bool sticky;
    for (;;) {
        q = scaled(m, e, 8 - k, &half, &sticky);
        if (q >= 1000000000u) {
            k++;
        } else if (q < 100000000u) {
            k--;
        } else {
            break;
        }
    }
    if (half == 2 || (half == 1 && (sticky || (q & 1u)))) {
        q++;
        if (q == 1000000000u) {
            q = 100000000u;
            k++;
        }
    }
    char digits[9];
    uint32_t q32 = (uint32_t)q; /* nine digits */
    for (int i = 8; i >= 0; i--) {
        digits[i] = (char)('0' + q32 % 10u);
        q32 /= 10u;
    }
    int n = 9;
    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }
    if (k >= -4 && k < 9) {
        if (k >= 0) {
            int whole = k + 1;
            wedge_text_put(t, digits, (size_t)(whole < n ? whole : n));
            for (int i = n; i < whole; i++) {
                wedge_text_char(t, '0');
            }
            if (n > whole) {
                wedge_text_char(t, '.');
                wedge_text_put(t, digits + whole, (size_t)(n - whole));
            }
        } else {
            wedge_text_str(t, "0.");
            for (int i = 0; i < -k - 1; i++) {
                wedge_text_char(t, '0');
            }
            wedge_text_put(t, digits, (size_t)n);
        }
        return;
    }
    wedge_text_char(t, digits[0]);
    if (n > 1) {
        wedge_text_char(t, '.');
        wedge_text_put(t, digits + 1, (size_t)(n - 1));
    }
    wedge_text_char(t, 'e');
    wedge_text_char(t, k < 0 ? '-' : '+');
    int mag = k < 0 ? -k : k;
    if (mag < 10) {
        wedge_text_char(t, '0');
    }
    wedge_text_u64(t, (uint64_t)mag);
}
