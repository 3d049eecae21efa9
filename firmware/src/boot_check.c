/* The boot-time model check: read image 1's manifest, compare it with what the firmware runs, self-test the
 * model, and decide whether to run, confirm, or reset so MCUboot reverts. Event texts are the virtual board's.
 */
#include "wedge/boot_check.h"

#include <string.h>

#include "wedge/wedge_err.h"
#include "text.h"

#define REVERT_NOTE "which reverts at the next reset unless confirmed"

typedef struct {
    const char *name;
    uint8_t bytes;
} itemsize_t;

/* numpy's item sizes for the dtype names a TensorSpec carries. */
static const itemsize_t ITEMSIZES[] = {
    {"bool", 1}, {"int8", 1}, {"uint8", 1}, {"int16", 2}, {"uint16", 2}, {"float16", 2}, {"int32", 4},
    {"uint32", 4}, {"float32", 4}, {"int64", 8}, {"uint64", 8}, {"float64", 8}, {"complex64", 8},
    {"complex128", 16},
};

static uint64_t itemsize(wedge_str_t dtype)
{
    for (size_t i = 0; i < sizeof ITEMSIZES / sizeof ITEMSIZES[0]; i++) {
        if (wedge_str_eq(dtype, ITEMSIZES[i].name, strlen(ITEMSIZES[i].name))) {
            return ITEMSIZES[i].bytes;
        }
    }
    return 4; /* runtime.py: np.dtype() refuses the name, 4 bytes stand in */
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    uint64_t product;
    return __builtin_mul_overflow(a, b, &product) ? UINT64_MAX : product;
}

static uint64_t tensors_bytes(const wedge_tensor_t *tensors, unsigned n)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t count = 1;
        for (unsigned d = 0; d < tensors[i].n_dims; d++) {
            int32_t dim = tensors[i].shape[d];
            count = mul_sat(count, dim > 1 ? (uint64_t)dim : 1u);
        }
        total = add_sat(total, mul_sat(count, itemsize(tensors[i].dtype)));
    }
    return total;
}

uint64_t wedge_manifest_tensor_bytes(const wedge_manifest_t *m)
{
    return add_sat(tensors_bytes(m->inputs, m->n_inputs), tensors_bytes(m->outputs, m->n_outputs));
}

static int str_cmp(wedge_str_t a, wedge_str_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    return c != 0 ? c : (a.len < b.len ? -1 : (a.len > b.len ? 1 : 0));
}

const char *wedge_boot_precheck(const wedge_manifest_t *m, const wedge_runtime_t *rt, char *text, size_t cap)
{
    wedge_text_t t;
    wedge_text_init(&t, text, cap);
    if (m->has_ops && rt->has_op != NULL) {
        /* sorted(set(ops) - registered): the missing names, each once, in code point (= UTF-8 byte) order. */
        uint16_t missing[WEDGE_MANIFEST_MAX_OPS];
        unsigned n = 0;
        for (unsigned i = 0; i < m->n_ops; i++) {
            wedge_str_t op = m->ops[i];
            if (rt->has_op(rt->ctx, op.ptr, op.len)) {
                continue;
            }
            unsigned at = 0;
            while (at < n && str_cmp(m->ops[missing[at]], op) < 0) {
                at++;
            }
            if (at < n && str_cmp(m->ops[missing[at]], op) == 0) {
                continue;
            }
            memmove(&missing[at + 1], &missing[at], (n - at) * sizeof missing[0]);
            missing[at] = (uint16_t)i;
            n++;
        }
        if (n > 0) {
            wedge_text_str(&t, "self-test failed: the firmware registers no kernel for ");
            for (unsigned i = 0; i < n; i++) {
                wedge_text_fmt(&t, i > 0 ? ", %S" : "%S", &m->ops[missing[i]]);
            }
            wedge_text_terminate(&t);
            return text;
        }
    }
    uint64_t needed = wedge_manifest_tensor_bytes(m);
    if (needed > rt->arena_bytes) {
        wedge_text_fmt(&t, "self-test failed: its input and output tensors alone take %G bytes, more than the "
                           "%G-byte arena", needed, (uint64_t)rt->arena_bytes);
        wedge_text_terminate(&t);
        return text;
    }
    return NULL;
}

