/* The QEMU test firmware: runs a script a test loaded at MPS2_SCRIPT through the core, and prints every result on
 * UART0 as one line, `<case> <rc> <hex bytes>`, for pytest to compare with the Python encoders. The model slot (a
 * `wedge pack` image) is at MPS2_SLOT. A script is a list of cases: u8 op, u8 0, u16 length, payload (LE).
 */
#include <string.h>

#include "host_port.h"
#include "mps2.h"
#include "wedge/boot_check.h"
#include "wedge/control.h"
#include "wedge/dut.h"
#include "wedge/heart_rate.h"
#include "wedge/manifest.h"
#include "wedge/records.h"
#include "wedge/ring.h"
#include "wedge/smp_group.h"
#include "wedge/stream.h"
#include "wedge/wedge_err.h"

enum {
    OP_END = 0,
    OP_HR = 1,
    OP_F32 = 2,
    OP_STATUS = 3,
    OP_BOARD = 4,
    OP_SMP = 5,
    OP_DUT = 6,
    OP_MANIFEST = 7,
    OP_BOOT = 8,
    OP_JUNK = 9,
    OP_RECORD = 10,
    OP_FRAGMENTS = 11,
    OP_CONTROL = 12,
    OP_STREAM_STATUS = 13,
    OP_RING_REBOOT = 14,
};

/* Kept across the CPU reset of OP_RING_REBOOT (QEMU reloads the image's sections, not .noinit). */
#define REBOOT_MAGIC 0x52424F54u
static struct {
    uint32_t magic;
    uint32_t case_index;
} reboot_state __attribute__((section(".noinit")));
static uint8_t ring_flash_mem[8u * 4096u] __attribute__((section(".noinit"), aligned(8)));

typedef struct cursor {
    const uint8_t *p;
    size_t left;
    bool short_read;
} cursor_t;

static uint32_t take(cursor_t *c, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (c->left == 0) {
            c->short_read = true;
            return v;
        }
        v |= (uint32_t)*c->p++ << (8 * i);
        c->left--;
    }
    return v;
}

static const uint8_t *take_bytes(cursor_t *c, size_t n)
{
    if (c->left < n) {
        c->short_read = true;
        n = c->left;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

/* u16 length then the bytes; length 0xFFFF: absent. */
static wedge_str_t take_str(cursor_t *c)
{
    uint32_t n = take(c, 2);
    if (n == 0xFFFFu) {
        return (wedge_str_t){NULL, 0};
    }
    return (wedge_str_t){(const char *)take_bytes(c, n), n};
}

static void put_hex(const uint8_t *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char pair[2];
    for (size_t i = 0; i < len; i++) {
        pair[0] = hex[data[i] >> 4];
        pair[1] = hex[data[i] & 15u];
        mps2_uart_write((const uint8_t *)pair, 2);
    }
}

static void put_int(int64_t v)
{
    char digits[21];
    size_t n = 0;
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + m % 10u);
        m /= 10u;
    } while (m != 0);
    if (v < 0) {
        digits[sizeof digits - 1 - n++] = '-';
    }
    mps2_uart_write((const uint8_t *)digits + sizeof digits - n, n);
}

static void begin(unsigned index, int rc)
{
    put_int(index);
    mps2_puts(" ");
    put_int(rc);
    mps2_puts(" ");
}

static void end_line(void)
{
    mps2_puts("\r\n");
}

static uint8_t out[1024];
static wedge_boot_scratch_t scratch;
static wedge_model_status_t status;
static wedge_board_info_t board;
static wedge_fw_descriptor_t descriptor;

static void run_hr(unsigned index, cursor_t *c)
{
    static uint16_t rr[64];
    wedge_hr_t hr = {0};
    hr.bpm = (uint16_t)take(c, 2);
    hr.contact = (wedge_hr_contact_t)take(c, 1);
    hr.has_energy = take(c, 1) != 0;
    hr.energy_kj = (uint16_t)take(c, 2);
    size_t cap = take(c, 2);
    hr.rr_count = take(c, 2);
    for (size_t i = 0; i < hr.rr_count && i < 64; i++) {
        rr[i] = (uint16_t)take(c, 2);
    }
    hr.rr_1024 = rr;
    size_t len = 0;
    size_t sent = 0;
    int rc = wedge_hr_encode(&hr, out, cap < sizeof out ? cap : sizeof out, &len, &sent);
    begin(index, rc);
    put_hex(out, rc == 0 ? len : 0);
    end_line();
}

