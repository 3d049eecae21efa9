/* The QEMU benchmark firmware: SysTick ticks for N runs of each measured operation, printed as
 * `<name> <runs> <ticks>` lines. Under `qemu-system-arm -icount shift=S` every instruction advances the virtual
 * clock by 2^S ns and SysTick counts that clock at 25 MHz, so ticks / (2^S * 0.025) is an instruction count, the
 * same on every run. A nop loop calibrates it; an empty call loop is the overhead subtracted.
 */
#include <string.h>

#include "host_port.h"
#include "mps2.h"
#include "wedge/records.h"
#include "wedge/ring.h"
#include "wedge/stream.h"

#define RUNS 1000u

static uint8_t out[256];
static volatile size_t sink;

static const float scores[3] = {0.125f, -0.5f, 0.875f};
static const wedge_output_t output = {WEDGE_DTYPE_FLOAT32, false, 0.0f, 0, scores, 3};

__attribute__((noinline)) static int encode_once(wedge_record_t *r)
{
    size_t len = 0;
    int rc = wedge_record_encode(r, out, sizeof out, &len);
    sink = len;
    return rc;
}

__attribute__((noinline)) static int empty_once(wedge_record_t *r)
{
    sink = r->seq;
    return 0;
}

static void report(const char *name, uint32_t runs, uint64_t ticks)
{
    char line[64];
    size_t n = 0;
    for (const char *p = name; *p; p++) {
        line[n++] = *p;
    }
    line[n++] = ' ';
    char digits[24];
    size_t d = 0;
    uint64_t values[2] = {runs, ticks};
    for (int v = 0; v < 2; v++) {
        uint64_t x = values[v];
        d = 0;
        do {
            digits[d++] = (char)('0' + x % 10u);
            x /= 10u;
        } while (x);
        while (d) {
            line[n++] = digits[--d];
        }
        line[n++] = v == 0 ? ' ' : '\r';
    }
    line[n++] = '\n';
    mps2_uart_write((const uint8_t *)line, n);
}

static uint64_t time_calls(int (*fn)(wedge_record_t *), wedge_record_t *r)
{
    uint64_t start = mps2_ticks();
    for (uint32_t i = 0; i < RUNS; i++) {
        r->seq = i;
        fn(r);
    }
    return mps2_ticks() - start;
}

static uint8_t flash_mem[8u * 4096u];
static uint8_t notified[4096];

int main(void)
{
    wedge_record_t r = {WEDGE_RECORD_VERSION, false, 42u, 0, 1700000000000000ull, 0x13CAD0AEu, &output, 1};
    uint64_t start = mps2_ticks();
    for (uint32_t i = 0; i < RUNS; i++) {
        __asm volatile("nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop");
    }
    report("nop10_loop", RUNS, mps2_ticks() - start);
    start = mps2_ticks();
    for (uint32_t i = 0; i < RUNS; i++) {
        __asm volatile("" ::: "memory");
    }
    report("empty_loop", RUNS, mps2_ticks() - start);
    report("call_overhead", RUNS, time_calls(empty_once, &r));
    report("record_encode_3_values", RUNS, time_calls(encode_once, &r));

    /* The whole per-window path of a ring: encode, append to the flash ring, send it live in a frame. */
    static host_flash_t flash;
    static wedge_ring_t ring;
    static wedge_stream_t stream;
    static host_port_t port;
    memset(flash_mem, 0xFF, sizeof flash_mem);
    host_flash_init(&flash, flash_mem, sizeof flash_mem, 4096u, 4u);
    mps2_port_init(&port, notified, sizeof notified);
    if (wedge_ring_open(&ring, &flash.flash, 64u, NULL, NULL) != 0 ||
        wedge_stream_init(&stream, &ring, &port.port, 1000u) != 0) {
        mps2_puts("ring setup failed\r\n");
        return 1;
    }
    start = mps2_ticks();
    for (uint32_t i = 0; i < RUNS; i++) {
        r.epoch = ring.epoch;
        r.seq = ring.next_seq;
        size_t len = 0;
        unsigned sent = 0;
        if (wedge_record_encode(&r, out, sizeof out, &len) != 0 || wedge_ring_append(&ring, out, len) != 0 ||
            wedge_stream_pump(&stream, 244u, 1u, &sent) != 0) {
            mps2_puts("window failed\r\n");
            return 1;
        }
        port.notify_len = 0;
    }
    report("encode_append_notify", RUNS, mps2_ticks() - start);
    mps2_puts("wedge bench done\r\n");
    return 0;
}
