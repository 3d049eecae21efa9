/* The MLPerf Tiny DUT command parser and responder: dut.parse_command's rules and the reply lines of the
 * reference firmware (and of wedge's virtual board, which answers as it does), byte for byte.
 */
#include "wedge/dut.h"

#include <string.h>

#include "wedge/wedge_err.h"
#include "text.h"

#define LINE_END "\r\n"

/* Python's str.split() whitespace among ASCII (non-ASCII bytes arrive as U+FFFD, which is not whitespace). */
static bool is_space(uint8_t c)
{
    return c == ' ' || (c >= 0x09u && c <= 0x0Du) || (c >= 0x1Cu && c <= 0x1Fu);
}

typedef struct token {
    const uint8_t *ptr;
    size_t len;
} token_t;

/* Up to `max` whitespace-separated tokens; the count of all of them in *count. */
static size_t split(const uint8_t *s, size_t n, token_t *tokens, size_t max)
{
    size_t count = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && is_space(s[i])) {
            i++;
        }
        if (i == n) {
            break;
        }
        size_t begin = i;
        while (i < n && !is_space(s[i])) {
            i++;
        }
        if (count < max) {
            tokens[count].ptr = s + begin;
            tokens[count].len = i - begin;
        }
        count++;
    }
    return count;
}

static bool token_is(token_t t, const char *word)
{
    size_t n = strlen(word);
    return t.len == n && memcmp(t.ptr, word, n) == 0;
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static int fail(wedge_dut_command_t *cmd, wedge_dut_error_t error, token_t token)
{
    cmd->kind = WEDGE_DUT_ERROR;
    cmd->error = error;
    cmd->token = token.ptr;
    cmd->token_len = token.len;
    return WEDGE_ERR_MALFORMED;
}

/* `-?[0-9]+` within 32 bits. */
static int parse_int(wedge_dut_command_t *cmd, token_t t, wedge_dut_what_t what, int32_t *out)
{
    cmd->what = what;
    size_t i = (t.len > 0 && t.ptr[0] == '-') ? 1u : 0u;
    if (i == t.len) {
        return fail(cmd, WEDGE_DUT_E_NOT_INTEGER, t);
    }
    uint64_t magnitude = 0;
    bool too_big = false;
    for (; i < t.len; i++) {
        if (t.ptr[i] < '0' || t.ptr[i] > '9') {
            return fail(cmd, WEDGE_DUT_E_NOT_INTEGER, t);
        }
        magnitude = magnitude * 10u + (uint64_t)(t.ptr[i] - '0');
        if (magnitude > 0x80000000u) {
            too_big = true;
            magnitude = 0x80000001u; /* keep scanning for a non-digit, without overflowing */
        }
    }
    bool negative = t.ptr[0] == '-';
    if (too_big || magnitude > (negative ? 0x80000000u : 0x7FFFFFFFu)) {
        return fail(cmd, WEDGE_DUT_E_NOT_32_BIT, t);
    }
    *out = negative ? (int32_t)(0 - (int64_t)magnitude) : (int32_t)magnitude;
    return WEDGE_OK;
}

int wedge_dut_parse(const uint8_t *text, size_t len, wedge_dut_command_t *cmd)
{
    if ((text == NULL && len > 0) || cmd == NULL) {
        return WEDGE_ERR_INVAL;
    }
    memset(cmd, 0, sizeof *cmd);
    token_t tok[4];
    size_t n = split(text, len, tok, 4);
    if (n == 0) {
        cmd->kind = WEDGE_DUT_EMPTY;
        return WEDGE_OK;
    }
    token_t head = tok[0];
    static const struct {
        const char *word;
        wedge_dut_kind_t kind;
    } simple[] = {{"name", WEDGE_DUT_NAME}, {"profile", WEDGE_DUT_PROFILE}, {"timestamp", WEDGE_DUT_TIMESTAMP},
                  {"results", WEDGE_DUT_RESULTS}, {"help", WEDGE_DUT_HELP}};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        if (token_is(head, simple[i].word)) {
            cmd->kind = simple[i].kind;
            return WEDGE_OK;
        }
    }
    if (token_is(head, "db")) {
        if (n < 2) {
            return fail(cmd, WEDGE_DUT_E_DB_SUBCOMMAND, head);
        }
        if (token_is(tok[1], "print")) {
            cmd->kind = WEDGE_DUT_DB_PRINT;
            return WEDGE_OK;
        }
        if (token_is(tok[1], "load")) {
            if (n < 3) {
                return fail(cmd, WEDGE_DUT_E_DB_LOAD_SIZE, tok[1]);
            }
            int rc = parse_int(cmd, tok[2], WEDGE_DUT_WHAT_DB_LOAD, &cmd->size_bytes);
            if (rc != WEDGE_OK) {
                return rc;
            }
            if (cmd->size_bytes <= 0) {
                return fail(cmd, WEDGE_DUT_E_DB_LOAD_ZERO, tok[2]);
            }
            cmd->kind = WEDGE_DUT_DB_LOAD;
            return WEDGE_OK;
        }
        token_t digits = tok[1];
        if (digits.len % 2u) {
            return fail(cmd, WEDGE_DUT_E_HEX_ODD, digits);
        }
        for (size_t i = 0; i < digits.len; i += 2) {
            if (hex_value(digits.ptr[i]) < 0 || hex_value(digits.ptr[i + 1]) < 0) {
                token_t pair = {digits.ptr + i, 2};
                return fail(cmd, WEDGE_DUT_E_HEX_DIGIT, pair);
            }
        }
        cmd->kind = WEDGE_DUT_DB_DATA;
        cmd->hex = digits.ptr;
        cmd->hex_len = digits.len;
        return WEDGE_OK;
    }
    if (token_is(head, "infer")) {
        cmd->runs = 1;
        cmd->warmup_runs = WEDGE_DUT_DEFAULT_WARMUP_RUNS;
        if (n > 1) {
            int rc = parse_int(cmd, tok[1], WEDGE_DUT_WHAT_INFER_N, &cmd->runs);
            if (rc != WEDGE_OK) {
                return rc;
            }
        }
        if (cmd->runs <= 0) {
            return fail(cmd, WEDGE_DUT_E_RUNS, tok[1]);
        }
        if (n > 2) {
            int rc = parse_int(cmd, tok[2], WEDGE_DUT_WHAT_INFER_W, &cmd->warmup_runs);
            if (rc != WEDGE_OK) {
                return rc;
            }
        }
        if (cmd->warmup_runs < 0) {
            return fail(cmd, WEDGE_DUT_E_WARMUP, tok[2]);
        }
        cmd->kind = WEDGE_DUT_INFER;
        return WEDGE_OK;
    }
    return fail(cmd, WEDGE_DUT_E_UNKNOWN, head);
}