static void run_f32(unsigned index, cursor_t *c)
{
    static char text[32];
    begin(index, 0);
    while (c->left >= 4) {
        uint32_t bits = take(c, 4);
        float value;
        memcpy(&value, &bits, sizeof value);
        size_t n = host_format_f32(value, text, sizeof text);
        mps2_uart_write((const uint8_t *)text, n);
        mps2_puts(c->left >= 4 ? "," : "");
    }
    end_line();
}

static void run_status(unsigned index, cursor_t *c)
{
    memset(&status, 0, sizeof status);
    status.state = (wedge_model_state_t)take(c, 1);
    status.boot_count = take(c, 4);
    status.model_name = take_str(c);
    status.model_version = take_str(c);
    status.event = take_str(c);
    if (take(c, 1)) {
        status.model_hash = take_bytes(c, 32);
    }
    status.has_arena_used = take(c, 1) != 0;
    status.arena_used_bytes = take(c, 4);
    status.has_self_test_us = take(c, 1) != 0;
    status.self_test_us = take(c, 4);
    size_t len = 0;
    int rc = wedge_smp_model_status_encode(&status, out, sizeof out, &len);
    begin(index, rc);
    put_hex(out, rc == 0 ? len : 0);
    end_line();
}

static void run_board(unsigned index, cursor_t *c)
{
    memset(&board, 0, sizeof board);
    board.board = take_str(c);
    board.runtime = take_str(c);
    board.firmware = take_str(c);
    board.model_slot_bytes = take(c, 4);
    board.arena_bytes = take(c, 4);
    board.key_hash = take_bytes(c, 32);
    if (take(c, 1)) {
        descriptor.name = take_str(c);
        descriptor.version = take_str(c);
        descriptor.board = take_str(c);
        descriptor.tflm_version = take_str(c);
        descriptor.arena_bytes = take(c, 4);
        descriptor.stream_protocol = take(c, 4);
        descriptor.model_image = (uint8_t)take(c, 1);
        descriptor.ops_bitmap_bytes = take(c, 2);
        descriptor.ops_bitmap = take_bytes(c, descriptor.ops_bitmap_bytes);
        board.descriptor = &descriptor;
    }
    size_t len = 0;
    int rc = wedge_smp_board_info_encode(&board, out, sizeof out, &len);
    begin(index, rc);
    put_hex(out, rc == 0 ? len : 0);
    end_line();
}

static void run_smp(unsigned index, cursor_t *c)
{
    uint16_t group = (uint16_t)take(c, 2);
    size_t n = c->left;
    const uint8_t *request = take_bytes(c, n);
    size_t len = 0;
    int rc = wedge_smp_respond(request, n, group, &board, &status, out, sizeof out, &len);
    begin(index, rc);
    put_hex(out, rc == 0 ? len : 0);
    end_line();
}

/* The DUT's clock in the test: 250 µs a reading, so its output is the same on every run. */
static uint64_t fixed_clock;

static uint64_t step_time(void *ctx)
{
    (void)ctx;
    fixed_clock += 250u;
    return fixed_clock;
}

static int hex_uart(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    put_hex(data, len);
    return 0;
}

static void run_dut(unsigned index, cursor_t *c)
{
    static uint8_t input[256];
    static host_runtime_t runtime;
    static wedge_dut_t dut;
    uint32_t input_cap = take(c, 2);
    uint32_t input_bytes = take(c, 2);
    uint32_t outputs = take(c, 2);
    wedge_dut_config_t config;
    config.firmware = take_str(c);
    config.device = take_str(c);
    config.vendor = take_str(c);
    config.model = take_str(c);
    config.timer = take_str(c);
    host_runtime_init(&runtime, 4096u, input_bytes, outputs, "");
    wedge_port_t port = {NULL, NULL, hex_uart, step_time, NULL};
    fixed_clock = 0;
    int rc = wedge_dut_init(&dut, &port, outputs ? &runtime.runtime : NULL, &config, input,
                            input_cap < sizeof input ? input_cap : sizeof input);
    begin(index, rc);
    if (rc == 0) {
        size_t n = c->left;
        const uint8_t *stream = take_bytes(c, n);
        for (size_t at = 0; at < n; at += 7) { /* in UART-sized pieces */
            int fed = wedge_dut_feed(&dut, stream + at, n - at < 7 ? n - at : 7);
            (void)fed;
        }
    }
    end_line();
}

