/* The host port over RAM (see host_port.h). */
#include "host_port.h"

#include <string.h>

#include "wedge/wedge_err.h"
#include "text.h"

static int flash_read(void *ctx, uint32_t offset, void *data, uint32_t len)
{
    host_flash_t *h = ctx;
    if (h->dead) {
        return WEDGE_ERR_IO;
    }
    memcpy(data, h->mem + offset, len);
    return 0;
}

static int flash_write(void *ctx, uint32_t offset, const void *data, uint32_t len)
{
    host_flash_t *h = ctx;
    if (h->dead) {
        return WEDGE_ERR_IO;
    }
    for (uint32_t i = 0; i < len; i++) {
        if (h->mem[offset + i] != 0xFFu) {
            return WEDGE_ERR_IO; /* NOR: a programmed byte must be erased first */
        }
    }
    uint32_t take = len;
    if (h->power_cut_after_bytes >= 0 && (int64_t)h->bytes_written + len > h->power_cut_after_bytes) {
        take = (uint32_t)(h->power_cut_after_bytes - (int64_t)h->bytes_written);
        h->dead = true;
    }
    memcpy(h->mem + offset, data, take);
    h->bytes_written += take;
    return h->dead ? WEDGE_ERR_IO : 0;
}

static int flash_erase(void *ctx, uint32_t offset, uint32_t len)
{
    host_flash_t *h = ctx;
    if (h->dead) {
        return WEDGE_ERR_IO;
    }
    memset(h->mem + offset, 0xFF, len);
    h->erases++;
    return 0;
}

void host_flash_init(host_flash_t *h, uint8_t *mem, uint32_t size_bytes, uint32_t erase_bytes, uint32_t write_bytes)
{
    memset(h, 0, sizeof *h);
    h->mem = mem;
    h->size_bytes = size_bytes;
    h->power_cut_after_bytes = -1;
    h->flash.ctx = h;
    h->flash.size_bytes = size_bytes;
    h->flash.erase_bytes = erase_bytes;
    h->flash.write_bytes = write_bytes;
    h->flash.read = flash_read;
    h->flash.write = flash_write;
    h->flash.erase = flash_erase;
}

void host_flash_power_on(host_flash_t *h)
{
    h->dead = false;
    h->power_cut_after_bytes = -1;
}

static int port_notify(void *ctx, const uint8_t *data, size_t len)
{
    host_port_t *h = ctx;
    if (h->notify_fail_after >= 0 && h->notify_count >= (uint32_t)h->notify_fail_after) {
        return WEDGE_ERR_IO;
    }
    if (len > 0xFFFFu || h->notify_cap - h->notify_len < len + 2) {
        return WEDGE_ERR_IO;
    }
    h->notify[h->notify_len] = (uint8_t)len;
    h->notify[h->notify_len + 1] = (uint8_t)(len >> 8);
    memcpy(h->notify + h->notify_len + 2, data, len);
    h->notify_len += len + 2;
    h->notify_count++;
    return 0;
}

static int port_uart(void *ctx, const uint8_t *data, size_t len)
{
    host_port_t *h = ctx;
    if (h->uart_cap - h->uart_len < len) {
        return WEDGE_ERR_IO;
    }
    memcpy(h->uart + h->uart_len, data, len);
    h->uart_len += len;
    return 0;
}

static uint64_t port_time(void *ctx)
{
    host_port_t *h = ctx;
    uint64_t now = h->now_us;
    h->now_us += h->step_us;
    return now;
}

static int port_confirm(void *ctx, uint8_t image)
{
    host_port_t *h = ctx;
    h->confirmed_image = image;
    return 0;
}

void host_port_init(host_port_t *h, uint8_t *uart, size_t uart_cap, uint8_t *notify, size_t notify_cap)
{
    memset(h, 0, sizeof *h);
    h->uart = uart;
    h->uart_cap = uart_cap;
    h->notify = notify;
    h->notify_cap = notify_cap;
    h->notify_fail_after = -1;
    h->step_us = 1;
    h->confirmed_image = -1;
    h->port.ctx = h;
    h->port.notify = port_notify;
    h->port.uart_write = port_uart;
    h->port.time_us = port_time;
    h->port.confirm_image = port_confirm;
}

static bool rt_has_op(void *ctx, const char *name, size_t len)
{
    host_runtime_t *h = ctx;
    const char *p = h->ops;
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '\n');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n == len && memcmp(p, name, len) == 0) {
            return true;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

static int rt_self_test(void *ctx, const wedge_model_ref_t *model, const char **reason)
{
    host_runtime_t *h = ctx;
    h->self_tests++;
    h->last_body_offset = model->body_offset;
    h->last_body_bytes = model->body_bytes;
    *reason = h->self_test_reason;
    return h->self_test_rc;
}

static size_t rt_input_bytes(void *ctx)
{
    return ((host_runtime_t *)ctx)->input_bytes;
}

static size_t rt_output_count(void *ctx)
{
    return ((host_runtime_t *)ctx)->output_count;
}

static int rt_load(void *ctx, const uint8_t *data, size_t len)
{
    host_runtime_t *h = ctx;
    if (len > h->input_bytes) {
        return WEDGE_ERR_INVAL;
    }
    h->input_sum = 0;
    for (size_t i = 0; i < len; i++) {
        h->input_sum += data[i];
    }
    h->loaded_bytes = (uint32_t)len;
    return 0;
}

static int rt_infer(void *ctx)
{
    host_runtime_t *h = ctx;
    if (h->fail_infer_after >= 0 && h->inferences >= (uint32_t)h->fail_infer_after) {
        return -42;
    }
    h->inferences++;
    return 0;
}

static int rt_output(void *ctx, size_t index, float *value)
{
    host_runtime_t *h = ctx;
    if (index >= h->output_count) {
        return WEDGE_ERR_INVAL;
    }
    *value = (float)(h->input_sum + index) / 8.0f;
    return 0;
}

void host_runtime_init(host_runtime_t *h, uint32_t arena_bytes, size_t input_bytes, size_t output_count,
                       const char *ops)
{
    memset(h, 0, sizeof *h);
    h->input_bytes = input_bytes;
    h->output_count = output_count;
    h->ops = ops;
    h->fail_infer_after = -1;
    h->runtime.ctx = h;
    h->runtime.arena_bytes = arena_bytes;
    h->runtime.has_op = rt_has_op;
    h->runtime.self_test = rt_self_test;
    h->runtime.input_bytes = rt_input_bytes;
    h->runtime.output_count = rt_output_count;
    h->runtime.load_input = rt_load;
    h->runtime.infer = rt_infer;
    h->runtime.output = rt_output;
}

size_t host_format_f32(float value, char *out, size_t cap)
{
    wedge_text_t t;
    wedge_text_init(&t, out, cap);
    wedge_text_f32(&t, value);
    wedge_text_terminate(&t);
    return t.len;
}

uint32_t host_random(void *ctx)
{
    uint32_t *state = ctx;
    uint32_t x = *state != 0 ? *state : 0x9E3779B9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}
