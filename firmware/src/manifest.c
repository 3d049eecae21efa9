/* The model manifest reader: wedge/firmware/image/manifest.py's CBOR map, decoded with zcbor and validated field
 * by field. Two passes over the map: the first finds `format` (format 1 ignores `image` and `ops`, whatever they
 * hold), the second reads the fields. Every value, also of keys it does not know, is walked (UTF-8 checked, depth
 * bounded), so what it accepts is what the Python reader accepts.
 */
#include "wedge/manifest.h"

#include <string.h>

#include "wedge/wedge_err.h"
#include "zcbor_decode.h"

enum { MAJOR_UINT = 0, MAJOR_NINT = 1, MAJOR_BSTR = 2, MAJOR_TSTR = 3, MAJOR_LIST = 4, MAJOR_MAP = 5,
       MAJOR_TAG = 6, MAJOR_SIMPLE = 7 };
#define ADDITIONAL_INDEFINITE 31u

typedef struct reader {
    zcbor_state_t *zs;
    wedge_manifest_field_t field; /* the field being read, named when it fails */
    unsigned depth;
} reader_t;

static const char *const FIELD_NAMES[WEDGE_MF_COUNT] = {
    "", "map", "format", "image", "model_name", "model_version", "board", "runtime", "inputs", "outputs",
    "labels", "arena_bytes", "model_bytes", "model_sha256", "signer_key", "ops",
};

const char *wedge_manifest_field_name(wedge_manifest_field_t field)
{
    return (unsigned)field < WEDGE_MF_COUNT ? FIELD_NAMES[field] : "";
}

bool wedge_str_eq(wedge_str_t a, const char *b, size_t b_len)
{
    return a.len == b_len && (b_len == 0 || memcmp(a.ptr, b, b_len) == 0);
}

/* Strict UTF-8, as Python decodes it: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t more;
        uint8_t lo = 0x80u;
        uint8_t hi = 0xBFu;
        if (c < 0x80u) {
            i++;
            continue;
        } else if (c >= 0xC2u && c <= 0xDFu) {
            more = 1;
        } else if (c >= 0xE0u && c <= 0xEFu) {
            more = 2;
            lo = c == 0xE0u ? 0xA0u : 0x80u;
            hi = c == 0xEDu ? 0x9Fu : 0xBFu;
        } else if (c >= 0xF0u && c <= 0xF4u) {
            more = 3;
            lo = c == 0xF0u ? 0x90u : 0x80u;
            hi = c == 0xF4u ? 0x8Fu : 0xBFu;
        } else {
            return false;
        }
        if (n - i <= more) {
            return false;
        }
        if (s[i + 1] < lo || s[i + 1] > hi) {
            return false;
        }
        for (size_t k = 2; k <= more; k++) {
            if ((s[i + k] & 0xC0u) != 0x80u) {
                return false;
            }
        }
        i += more + 1;
    }
    return true;
}

/* The major type and additional info of the next item; false at the end of the payload. */
static bool peek(const reader_t *r, unsigned *major, unsigned *additional)
{
    if (r->zs->payload >= r->zs->payload_end) {
        return false;
    }
    *major = *r->zs->payload >> 5;
    *additional = *r->zs->payload & 0x1Fu;
    return true;
}

/* What a failed zcbor call means for the caller. */
static int zcbor_failure(const reader_t *r)
{
    int err = zcbor_peek_error(r->zs);
    if (err == ZCBOR_ERR_INT_SIZE || err == ZCBOR_ERR_NO_BACKUP_MEM) {
        return WEDGE_ERR_UNSUPPORTED;
    }
    return WEDGE_ERR_MALFORMED;
}

/* A tag, an indefinite-length string: valid CBOR this reader does not take. Otherwise the wrong type. */
static int wrong_type(unsigned major, unsigned additional, unsigned expected_major)
{
    if (major == MAJOR_TAG) {
        return WEDGE_ERR_UNSUPPORTED;
    }
    if (major == expected_major && additional == ADDITIONAL_INDEFINITE) {
        return WEDGE_ERR_UNSUPPORTED;
    }
    return WEDGE_ERR_MALFORMED;
}