static void put_str_field(wedge_str_t s)
{
    put_hex((const uint8_t *)s.ptr, s.len);
    mps2_puts(" ");
}

static void run_manifest(unsigned index, cursor_t *c)
{
    static wedge_manifest_t m;
    size_t n = c->left;
    const uint8_t *cbor = take_bytes(c, n);
    wedge_manifest_field_t bad;
    int rc = wedge_manifest_read(cbor, n, &m, &bad);
    begin(index, rc);
    if (rc == 0) {
        put_str_field(m.model_name);
        put_str_field(m.model_version);
        put_str_field(m.board);
        put_str_field(m.runtime);
        put_int(m.image);
        mps2_puts(" ");
        put_int(m.arena_bytes);
        mps2_puts(" ");
        put_int(m.model_bytes);
        mps2_puts(" ");
        put_int(m.n_labels);
        mps2_puts(" ");
        put_hex(m.model_sha256, 32);
        mps2_puts(" ");
        for (unsigned i = 0; i < m.n_ops; i++) {
            put_str_field(m.ops[i]);
        }
        for (unsigned side = 0; side < 2; side++) {
            const wedge_tensor_t *tensors = side ? m.outputs : m.inputs;
            unsigned count = side ? m.n_outputs : m.n_inputs;
            for (unsigned i = 0; i < count; i++) {
                mps2_puts(side ? "out:" : "in:");
                put_str_field(tensors[i].name);
                put_str_field(tensors[i].dtype);
                for (unsigned d = 0; d < tensors[i].n_dims; d++) {
                    put_int(tensors[i].shape[d]);
                    mps2_puts("x");
                }
                mps2_puts(" ");
                uint32_t bits;
                memcpy(&bits, &tensors[i].scales[0], sizeof bits);
                put_int(tensors[i].n_scales ? (int64_t)bits : -1);
                mps2_puts(" ");
                put_int(tensors[i].n_zero_points ? tensors[i].zero_points[0] : 0);
                mps2_puts(" ");
            }
        }
    } else {
        mps2_puts(wedge_manifest_field_name(bad));
    }
    end_line();
}

static void run_boot(unsigned index, cursor_t *c)
{
    static host_runtime_t runtime;
    static host_flash_t slot;
    static char ops[256];
    wedge_boot_input_t in = {0};
    in.testing = take(c, 1) != 0;
    in.policy = take(c, 1) ? WEDGE_CONFIRM_ON_SELF_TEST : WEDGE_CONFIRM_BY_HOST;
    in.model_image = (uint8_t)take(c, 1);
    uint32_t arena = take(c, 4);
    in.boot_count = take(c, 4);
    in.board = take_str(c);
    wedge_str_t op_list = take_str(c);
    size_t n = op_list.len < sizeof ops - 1 ? op_list.len : sizeof ops - 1;
    memcpy(ops, op_list.ptr, n);
    ops[n] = '\0';
    host_runtime_init(&runtime, arena, 0, 0, ops);
    host_flash_init(&slot, (uint8_t *)(uintptr_t)MPS2_SLOT, MPS2_SLOT_BYTES, 4096u, 4u);
    host_port_t port;
    mps2_port_init(&port, NULL, 0);
    in.model_slot = &slot.flash;
    in.runtime = &runtime.runtime;
    in.port = &port.port;
    wedge_boot_result_t result;
    int rc = wedge_boot_check(&in, &scratch, &result);
    begin(index, rc);
    put_int(result.decision);
    mps2_puts(" ");
    put_int(result.state);
    mps2_puts(" ");
    put_int(port.confirmed_image);
    mps2_puts(" ");
    put_hex((const uint8_t *)result.event, strlen(result.event));
    mps2_puts(" ");
    wedge_model_status_t s;
    wedge_boot_status(&result, in.boot_count, &s);
    s.has_self_test_us = false; /* its duration is the emulator's: not compared */
    size_t len = 0;
    rc = wedge_smp_model_status_encode(&s, out, sizeof out, &len);
    put_hex(out, rc == 0 ? len : 0);
    end_line();
}