/* -- the responder --------------------------------------------------------------------------------------------- */

static int uart_flush(void *ctx, const uint8_t *data, size_t len)
{
    const wedge_port_t *port = ctx;
    return port->uart_write(port->ctx, data, len) == 0 ? WEDGE_OK : WEDGE_ERR_IO;
}

static void out_open(wedge_dut_t *dut, wedge_text_t *t)
{
    wedge_text_init(t, dut->out, sizeof dut->out);
    t->flush = uart_flush;
    t->ctx = (void *)dut->port;
}

static void line(wedge_text_t *t, const char *s)
{
    wedge_text_fmt(t, "%s" LINE_END, s);
}

static uint64_t now_us(const wedge_dut_t *dut)
{
    return dut->port->time_us != NULL ? dut->port->time_us(dut->port->ctx) : 0u;
}

static void lap_line(wedge_text_t *t, uint64_t us)
{
    wedge_text_fmt(t, "m-lap-us-%U" LINE_END, us);
}

int wedge_dut_init(wedge_dut_t *dut, const wedge_port_t *port, const wedge_runtime_t *runtime,
                   const wedge_dut_config_t *config, uint8_t *input, size_t input_cap)
{
    if (dut == NULL || port == NULL || port->uart_write == NULL || config == NULL || (input == NULL && input_cap)) {
        return WEDGE_ERR_INVAL;
    }
    memset(dut, 0, sizeof *dut);
    dut->port = port;
    dut->runtime = runtime;
    dut->config = *config;
    dut->input = input;
    dut->input_cap = input_cap;
    return WEDGE_OK;
}

void wedge_dut_reset(wedge_dut_t *dut)
{
    if (dut != NULL) {
        dut->expected = 0;
        dut->loaded = 0;
        dut->inferred = false;
        dut->cmd_len = 0;
        dut->truncated = false;
    }
}

int wedge_dut_boot(wedge_dut_t *dut)
{
    if (dut == NULL) {
        return WEDGE_ERR_INVAL;
    }
    wedge_text_t t;
    out_open(dut, &t);
    wedge_text_fmt(&t, "m-timestamp-mode-performance" LINE_END "m-lap-us-%U" LINE_END "m-init-done" LINE_END
                       "m-ready" LINE_END, now_us(dut));
    return wedge_text_flush(&t);
}

static const char *const HELP[] = {
    "", "help         : Print this information", "name         : Print the name of the device",
    "timestsamp   : Generate a timetsamp", "db SUBCMD    : Manipulate a generic byte buffer",
    "  load N     : Allocate N bytes and set load counter", "  db HH[HH]* : Load 8-bit hex byte(s) until N bytes",
    "  print [N=16] [offset=0]", "             : Print N bytes at offset as hex",
    "infer N [W=0]: Load input, execute N inferences after W warmup loops",
    "results      : Return the result fp32 vector",
};

