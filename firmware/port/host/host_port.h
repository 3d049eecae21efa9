/* The host port: the core's port interfaces over RAM, for the tests (driven from pytest through cffi).
 *
 * Flash keeps NOR rules (erase to 0xFF; a write onto a byte that is not erased fails) and can lose power after a
 * given number of written bytes (the write is cut there, every later call fails until host_flash_power_on).
 * Notifications and UART bytes are captured; the clock moves by a fixed step each time it is read; a fake model
 * runtime answers with outputs computed from its input, so a test can predict them.
 */
#ifndef WEDGE_HOST_PORT_H
#define WEDGE_HOST_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wedge/port.h"
#include "wedge/runtime.h"

typedef struct host_flash {
    uint8_t *mem;
    uint32_t size_bytes;
    int64_t power_cut_after_bytes; /* -1: never */
    bool dead;
    uint32_t bytes_written;
    uint32_t erases;
    wedge_flash_t flash;
} host_flash_t;

void host_flash_init(host_flash_t *h, uint8_t *mem, uint32_t size_bytes, uint32_t erase_bytes, uint32_t write_bytes);
void host_flash_power_on(host_flash_t *h);

typedef struct host_port {
    uint8_t *uart;       /* UART bytes, appended */
    size_t uart_cap;
    size_t uart_len;
    uint8_t *notify;     /* notifications, each as u16 little-endian length then its bytes */
    size_t notify_cap;
    size_t notify_len;
    uint32_t notify_count;
    int notify_fail_after; /* -1: never; else notifications after that many fail (a full BLE TX queue) */
    uint64_t now_us;
    uint64_t step_us;
    int32_t confirmed_image; /* -1: none */
    wedge_port_t port;
} host_port_t;

void host_port_init(host_port_t *h, uint8_t *uart, size_t uart_cap, uint8_t *notify, size_t notify_cap);

/* The fake runtime: `input_bytes` of input, `output_count` float outputs; output i is
 * (sum of the input bytes + i) / 8 after an inference. ops: the registered op names, '\n'-separated. */
typedef struct host_runtime {
    size_t input_bytes;
    size_t output_count;
    const char *ops;
    int self_test_rc;         /* what self_test returns */
    const char *self_test_reason;
    int fail_infer_after;     /* -1: never; else inferences after that many fail */
    uint32_t inferences;
    uint32_t self_tests;
    uint32_t input_sum;
    uint32_t loaded_bytes;
    uint32_t last_body_offset;
    uint32_t last_body_bytes;
    wedge_runtime_t runtime;
} host_runtime_t;

void host_runtime_init(host_runtime_t *h, uint32_t arena_bytes, size_t input_bytes, size_t output_count,
                       const char *ops);

/* The core's %.9g of a float32 (the DUT's results format), NUL-terminated into out[0..cap); its length. */
size_t host_format_f32(float value, char *out, size_t cap);

/* A pseudo-random source for the ring's first epoch (xorshift32 over the uint32_t *ctx). */
uint32_t host_random(void *ctx);

#endif