/* A record from the script: u8 version, u8 backfill, u32 epoch, u32 seq, u64 t, u32 model id, u8 n, then per
 * output u8 dtype, u8 quantized, u32 scale bits, i32 zero point, u16 count, count values (LE, the dtype's width),
 * copied into aligned arrays of their C type as a model's output tensors are. */
static int32_t value_store[4][128];
static wedge_output_t output_store[4];

static void take_record(cursor_t *c, wedge_record_t *r)
{
    r->version = (uint8_t)take(c, 1);
    r->backfill = take(c, 1) != 0;
    r->epoch = take(c, 4);
    r->seq = take(c, 4);
    r->t_device_us = take(c, 4);
    r->t_device_us |= (uint64_t)take(c, 4) << 32;
    r->model_id = take(c, 4);
    r->n_outputs = (uint8_t)take(c, 1);
    if (r->n_outputs > 4) {
        r->n_outputs = 4;
    }
    for (unsigned i = 0; i < r->n_outputs; i++) {
        wedge_output_t *o = &output_store[i];
        o->dtype = (wedge_dtype_t)take(c, 1);
        o->quantized = take(c, 1) != 0;
        uint32_t bits = take(c, 4);
        memcpy(&o->scale, &bits, sizeof o->scale);
        o->zero_point = (int32_t)take(c, 4);
        o->count = (uint16_t)take(c, 2);
        unsigned width = o->dtype <= WEDGE_DTYPE_UINT8 ? 1u : (o->dtype == WEDGE_DTYPE_INT16 ? 2u : 4u);
        if ((size_t)o->count * width > sizeof value_store[i]) {
            o->count = (uint16_t)(sizeof value_store[i] / width);
        }
        for (unsigned k = 0; k < o->count; k++) {
            uint32_t v = take(c, width);
            if (width == 1) {
                ((uint8_t *)value_store[i])[k] = (uint8_t)v;
            } else if (width == 2) {
                ((uint16_t *)(void *)value_store[i])[k] = (uint16_t)v;
            } else {
                ((uint32_t *)(void *)value_store[i])[k] = v;
            }
        }
        o->values = value_store[i];
    }
    r->outputs = output_store;
}

static void run_record(unsigned index, cursor_t *c)
{
    wedge_record_t r;
    take_record(c, &r);
    size_t len = 0;
    int rc = wedge_record_encode(&r, out, sizeof out, &len);
    begin(index, rc);
    put_hex(out, rc == 0 ? len : 0);
    end_line();
}

static void run_fragments(unsigned index, cursor_t *c)
{
    static uint8_t frame[600];
    size_t payload = take(c, 2);
    size_t n = c->left;
    const uint8_t *encoded = take_bytes(c, n);
    unsigned total = wedge_fragment_count(n, payload);
    begin(index, total ? 0 : WEDGE_ERR_INVAL);
    for (unsigned i = 0; i < total; i++) {
        size_t len = 0;
        if (wedge_frame_fragment(encoded, n, payload, i, frame, sizeof frame, &len) == 0) {
            put_hex(frame, len);
        }
        mps2_puts(i + 1 < total ? "," : "");
    }
    end_line();
}

static void run_control(unsigned index, cursor_t *c)
{
    size_t n = c->left;
    wedge_control_t cmd;
    int rc = wedge_control_parse(take_bytes(c, n), n, &cmd);
    begin(index, rc);
    const uint32_t fields[] = {wedge_control_att_error(rc), cmd.opcode, cmd.rate_mhz, cmd.epoch, cmd.first_seq,
                               cmd.end_seq};
    for (unsigned i = 0; i < 6; i++) {
        put_int(fields[i]);
        mps2_puts(" ");
    }
    end_line();
}