static void error_line(wedge_text_t *t, const wedge_dut_command_t *cmd)
{
    static const char *const WHAT[] = {"db load", "infer N", "infer W"};
    static const char *const FORMATS[] = {
        [WEDGE_DUT_E_DB_SUBCOMMAND] = "Command 'db' requires a subcommand",
        [WEDGE_DUT_E_DB_LOAD_SIZE] = "Command 'db load' requires the # of bytes",
        [WEDGE_DUT_E_DB_LOAD_ZERO] = "Command 'db load' must be >0 bytes",
        [WEDGE_DUT_E_HEX_ODD] = "Insufficent number of hex digits",
        [WEDGE_DUT_E_HEX_DIGIT] = "Invalid hex digit '%B'",
        [WEDGE_DUT_E_NOT_INTEGER] = "%s must be an integer, got %R",
        [WEDGE_DUT_E_NOT_32_BIT] = "%s does not fit in 32 bits, got %R",
        [WEDGE_DUT_E_RUNS] = "Inference iterations must be >0",
        [WEDGE_DUT_E_WARMUP] = "Inference warmup must be >=0",
        [WEDGE_DUT_E_UNKNOWN] = "Unknown command: %B",
    };
    wedge_text_str(t, "e-[");
    if (cmd->error == WEDGE_DUT_E_NOT_INTEGER || cmd->error == WEDGE_DUT_E_NOT_32_BIT) {
        wedge_text_fmt(t, FORMATS[cmd->error], WHAT[cmd->what], cmd->token, cmd->token_len);
    } else {
        wedge_text_fmt(t, FORMATS[cmd->error], cmd->token, cmd->token_len);
    }
    wedge_text_str(t, "]" LINE_END);
}

static void results_line(wedge_dut_t *dut, wedge_text_t *t)
{
    const wedge_runtime_t *rt = dut->runtime;
    size_t count = rt != NULL && rt->output_count != NULL ? rt->output_count(rt->ctx) : 0u;
    wedge_text_str(t, "m-results-[");
    for (size_t i = 0; i < count; i++) {
        float value = 0.0f;
        if (dut->inferred && rt->output(rt->ctx, i, &value) != 0) {
            value = 0.0f;
        }
        if (i > 0) {
            wedge_text_char(t, ',');
        }
        wedge_text_f32(t, value);
    }
    wedge_text_str(t, "]" LINE_END);
}

static void db_print(wedge_dut_t *dut, wedge_text_t *t)
{
    for (size_t i = 0; i < dut->loaded; i++) {
        wedge_text_str(t, i % 8u == 0 ? "m-buffer-" : "-");
        wedge_text_hex2(t, dut->input[i]);
        if (i % 8u == 7u || i + 1 == dut->loaded) {
            wedge_text_str(t, LINE_END);
        }
    }
}

static void db_load(wedge_dut_t *dut, wedge_text_t *t, int32_t size)
{
    dut->loaded = 0;
    dut->expected = (size_t)size;
    if (dut->expected > dut->input_cap) {
        wedge_text_fmt(t, "Supplied buffer size %u exceeds maximum of %U" LINE_END, (uint32_t)size,
                       (uint64_t)dut->input_cap);
        return;
    }
    wedge_text_fmt(t, "m-[Expecting %u bytes]" LINE_END, (uint32_t)size);
}

static void db_data(wedge_dut_t *dut, wedge_text_t *t, const wedge_dut_command_t *cmd)
{
    if (dut->expected == 0 || dut->expected > dut->input_cap) {
        return; /* the reference writes nowhere useful and says nothing */
    }
    for (size_t i = 0; i + 1 < cmd->hex_len && dut->loaded < dut->expected; i += 2) {
        dut->input[dut->loaded++] = (uint8_t)((hex_value(cmd->hex[i]) << 4) | hex_value(cmd->hex[i + 1]));
    }
    if (dut->loaded == dut->expected) {
        line(t, "m-load-done"); /* digits past the announced size are ignored */
    }
}

