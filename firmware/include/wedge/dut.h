/* The MLPerf Tiny DUT protocol (the EEMBC runner's): `%`-terminated ASCII commands and `m-`/`e-[...]` reply lines
 * ending `\r\n`, `m-ready` last, as wedge/firmware/protocol/dut.py defines them and mlcommons/tiny's
 * api/internally_implemented.c answers them: name, profile, help, timestamp, db load N, db HH.., db print,
 * infer N [W=10], results.
 *
 * Commands longer than WEDGE_DUT_CMD_BYTES keep their first bytes and, in the last place, their last byte (as
 * ee_serial_callback clamps g_cmd_pos); wedge_dut_feed then returns WEDGE_ERR_RANGE after answering.
 * Integers are 32-bit (atoi's int): a longer number is an error line, never an overflow.
 */
#ifndef WEDGE_DUT_H
#define WEDGE_DUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wedge/manifest.h"
#include "wedge/port.h"
#include "wedge/runtime.h"
#include "wedge/wedge_config.h"

#define WEDGE_DUT_TERMINATOR '%'
#define WEDGE_DUT_DEFAULT_WARMUP_RUNS 10

typedef enum wedge_dut_kind {
    WEDGE_DUT_EMPTY = 0, /* a bare `%`: m-ready alone */
    WEDGE_DUT_NAME,
    WEDGE_DUT_PROFILE,
    WEDGE_DUT_TIMESTAMP,
    WEDGE_DUT_RESULTS,
    WEDGE_DUT_HELP,
    WEDGE_DUT_DB_PRINT,
    WEDGE_DUT_DB_LOAD,
    WEDGE_DUT_DB_DATA,
    WEDGE_DUT_INFER,
    WEDGE_DUT_ERROR
} wedge_dut_kind_t;

typedef enum wedge_dut_error {
    WEDGE_DUT_OK = 0,
    WEDGE_DUT_E_DB_SUBCOMMAND,  /* Command 'db' requires a subcommand */
    WEDGE_DUT_E_DB_LOAD_SIZE,   /* Command 'db load' requires the # of bytes */
    WEDGE_DUT_E_DB_LOAD_ZERO,   /* Command 'db load' must be >0 bytes */
    WEDGE_DUT_E_HEX_ODD,        /* Insufficent number of hex digits */
    WEDGE_DUT_E_HEX_DIGIT,      /* Invalid hex digit 'XY' */
    WEDGE_DUT_E_NOT_INTEGER,    /* <what> must be an integer, got '<token>' */
    WEDGE_DUT_E_NOT_32_BIT,     /* <what> does not fit in 32 bits, got '<token>' */
    WEDGE_DUT_E_RUNS,           /* Inference iterations must be >0 */
    WEDGE_DUT_E_WARMUP,         /* Inference warmup must be >=0 */
    WEDGE_DUT_E_UNKNOWN         /* Unknown command: <head> */
} wedge_dut_error_t;

typedef enum wedge_dut_what { WEDGE_DUT_WHAT_DB_LOAD, WEDGE_DUT_WHAT_INFER_N, WEDGE_DUT_WHAT_INFER_W } wedge_dut_what_t;

/* One parsed command; pointers point into the parsed text. */
typedef struct wedge_dut_command {
    wedge_dut_kind_t kind;
    int32_t size_bytes;  /* db load */
    int32_t runs;        /* infer */
    int32_t warmup_runs; /* infer */
    const uint8_t *hex;  /* db: the hex digits (validated, even count) */
    size_t hex_len;
    wedge_dut_error_t error;
    wedge_dut_what_t what;  /* which integer failed */
    const uint8_t *token;   /* the token an error names */
    size_t token_len;
} wedge_dut_command_t;

/* Parse one command's text (without its `%`) as dut.parse_command does. WEDGE_OK, or WEDGE_ERR_MALFORMED with
 * kind WEDGE_DUT_ERROR and the error's details in *cmd. */
int wedge_dut_parse(const uint8_t *text, size_t len, wedge_dut_command_t *cmd);

typedef struct wedge_dut_config {
    wedge_str_t firmware; /* EE_FW_VERSION: profile and help print it */
    wedge_str_t device;   /* EE_DEVICE_NAME: "dut" */
    wedge_str_t vendor;   /* TH_VENDOR_NAME_STRING */
    wedge_str_t model;    /* TH_MODEL_VERSION: the manifest's model name ("none" without a model) */
    wedge_str_t timer;    /* where m-lap-us times come from, printed as m-timer-[...] after profile; NULL: omitted */
} wedge_dut_config_t;

typedef struct wedge_dut {
    const wedge_port_t *port;        /* uart_write and time_us */
    const wedge_runtime_t *runtime;  /* NULL: no model runs */
    wedge_dut_config_t config;
    uint8_t *input; /* the db buffer (MAX_DB_INPUT_SIZE bytes) */
    size_t input_cap;
    size_t expected; /* db load N (0: none; above input_cap: refused) */
    size_t loaded;
    bool inferred;   /* results print the last inference's outputs, zeros before one */
    size_t cmd_len;
    bool truncated;
    uint8_t cmd[WEDGE_DUT_CMD_BYTES];
    char out[WEDGE_DUT_OUT_BYTES];
} wedge_dut_t;

int wedge_dut_init(wedge_dut_t *dut, const wedge_port_t *port, const wedge_runtime_t *runtime,
                   const wedge_dut_config_t *config, uint8_t *input, size_t input_cap);
/* A reboot: the db buffer, the last results and a half-received command are gone. */
void wedge_dut_reset(wedge_dut_t *dut);
/* ee_benchmark_initialize's lines: m-timestamp-mode-performance, a timestamp, m-init-done, m-ready. */
int wedge_dut_boot(wedge_dut_t *dut);
/* UART bytes in any pieces: each `%` answers the command before it. Call it from a thread, not the UART ISR
 * (an infer command runs the model). */
int wedge_dut_feed(wedge_dut_t *dut, const uint8_t *data, size_t len);
/* Answer one command's text (without `%`): its reply lines, then m-ready. */
int wedge_dut_handle(wedge_dut_t *dut, const uint8_t *text, size_t len);

#endif