static void run_stream_status(unsigned index, cursor_t *c)
{
    wedge_status_t st = {0};
    st.streaming = take(c, 1) != 0;
    st.device_id = take(c, 4);
    st.device_id |= (uint64_t)take(c, 4) << 32;
    st.epoch = take(c, 4);
    st.oldest_seq = take(c, 4);
    st.next_seq = take(c, 4);
    st.capacity_records = take(c, 4);
    st.rate_mhz = take(c, 4);
    st.model_id = take(c, 4);
    st.boot_count = take(c, 4);
    st.n_past = (uint8_t)take(c, 1);
    for (unsigned i = 0; i < st.n_past && i < WEDGE_MAX_PAST_EPOCHS; i++) {
        st.past[i].epoch = take(c, 4);
        st.past[i].first_seq = take(c, 4);
        st.past[i].end_seq = take(c, 4);
    }
    size_t len = 0;
    int rc = wedge_status_encode(&st, out, sizeof out, &len);
    begin(index, rc);
    put_hex(out, rc == 0 ? len : 0);
    end_line();
}

static uint32_t fixed_random(void *ctx)
{
    (void)ctx;
    return 0x2545F491u;
}

static host_port_t stream_port;
static uint8_t notified[16384];

/* Boot 1: a ring on a fresh RAM flash region, the script's records appended, then a CPU reset. Boot 2: the ring
 * opened again (a new epoch), what it still holds printed, and the old epoch backfilled in `payload`-byte frames:
 * `<index> <rc> <epoch> <boot count> <past epoch:first:end> <records hex,...> <frames hex,...>`. */
static void run_ring_reboot(unsigned index, cursor_t *c)
{
    static host_flash_t flash;
    static wedge_ring_t ring;
    static wedge_stream_t stream;
    static uint8_t encoded[WEDGE_RECORD_MAX_BYTES];
    size_t payload = take(c, 2);
    unsigned count = take(c, 2);
    host_flash_init(&flash, ring_flash_mem, sizeof ring_flash_mem, 4096u, 4u);
    if (reboot_state.magic != REBOOT_MAGIC) {
        memset(ring_flash_mem, 0xFF, sizeof ring_flash_mem);
        int rc = wedge_ring_open(&ring, &flash.flash, 400u, fixed_random, NULL);
        for (unsigned i = 0; rc == 0 && i < count; i++) {
            wedge_record_t r;
            take_record(c, &r);
            r.epoch = ring.epoch;
            r.seq = ring.next_seq;
            size_t len = 0;
            rc = wedge_record_encode(&r, encoded, sizeof encoded, &len);
            if (rc == 0) {
                rc = wedge_ring_append(&ring, encoded, len);
            }
        }
        if (rc != 0) {
            begin(index, rc);
            end_line();
            return;
        }
        reboot_state.magic = REBOOT_MAGIC;
        reboot_state.case_index = index;
        mps2_reset();
    }
    reboot_state.magic = 0;
    int rc = wedge_ring_open(&ring, &flash.flash, 400u, fixed_random, NULL);
    begin(index, rc);
    wedge_epoch_span_t past[WEDGE_MAX_PAST_EPOCHS];
    unsigned n_past = rc == 0 ? wedge_ring_past_epochs(&ring, past, WEDGE_MAX_PAST_EPOCHS) : 0;
    put_int(ring.epoch);
    mps2_puts(" ");
    put_int(ring.boot_count);
    mps2_puts(" ");
    for (unsigned i = 0; i < n_past; i++) {
        put_int(past[i].epoch);
        mps2_puts(":");
        put_int(past[i].first_seq);
        mps2_puts(":");
        put_int(past[i].end_seq);
    }
    mps2_puts(" ");
    for (unsigned i = 0; n_past > 0 && i < past[0].end_seq; i++) {
        size_t len = 0;
        size_t record_len = 0;
        if (wedge_ring_read(&ring, past[0].epoch, i, 0, encoded, sizeof encoded, &len, &record_len) == 0) {
            put_hex(encoded, len);
        }
        mps2_puts(i + 1 < past[0].end_seq ? "," : "");
    }
    mps2_puts(" ");
    mps2_port_init(&stream_port, notified, sizeof notified);
    if (n_past > 0 && wedge_stream_init(&stream, &ring, &stream_port.port, 1000u) == 0) {
        wedge_stream_backfill(&stream, past[0].epoch, 0, WEDGE_BACKFILL_TO_NEWEST);
        unsigned sent = 0;
        while (wedge_stream_pending(&stream) && wedge_stream_pump(&stream, payload, 6, &sent) == 0) {
        }
        for (size_t at = 0; at + 2 <= stream_port.notify_len;) {
            size_t len = (size_t)(notified[at] | (notified[at + 1] << 8));
            put_hex(notified + at + 2, len);
            at += 2 + len;
            mps2_puts(at < stream_port.notify_len ? "," : "");
        }
    }
    end_line();
}