static void infer(wedge_dut_t *dut, wedge_text_t *t, const wedge_dut_command_t *cmd)
{
    const wedge_runtime_t *rt = dut->runtime;
    if (rt == NULL) {
        line(t, "e-[no model is running]");
        return;
    }
    size_t need = rt->input_bytes(rt->ctx);
    size_t have = dut->loaded < need ? dut->loaded : need;
    if (have != need) {
        wedge_text_fmt(t, "Input db has %U elemented, expected %U" LINE_END, (uint64_t)have, (uint64_t)need);
    }
    int rc = rt->load_input(rt->ctx, dut->input, have);
    wedge_text_fmt(t, "m-warmup-start-%d" LINE_END, cmd->warmup_runs);
    wedge_text_flush(t); /* the runner sees the start before the runs */
    for (int32_t i = 0; rc == 0 && i < cmd->warmup_runs; i++) {
        rc = rt->infer(rt->ctx);
    }
    uint64_t begin = 0;
    uint64_t end = 0;
    if (rc == 0) {
        wedge_text_fmt(t, "m-warmup-done" LINE_END "m-infer-start-%d" LINE_END, cmd->runs);
        wedge_text_flush(t);
        begin = now_us(dut);
        for (int32_t i = 0; rc == 0 && i < cmd->runs; i++) {
            rc = rt->infer(rt->ctx);
        }
        end = now_us(dut);
    }
    if (rc != 0) {
        wedge_text_fmt(t, "e-[inference failed: runtime error %d]" LINE_END, (int32_t)rc);
        return;
    }
    wedge_text_fmt(t, "m-lap-us-%U" LINE_END "m-lap-us-%U" LINE_END "m-infer-done" LINE_END, begin, end);
    dut->inferred = true;
    results_line(dut, t);
}

int wedge_dut_handle(wedge_dut_t *dut, const uint8_t *text, size_t len)
{
    if (dut == NULL) {
        return WEDGE_ERR_INVAL;
    }
    wedge_dut_command_t cmd;
    int parsed = wedge_dut_parse(text, len, &cmd);
    if (parsed == WEDGE_ERR_INVAL) {
        return parsed;
    }
    wedge_text_t t;
    out_open(dut, &t);
    switch (cmd.kind) {
    case WEDGE_DUT_ERROR:
        error_line(&t, &cmd);
        break;
    case WEDGE_DUT_NAME:
        wedge_text_fmt(&t, "m-name-%S-[%S]" LINE_END, &dut->config.device, &dut->config.vendor);
        break;
    case WEDGE_DUT_TIMESTAMP:
        lap_line(&t, now_us(dut));
        break;
    case WEDGE_DUT_PROFILE:
        wedge_text_fmt(&t, "m-profile-[%S]" LINE_END "m-model-[%S]" LINE_END, &dut->config.firmware,
                       &dut->config.model);
        if (dut->config.timer.ptr != NULL) {
            wedge_text_fmt(&t, "m-timer-[%S]" LINE_END, &dut->config.timer);
        }
        break;
    case WEDGE_DUT_HELP:
        wedge_text_fmt(&t, "%S" LINE_END, &dut->config.firmware);
        for (size_t i = 0; i < sizeof HELP / sizeof HELP[0]; i++) {
            line(&t, HELP[i]);
        }
        break;
    case WEDGE_DUT_DB_LOAD:
        db_load(dut, &t, cmd.size_bytes);
        break;
    case WEDGE_DUT_DB_PRINT:
        db_print(dut, &t);
        break;
    case WEDGE_DUT_DB_DATA:
        db_data(dut, &t, &cmd);
        break;
    case WEDGE_DUT_RESULTS:
        results_line(dut, &t);
        break;
    case WEDGE_DUT_INFER:
        infer(dut, &t, &cmd);
        break;
    default: /* WEDGE_DUT_EMPTY */
        break;
    }
    line(&t, "m-ready");
    return wedge_text_flush(&t);
}

/* The command text as dut_server.py hands it to the parser: surrounding whitespace stripped. */
static int dispatch(wedge_dut_t *dut)
{
    size_t begin = 0;
    size_t end = dut->cmd_len;
    while (begin < end && is_space(dut->cmd[begin])) {
        begin++;
    }
    while (end > begin && is_space(dut->cmd[end - 1])) {
        end--;
    }
    dut->cmd_len = 0;
    return wedge_dut_handle(dut, dut->cmd + begin, end - begin);
}

int wedge_dut_feed(wedge_dut_t *dut, const uint8_t *data, size_t len)
{
    if (dut == NULL || (data == NULL && len > 0)) {
        return WEDGE_ERR_INVAL;
    }
    int result = WEDGE_OK;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == (uint8_t)WEDGE_DUT_TERMINATOR) {
            bool cut = dut->truncated;
            dut->truncated = false;
            int rc = dispatch(dut);
            if (rc != WEDGE_OK && result == WEDGE_OK) {
                result = rc;
            }
            if (cut && result == WEDGE_OK) {
                result = WEDGE_ERR_RANGE;
            }
        } else if (dut->cmd_len < sizeof dut->cmd) {
            dut->cmd[dut->cmd_len++] = data[i];
        } else {
            dut->cmd[sizeof dut->cmd - 1] = data[i]; /* g_cmd_pos stays at the end: the last byte is replaced */
            dut->truncated = true;
        }
    }
    return result;
}