static int read_text(reader_t *r, wedge_str_t *out)
{
    unsigned major;
    unsigned additional;
    if (!peek(r, &major, &additional)) {
        return WEDGE_ERR_MALFORMED;
    }
    if (major != MAJOR_TSTR || additional == ADDITIONAL_INDEFINITE) {
        return wrong_type(major, additional, MAJOR_TSTR);
    }
    struct zcbor_string s;
    if (!zcbor_tstr_decode(r->zs, &s)) {
        return zcbor_failure(r);
    }
    if (!utf8_valid(s.value, s.len) || s.len > UINT32_MAX) {
        return WEDGE_ERR_MALFORMED;
    }
    out->ptr = (const char *)s.value;
    out->len = (uint32_t)s.len;
    return WEDGE_OK;
}

/* An integer (never a bool). A float is the wrong type, except where Python compares by value (`format`). */
static int read_int(reader_t *r, int64_t *out, bool float_compares)
{
    unsigned major;
    unsigned additional;
    if (!peek(r, &major, &additional)) {
        return WEDGE_ERR_MALFORMED;
    }
    if (major == MAJOR_SIMPLE && float_compares && additional >= 25u && additional <= 27u) {
        return WEDGE_ERR_UNSUPPORTED;
    }
    if (major != MAJOR_UINT && major != MAJOR_NINT) {
        return wrong_type(major, additional, MAJOR_UINT);
    }
    if (!zcbor_int64_decode(r->zs, out)) {
        return zcbor_failure(r);
    }
    return WEDGE_OK;
}

static int read_int32(reader_t *r, int32_t *out)
{
    int64_t v;
    int rc = read_int(r, &v, false);
    if (rc != WEDGE_OK) {
        return rc;
    }
    if (v < INT32_MIN || v > INT32_MAX) {
        return WEDGE_ERR_UNSUPPORTED;
    }
    *out = (int32_t)v;
    return WEDGE_OK;
}

static int read_size(reader_t *r, uint32_t *out)
{
    int64_t v;
    int rc = read_int(r, &v, false);
    if (rc != WEDGE_OK) {
        return rc;
    }
    if (v < 0 || v > (int64_t)UINT32_MAX) {
        return WEDGE_ERR_UNSUPPORTED;
    }
    *out = (uint32_t)v;
    return WEDGE_OK;
}

/* FLT_MAX as a float64's bits: a positive float64 is larger exactly when its bits are. */
#define F64_BITS_OF_FLT_MAX UINT64_C(0x47EFFFFFE0000000)

/* A float64's nearest float32 (round half to even, as numpy's float32() rounds), from its bits: no soft-float
 * double routines on a single-precision FPU. */