static int discard(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

/* Pseudo-random bytes (xorshift) into the DUT parser and responder, the control point parser and the manifest
 * reader: only a fault would end the run early. */
static void run_junk(unsigned index, cursor_t *c)
{
    static wedge_manifest_t manifest;
    static uint8_t junk[512];
    static uint8_t input[64];
    static wedge_dut_t dut;
    uint32_t seed = take(c, 4) | 1u;
    uint32_t rounds = take(c, 4);
    wedge_dut_config_t config = {WEDGE_STR("fw"), WEDGE_STR("dut"), WEDGE_STR("v"), WEDGE_STR("m"),
                                 WEDGE_STR("t")};
    wedge_port_t port = {NULL, NULL, discard, step_time, NULL};
    int rc = wedge_dut_init(&dut, &port, NULL, &config, input, sizeof input);
    unsigned parsed = 0;
    for (uint32_t r = 0; rc == 0 && r < rounds; r++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            junk[i] = (seed >> 8) % 16u == 0 ? (uint8_t)'%' : (uint8_t)seed;
        }
        wedge_dut_command_t cmd;
        parsed += wedge_dut_parse(junk, (seed >> 3) % sizeof junk, &cmd) == WEDGE_OK;
        wedge_dut_feed(&dut, junk, sizeof junk);
        wedge_control_t control;
        parsed += wedge_control_parse(junk, (seed >> 5) % 16u, &control) == WEDGE_OK;
        wedge_manifest_field_t bad;
        parsed += wedge_manifest_read(junk, (seed >> 7) % sizeof junk, &manifest, &bad) == WEDGE_OK;
    }
    begin(index, rc);
    put_int(parsed);
    end_line();
}

int main(void)
{
    cursor_t script = {MPS2_SCRIPT, 1u << 20, false};
    /* After OP_RING_REBOOT's reset, the cases before it already ran: skip to it, silently. */
    bool resumed = reboot_state.magic == REBOOT_MAGIC;
    if (!resumed) {
        mps2_puts("wedge selftest\r\n");
    }
    for (unsigned index = 0;; index++) {
        unsigned op = take(&script, 1);
        take(&script, 1);
        uint32_t len = take(&script, 2);
        if (op == OP_END || script.short_read) {
            break;
        }
        cursor_t c = {take_bytes(&script, len), len, false};
        if (resumed && index < reboot_state.case_index) {
            continue;
        }
        switch (op) {
        case OP_HR:
            run_hr(index, &c);
            break;
        case OP_F32:
            run_f32(index, &c);
            break;
        case OP_STATUS:
            run_status(index, &c);
            break;
        case OP_BOARD:
            run_board(index, &c);
            break;
        case OP_SMP:
            run_smp(index, &c);
            break;
        case OP_DUT:
            run_dut(index, &c);
            break;
        case OP_MANIFEST:
            run_manifest(index, &c);
            break;
        case OP_BOOT:
            run_boot(index, &c);
            break;
        case OP_JUNK:
            run_junk(index, &c);
            break;
        case OP_RECORD:
            run_record(index, &c);
            break;
        case OP_FRAGMENTS:
            run_fragments(index, &c);
            break;
        case OP_CONTROL:
            run_control(index, &c);
            break;
        case OP_STREAM_STATUS:
            run_stream_status(index, &c);
            break;
        case OP_RING_REBOOT:
            run_ring_reboot(index, &c);
            break;
        default:
            begin(index, WEDGE_ERR_INVAL);
            end_line();
            break;
        }
    }
    mps2_puts("wedge selftest done\r\n");
    return 0;
}