static void copy_str(char *dst, size_t cap, wedge_str_t s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static void label(wedge_text_t *t, const wedge_manifest_t *m)
{
    wedge_text_fmt(t, "%S %S ", &m->model_name, &m->model_version);
}

static const char *error_word(int rc)
{
    switch (rc) {
    case WEDGE_ERR_VERSION:
        return "unknown format";
    case WEDGE_ERR_UNSUPPORTED:
        return "unsupported";
    case WEDGE_ERR_RANGE:
        return "larger than this firmware holds";
    case WEDGE_ERR_NOTFOUND:
        return "absent";
    case WEDGE_ERR_IO:
        return "flash read failed";
    default:
        return "malformed";
    }
}

static uint64_t now_us(const wedge_port_t *port)
{
    return port != NULL && port->time_us != NULL ? port->time_us(port->ctx) : 0u;
}

/* The image is in the slot but its manifest cannot be read: no model, and a test image is reverted. */
static int unreadable(const wedge_boot_input_t *in, wedge_boot_result_t *out, wedge_text_t *t, const char *what,
                      int rc)
{
    wedge_text_fmt(t, "image %u holds no readable wedge manifest (%s: %s)", (uint32_t)in->model_image, what,
                   error_word(rc));
    wedge_text_terminate(t);
    out->decision = in->testing ? WEDGE_BOOT_REVERT : WEDGE_BOOT_NO_MODEL;
    return WEDGE_OK;
}

static int failed(const wedge_boot_input_t *in, wedge_boot_result_t *out, wedge_text_t *t)
{
    wedge_text_terminate(t);
    out->state = WEDGE_MODEL_FAILED;
    out->decision = in->testing ? WEDGE_BOOT_REVERT : WEDGE_BOOT_FAILED;
    return WEDGE_OK;
}

int wedge_boot_check(const wedge_boot_input_t *in, wedge_boot_scratch_t *scratch, wedge_boot_result_t *out)
{
    if (in == NULL || scratch == NULL || out == NULL || in->model_slot == NULL || in->runtime == NULL ||
        in->runtime->self_test == NULL) {
        return WEDGE_ERR_INVAL;
    }
    memset(out, 0, sizeof *out);
    out->state = WEDGE_MODEL_NO_MODEL;
    out->decision = WEDGE_BOOT_NO_MODEL;
    wedge_text_t t;
    wedge_text_init(&t, out->event, sizeof out->event);
    wedge_text_terminate(&t);

    int rc = wedge_image_read(in->model_slot, &scratch->image);
    if (rc == WEDGE_ERR_NOTFOUND) {
        return WEDGE_OK;
    }
    if (rc != WEDGE_OK) {
        return unreadable(in, out, &t, "image", rc);
    }
    uint32_t offset;
    uint32_t len;
    rc = wedge_image_find_tlv(in->model_slot, &scratch->image, true, WEDGE_TLV_WEDGE_MANIFEST, &offset, &len);
    if (rc == WEDGE_OK && len > sizeof scratch->cbor) {
        rc = WEDGE_ERR_RANGE;
    }
    if (rc == WEDGE_OK) {
        rc = wedge_flash_read(in->model_slot, offset, scratch->cbor, len);
    }
    if (rc != WEDGE_OK) {
        return unreadable(in, out, &t, "manifest TLV", rc);
    }
    wedge_manifest_field_t bad;
    const wedge_manifest_t *m = &scratch->manifest;
    rc = wedge_manifest_read(scratch->cbor, len, &scratch->manifest, &bad);
    if (rc != WEDGE_OK) {
        return unreadable(in, out, &t, wedge_manifest_field_name(bad), rc);
    }

    out->has_model = true;
    copy_str(out->model_name, sizeof out->model_name, m->model_name);
    copy_str(out->model_version, sizeof out->model_version, m->model_version);
    out->arena_used_bytes = m->arena_bytes;
    out->has_hash = scratch->image.has_sha256;
    memcpy(out->model_hash, scratch->image.sha256, sizeof out->model_hash);

    const wedge_runtime_t *rt = in->runtime;
    uint64_t started = now_us(in->port);
    if (in->board.ptr != NULL && !wedge_str_eq(m->board, in->board.ptr, in->board.len)) {
        label(&t, m);
        wedge_text_fmt(&t, "refused: it was built for %S, this board is %S", &m->board, &in->board);
        return failed(in, out, &t);
    }
    if (m->image != in->model_image) {
        label(&t, m);
        wedge_text_fmt(&t, "refused: it is packed for MCUboot image %u, not image %u", (uint32_t)m->image,
                       (uint32_t)in->model_image);
        return failed(in, out, &t);
    }
    if (m->arena_bytes > rt->arena_bytes) {
        label(&t, m);
        wedge_text_fmt(&t, "refused: it needs %G bytes of TFLM arena; the firmware has %G", (uint64_t)m->arena_bytes,
                       (uint64_t)rt->arena_bytes);
        return failed(in, out, &t);
    }
    char reason[WEDGE_EVENT_BYTES];
    const char *refused = wedge_boot_precheck(m, rt, reason, sizeof reason);
    if (refused == NULL) {
        wedge_model_ref_t ref = {in->model_slot, scratch->image.header_bytes, scratch->image.body_bytes, m};
        const char *why = NULL;
        rc = rt->self_test(rt->ctx, &ref, &why);
        if (rc != 0) {
            wedge_text_t r;
            wedge_text_init(&r, reason, sizeof reason);
            if (why != NULL) {
                wedge_text_fmt(&r, "self-test failed: %s", why);
            } else {
                wedge_text_fmt(&r, "self-test failed: runtime error %d", (int32_t)rc);
            }
            wedge_text_terminate(&r);
            refused = reason;
        }
    }
    uint64_t spent = now_us(in->port) - started;
    out->self_test_us = spent > UINT32_MAX ? UINT32_MAX : (uint32_t)spent;
    if (refused != NULL) {
        label(&t, m);
        wedge_text_str(&t, refused);
        return failed(in, out, &t);
    }
    out->state = WEDGE_MODEL_RUNNING;
    if (!in->testing) {
        out->decision = WEDGE_BOOT_RUN;
        return WEDGE_OK;
    }
    wedge_text_fmt(&t, "booted %S %S for test, ", &m->model_name, &m->model_version);
    if (in->policy == WEDGE_CONFIRM_ON_SELF_TEST && in->port != NULL && in->port->confirm_image != NULL) {
        if (in->port->confirm_image(in->port->ctx, in->model_image) != 0) {
            wedge_text_str(&t, REVERT_NOTE " (the firmware's confirmation failed)");
            wedge_text_terminate(&t);
            out->decision = WEDGE_BOOT_RUN_TESTING;
            return WEDGE_ERR_IO;
        }
        wedge_text_str(&t, "then confirmed");
        out->decision = WEDGE_BOOT_CONFIRMED;
    } else {
        wedge_text_str(&t, REVERT_NOTE);
        out->decision = WEDGE_BOOT_RUN_TESTING;
    }
    wedge_text_terminate(&t);
    return WEDGE_OK;
}

void wedge_boot_status(const wedge_boot_result_t *r, uint32_t boot_count, wedge_model_status_t *s)
{
    memset(s, 0, sizeof *s);
    s->state = r->state;
    s->boot_count = boot_count;
    if (r->has_model) {
        s->model_name = (wedge_str_t){r->model_name, (uint32_t)strlen(r->model_name)};
        s->model_version = (wedge_str_t){r->model_version, (uint32_t)strlen(r->model_version)};
        s->model_hash = r->has_hash ? r->model_hash : NULL;
        s->has_arena_used = true;
        s->arena_used_bytes = r->arena_used_bytes;
        s->has_self_test_us = true;
        s->self_test_us = r->self_test_us;
    }
    if (r->event[0] != '\0') {
        s->event = (wedge_str_t){r->event, (uint32_t)strlen(r->event)};
    }
}