static float f64_to_f32(uint64_t b)
{
    uint32_t sign = (uint32_t)(b >> 63) << 31;
    int exp = (int)((b >> 52) & 0x7FFu);
    uint64_t man = b & ((UINT64_C(1) << 52) - 1u);
    uint32_t bits;
    if (exp == 0x7FF) {
        bits = sign | 0x7F800000u | (man != 0 ? 0x400000u | (uint32_t)(man >> 29) : 0u);
    } else if (exp == 0) {
        bits = sign; /* zero, or a double subnormal: far below half the smallest float32 */
    } else {
        int e = exp - 1023 + 127;
        unsigned shift = 29;
        if (e <= 0) {
            shift += (unsigned)(1 - e);
            e = 0;
        }
        if (e >= 0xFF || shift > 60) {
            bits = sign | (e >= 0xFF ? 0x7F800000u : 0u);
        } else {
            uint64_t m = man | (UINT64_C(1) << 52);
            uint64_t q = m >> shift;
            uint64_t rest = m & ((UINT64_C(1) << shift) - 1u);
            uint64_t half = UINT64_C(1) << (shift - 1u);
            if (rest > half || (rest == half && (q & 1u))) {
                q++;
            }
            bits = sign | (((uint32_t)e << 23) + (uint32_t)q - (e > 0 ? (1u << 23) : 0u));
        }
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A scale: a float, or an integer (Python takes both). */
static int read_number(reader_t *r, float *out)
{
    unsigned major;
    unsigned additional;
    if (!peek(r, &major, &additional)) {
        return WEDGE_ERR_MALFORMED;
    }
    if (major == MAJOR_UINT || major == MAJOR_NINT) {
        int32_t v;
        int rc = read_int32(r, &v);
        *out = (float)v;
        return rc;
    }
    if (major == MAJOR_SIMPLE && (additional == 25u || additional == 26u)) {
        if (!zcbor_float16_32_decode(r->zs, out)) {
            return zcbor_failure(r);
        }
        uint32_t bits;
        memcpy(&bits, out, sizeof bits);
        return (bits & 0x7F800000u) == 0x7F800000u ? WEDGE_ERR_MALFORMED : WEDGE_OK; /* Inf or NaN */
    }
    if (major == MAJOR_SIMPLE && additional == 27u) {
        double d;
        uint64_t bits;
        if (!zcbor_float64_decode(r->zs, &d)) {
            return zcbor_failure(r);
        }
        memcpy(&bits, &d, sizeof bits);
        if ((bits & ~(UINT64_C(1) << 63)) > F64_BITS_OF_FLT_MAX) {
            return WEDGE_ERR_MALFORMED; /* Inf, NaN, or past float32: not a scale (compared as bits, no soft double) */
        }
        *out = f64_to_f32(bits);
        return WEDGE_OK;
    }
    if (major == MAJOR_SIMPLE && (additional == 20u || additional == 21u)) {
        return WEDGE_ERR_UNSUPPORTED; /* a bool: Python counts it as a number */
    }
    return wrong_type(major, additional, MAJOR_UINT);
}

static int read_digest(reader_t *r, const uint8_t **out)
{
    unsigned major;
    unsigned additional;
    if (!peek(r, &major, &additional)) {
        return WEDGE_ERR_MALFORMED;
    }
    if (major != MAJOR_BSTR || additional == ADDITIONAL_INDEFINITE) {
        return wrong_type(major, additional, MAJOR_BSTR);
    }
    struct zcbor_string s;
    if (!zcbor_bstr_decode(r->zs, &s)) {
        return zcbor_failure(r);
    }
    if (s.len != WEDGE_DIGEST_BYTES) {
        return WEDGE_ERR_UNSUPPORTED;
    }
    *out = s.value;
    return WEDGE_OK;
}

static int start(reader_t *r, unsigned expected_major)
{
    unsigned major;
    unsigned additional;
    if (!peek(r, &major, &additional)) {
        return WEDGE_ERR_MALFORMED;
    }
    if (major != expected_major) {
        return major == MAJOR_TAG ? WEDGE_ERR_UNSUPPORTED : WEDGE_ERR_MALFORMED;
    }
    if (r->depth >= WEDGE_CBOR_MAX_DEPTH) {
        return WEDGE_ERR_UNSUPPORTED;
    }
    bool ok = expected_major == MAJOR_MAP ? zcbor_map_start_decode(r->zs) : zcbor_list_start_decode(r->zs);
    if (!ok) {
        return zcbor_failure(r);
    }
    r->depth++;
    return WEDGE_OK;
}

static int end(reader_t *r, unsigned major)
{
    bool ok = major == MAJOR_MAP ? zcbor_map_end_decode(r->zs) : zcbor_list_end_decode(r->zs);
    if (!ok) {
        return zcbor_failure(r);
    }
    r->depth--;
    return WEDGE_OK;
}

/* Walk over one item of any type, as cbor2 would decode it (text must be UTF-8); tags and simple values other
 * than false/true/null/undefined are refused. */
static int skip(reader_t *r)
{
    unsigned major;
    unsigned additional;
    if (!peek(r, &major, &additional)) {
        return WEDGE_ERR_MALFORMED;
    }
    switch (major) {
    case MAJOR_UINT:
    case MAJOR_NINT:
    case MAJOR_BSTR:
        if (additional == ADDITIONAL_INDEFINITE) {
            return major == MAJOR_BSTR ? WEDGE_ERR_UNSUPPORTED : WEDGE_ERR_MALFORMED;
        }
        return zcbor_any_skip(r->zs, NULL) ? WEDGE_OK : zcbor_failure(r);
    case MAJOR_TSTR: {
        wedge_str_t unused;
        return read_text(r, &unused);
    }
    case MAJOR_LIST:
    case MAJOR_MAP: {
        int rc = start(r, major);
        while (rc == WEDGE_OK && !zcbor_array_at_end(r->zs)) {
            rc = skip(r);
        }
        return rc == WEDGE_OK ? end(r, major) : rc;
    }
    case MAJOR_TAG:
        return WEDGE_ERR_UNSUPPORTED;
    default:
        if (additional >= 20u && additional <= 23u) { /* false, true, null, undefined */
            return zcbor_any_skip(r->zs, NULL) ? WEDGE_OK : zcbor_failure(r);
        }
        if (additional >= 25u && additional <= 27u) { /* floats */
            return zcbor_any_skip(r->zs, NULL) ? WEDGE_OK : zcbor_failure(r);
        }
        return additional == 24u ? WEDGE_ERR_UNSUPPORTED : WEDGE_ERR_MALFORMED;
    }
}

/* A list of text: counted, the first `cap` kept (RANGE when more come and `cap_is_limit`). */
static int read_strings(reader_t *r, wedge_str_t *kept, uint32_t cap, uint32_t *count, bool cap_is_limit)
{
    int rc = start(r, MAJOR_LIST);
    uint32_t n = 0;
    while (rc == WEDGE_OK && !zcbor_array_at_end(r->zs)) {
        wedge_str_t s;
        rc = read_text(r, &s);
        if (rc == WEDGE_OK) {
            if (n < cap) {
                kept[n] = s;
            } else if (cap_is_limit) {
                rc = WEDGE_ERR_RANGE;
            }
            n++;
        }
    }
    if (rc != WEDGE_OK) {
        return rc;
    }
    *count = n;
    return end(r, MAJOR_LIST);
}

enum { TF_NAME, TF_SHAPE, TF_DTYPE, TF_SCALES, TF_ZERO_POINTS, TF_AXIS, TF_COUNT };
static const char *const TENSOR_KEYS[TF_COUNT] = {"name", "shape", "dtype", "scales", "zero_points", "axis"};

static int key_index(wedge_str_t key, const char *const *names, int count)
{
    for (int i = 0; i < count; i++) {
        if (wedge_str_eq(key, names[i], strlen(names[i]))) {
            return i;
        }
    }
    return -1;
}

/* A map key: text (a key of another type is refused, not skipped). */
static int read_key(reader_t *r, wedge_str_t *key)
{
    unsigned major;
    unsigned additional;
    if (!peek(r, &major, &additional)) {
        return WEDGE_ERR_MALFORMED;
    }
    if (major != MAJOR_TSTR) {
        return major == MAJOR_SIMPLE && additional == ADDITIONAL_INDEFINITE ? WEDGE_ERR_MALFORMED
                                                                            : WEDGE_ERR_UNSUPPORTED;
    }
    return read_text(r, key);
}

static int read_tensor_field(reader_t *r, int field, wedge_tensor_t *t)
{
    int rc;
    uint32_t n = 0;
    switch (field) {
    case TF_NAME:
        return read_text(r, &t->name);
    case TF_DTYPE:
        return read_text(r, &t->dtype);
    case TF_AXIS:
        return read_int32(r, &t->axis);
    case TF_SHAPE:
        rc = start(r, MAJOR_LIST);
        while (rc == WEDGE_OK && !zcbor_array_at_end(r->zs)) {
            int32_t dim = 0;
            rc = read_int32(r, &dim);
            if (rc == WEDGE_OK && dim < -1) {
                rc = WEDGE_ERR_MALFORMED; /* -1 marks a dynamic dimension; nothing is smaller */
            }
            if (rc == WEDGE_OK && n >= WEDGE_MANIFEST_MAX_DIMS) {
                rc = WEDGE_ERR_RANGE;
            }
            if (rc == WEDGE_OK) {
                t->shape[n++] = dim;
            }
        }
        t->n_dims = (uint8_t)n;
        return rc == WEDGE_OK ? end(r, MAJOR_LIST) : rc;
    case TF_SCALES:
        rc = start(r, MAJOR_LIST);
        while (rc == WEDGE_OK && !zcbor_array_at_end(r->zs)) {
            float scale = 0.0f;
            rc = read_number(r, &scale);
            if (rc == WEDGE_OK && n == UINT16_MAX) {
                rc = WEDGE_ERR_RANGE;
            }
            if (rc == WEDGE_OK) {
                if (n < WEDGE_MANIFEST_MAX_QPARAMS) {
                    t->scales[n] = scale;
                }
                n++;
            }
        }
        t->n_scales = (uint16_t)n;
        return rc == WEDGE_OK ? end(r, MAJOR_LIST) : rc;
    default: /* TF_ZERO_POINTS */
        rc = start(r, MAJOR_LIST);
        while (rc == WEDGE_OK && !zcbor_array_at_end(r->zs)) {
            int32_t zp = 0;
            rc = read_int32(r, &zp);
            if (rc == WEDGE_OK && n == UINT16_MAX) {
                rc = WEDGE_ERR_RANGE;
            }
            if (rc == WEDGE_OK) {
                if (n < WEDGE_MANIFEST_MAX_QPARAMS) {
                    t->zero_points[n] = zp;
                }
                n++;
            }
        }
        t->n_zero_points = (uint16_t)n;
        return rc == WEDGE_OK ? end(r, MAJOR_LIST) : rc;
    }
}

static int read_tensor(reader_t *r, wedge_tensor_t *t)
{
    memset(t, 0, sizeof *t);
    int rc = start(r, MAJOR_MAP);
    unsigned seen = 0;
    while (rc == WEDGE_OK && !zcbor_array_at_end(r->zs)) {
        wedge_str_t key;
        rc = read_key(r, &key);
        if (rc != WEDGE_OK) {
            break;
        }
        int field = key_index(key, TENSOR_KEYS, TF_COUNT);
        if (field < 0) {
            rc = skip(r);
        } else if (seen & (1u << field)) {
            rc = WEDGE_ERR_UNSUPPORTED;
        } else {
            seen |= 1u << field;
            rc = read_tensor_field(r, field, t);
        }
    }
    if (rc != WEDGE_OK) {
        return rc;
    }
    if (seen != (1u << TF_COUNT) - 1u) {
        return WEDGE_ERR_MALFORMED;
    }
    return end(r, MAJOR_MAP);
}

static int read_tensors(reader_t *r, wedge_tensor_t *tensors, uint8_t *count)
{
    int rc = start(r, MAJOR_LIST);
    unsigned n = 0;
    while (rc == WEDGE_OK && !zcbor_array_at_end(r->zs)) {
        unsigned major;
        unsigned additional;
        if (!peek(r, &major, &additional)) {
            return WEDGE_ERR_MALFORMED;
        }
        if (major != MAJOR_MAP) {
            return major == MAJOR_TAG ? WEDGE_ERR_UNSUPPORTED : WEDGE_ERR_MALFORMED;
        }
        if (n >= WEDGE_MANIFEST_MAX_TENSORS) {
            return WEDGE_ERR_RANGE;
        }
        rc = read_tensor(r, &tensors[n++]);
    }
    if (rc != WEDGE_OK) {
        return rc;
    }
    *count = (uint8_t)n;
    return end(r, MAJOR_LIST);
}

static int read_field(reader_t *r, wedge_manifest_field_t field, wedge_manifest_t *m)
{
    int64_t v;
    int rc;
    switch (field) {
    case WEDGE_MF_FORMAT:
        rc = read_int(r, &v, true);
        if (rc == WEDGE_OK && v != 1 && v != 2) {
            rc = WEDGE_ERR_VERSION;
        }
        if (rc == WEDGE_OK) {
            m->format = (uint8_t)v;
        }
        return rc;
    case WEDGE_MF_IMAGE:
        rc = read_int(r, &v, false);
        if (rc == WEDGE_OK && (v < 0 || v > 15)) {
            rc = WEDGE_ERR_MALFORMED;
        }
        if (rc == WEDGE_OK) {
            m->image = (uint8_t)v;
        }
        return rc;
    case WEDGE_MF_MODEL_NAME:
        return read_text(r, &m->model_name);
    case WEDGE_MF_MODEL_VERSION:
        return read_text(r, &m->model_version);
    case WEDGE_MF_BOARD:
        return read_text(r, &m->board);
    case WEDGE_MF_RUNTIME:
        return read_text(r, &m->runtime);
    case WEDGE_MF_INPUTS:
        return read_tensors(r, m->inputs, &m->n_inputs);
    case WEDGE_MF_OUTPUTS:
        return read_tensors(r, m->outputs, &m->n_outputs);
    case WEDGE_MF_LABELS:
        return read_strings(r, NULL, 0, &m->n_labels, false);
    case WEDGE_MF_ARENA_BYTES:
        return read_size(r, &m->arena_bytes);
    case WEDGE_MF_MODEL_BYTES:
        return read_size(r, &m->model_bytes);
    case WEDGE_MF_MODEL_SHA256:
        return read_digest(r, &m->model_sha256);
    case WEDGE_MF_SIGNER_KEY:
        return read_digest(r, &m->signer_key);
    default: { /* WEDGE_MF_OPS */
        uint32_t n = 0;
        rc = read_strings(r, m->ops, WEDGE_MANIFEST_MAX_OPS, &n, true);
        m->n_ops = (uint16_t)n;
        m->has_ops = rc == WEDGE_OK;
        return rc;
    }
    }
}

static wedge_manifest_field_t field_of(wedge_str_t key)
{
    int i = key_index(key, FIELD_NAMES + WEDGE_MF_FORMAT, WEDGE_MF_COUNT - WEDGE_MF_FORMAT);
    return i < 0 ? WEDGE_MF_NONE : (wedge_manifest_field_t)(i + WEDGE_MF_FORMAT);
}

/* One pass over the top-level map. With `format_only`, only `format` is read (the rest walked). */
static int pass(reader_t *r, wedge_manifest_t *m, bool format_only, uint32_t *seen)
{
    r->field = WEDGE_MF_MAP;
    int rc = start(r, MAJOR_MAP);
    *seen = 0;
    while (rc == WEDGE_OK && !zcbor_array_at_end(r->zs)) {
        wedge_str_t key;
        r->field = WEDGE_MF_MAP;
        rc = read_key(r, &key);
        if (rc != WEDGE_OK) {
            break;
        }
        wedge_manifest_field_t field = field_of(key);
        bool ignored = field == WEDGE_MF_NONE || (format_only && field != WEDGE_MF_FORMAT) ||
                       (!format_only && m->format == 1 && (field == WEDGE_MF_IMAGE || field == WEDGE_MF_OPS));
        if (field != WEDGE_MF_NONE) {
            r->field = field;
            if (*seen & (1u << field)) {
                rc = WEDGE_ERR_UNSUPPORTED;
                break;
            }
            *seen |= 1u << field;
        }
        rc = ignored ? skip(r) : read_field(r, field, m);
    }
    if (rc != WEDGE_OK) {
        return rc;
    }
    r->field = WEDGE_MF_MAP;
    rc = end(r, MAJOR_MAP);
    if (rc == WEDGE_OK && r->zs->payload != r->zs->payload_end) {
        rc = WEDGE_ERR_UNSUPPORTED; /* bytes after the map */
    }
    return rc;
}

int wedge_manifest_read(const uint8_t *cbor, size_t len, wedge_manifest_t *out, wedge_manifest_field_t *bad)
{
    wedge_manifest_field_t unused;
    if (bad == NULL) {
        bad = &unused;
    }
    *bad = WEDGE_MF_MAP;
    if (cbor == NULL || out == NULL) {
        return WEDGE_ERR_INVAL;
    }
    memset(out, 0, sizeof *out);
    reader_t r = {0};
    uint32_t seen;
    for (int round = 0; round < 2; round++) {
        ZCBOR_STATE_D(zs, WEDGE_CBOR_MAX_DEPTH, cbor, len, 1, 0);
        zs->constant_state->enforce_canonical = false; /* a device reads what cbor2 writes, canonical or not */
        r.zs = zs;
        r.depth = 0;
        int rc = pass(&r, out, round == 0, &seen);
        if (rc != WEDGE_OK) {
            *bad = r.field;
            return rc;
        }
        if (round == 0 && !(seen & (1u << WEDGE_MF_FORMAT))) {
            *bad = WEDGE_MF_FORMAT;
            return WEDGE_ERR_VERSION;
        }
    }
    uint32_t required = ((1u << WEDGE_MF_COUNT) - 1u) & ~((1u << WEDGE_MF_NONE) | (1u << WEDGE_MF_MAP));
    if (out->format == 1) {
        required &= ~((1u << WEDGE_MF_IMAGE) | (1u << WEDGE_MF_OPS));
        out->image = WEDGE_MANIFEST_MODEL_IMAGE;
        out->has_ops = false;
        out->n_ops = 0;
    }
    for (int f = WEDGE_MF_FORMAT; f < WEDGE_MF_COUNT; f++) {
        if ((required & (1u << f)) && !(seen & (1u << f))) {
            *bad = (wedge_manifest_field_t)f;
            return WEDGE_ERR_MALFORMED;
        }
    }
    *bad = WEDGE_MF_NONE;
    return WEDGE_OK;
}
