"""The C declarations the tests reach through cffi (API mode: the compiler checks them against the headers)."""

from __future__ import annotations

from typing import Final

SOURCE: Final[str] = """
#include <stdlib.h>
#include "wedge/wedge_err.h"
#include "wedge/heart_rate.h"
#include "wedge/manifest.h"
#include "wedge/image.h"
#include "wedge/smp_group.h"
#include "wedge/dut.h"
#include "wedge/boot_check.h"
#include "wedge/records.h"
#include "wedge/ring.h"
#include "wedge/control.h"
#include "wedge/stream.h"
#include "host_port.h"
"""

CDEFS: Final[str] = """
typedef enum wedge_err { WEDGE_OK, WEDGE_ERR_INVAL, WEDGE_ERR_NOSPC, WEDGE_ERR_MALFORMED, WEDGE_ERR_VERSION,
    WEDGE_ERR_UNSUPPORTED, WEDGE_ERR_RANGE, WEDGE_ERR_NOTFOUND, WEDGE_ERR_IO, WEDGE_ERR_STATE, ... } wedge_err_t;
void *malloc(size_t size);
void free(void *ptr);

typedef struct wedge_flash { uint32_t size_bytes; uint32_t erase_bytes; uint32_t write_bytes; ...; } wedge_flash_t;
typedef struct wedge_port { ...; } wedge_port_t;
typedef struct wedge_runtime { uint32_t arena_bytes; ...; } wedge_runtime_t;

typedef enum wedge_hr_contact { WEDGE_HR_CONTACT_UNSUPPORTED, WEDGE_HR_CONTACT_NONE, WEDGE_HR_CONTACT_DETECTED }
    wedge_hr_contact_t;
typedef struct wedge_hr {
    uint16_t bpm; wedge_hr_contact_t contact; bool has_energy; uint16_t energy_kj; const uint16_t *rr_1024;
    size_t rr_count;
} wedge_hr_t;
int wedge_hr_encode(const wedge_hr_t *hr, uint8_t *out, size_t cap, size_t *len, size_t *rr_sent);
uint16_t wedge_hr_rr_units(uint32_t rr_us);

typedef struct wedge_str { const char *ptr; uint32_t len; } wedge_str_t;
typedef struct wedge_tensor {
    wedge_str_t name; wedge_str_t dtype; uint8_t n_dims; int32_t shape[...]; uint16_t n_scales;
    uint16_t n_zero_points; float scales[...]; int32_t zero_points[...]; int32_t axis;
} wedge_tensor_t;
typedef enum wedge_manifest_field { WEDGE_MF_NONE, ... } wedge_manifest_field_t;
typedef struct wedge_manifest {
    uint8_t format; uint8_t image; wedge_str_t model_name; wedge_str_t model_version; wedge_str_t board;
    wedge_str_t runtime; uint8_t n_inputs; uint8_t n_outputs; wedge_tensor_t inputs[...]; wedge_tensor_t outputs[...];
    uint32_t n_labels; uint32_t arena_bytes; uint32_t model_bytes; const uint8_t *model_sha256;
    const uint8_t *signer_key; bool has_ops; uint16_t n_ops; wedge_str_t ops[...];
} wedge_manifest_t;
int wedge_manifest_read(const uint8_t *cbor, size_t len, wedge_manifest_t *out, wedge_manifest_field_t *bad);
const char *wedge_manifest_field_name(wedge_manifest_field_t field);

typedef struct wedge_image_info {
    uint32_t header_bytes; uint32_t body_bytes; uint32_t flags; uint8_t version_major; uint8_t version_minor;
    uint16_t version_revision; uint32_t version_build; uint32_t protected_offset; uint32_t protected_bytes;
    uint32_t tlv_offset; uint32_t tlv_bytes; uint32_t total_bytes; bool has_sha256; uint8_t sha256[32];
} wedge_image_info_t;
int wedge_image_read(const wedge_flash_t *slot, wedge_image_info_t *info);
int wedge_image_find_tlv(const wedge_flash_t *slot, const wedge_image_info_t *info, bool protected_area,
                         uint16_t type, uint32_t *offset, uint32_t *len);

typedef struct wedge_fw_descriptor {
    wedge_str_t name; wedge_str_t version; wedge_str_t board; wedge_str_t tflm_version; uint32_t arena_bytes;
    uint32_t stream_protocol; uint8_t model_image; const uint8_t *ops_bitmap; uint32_t ops_bitmap_bytes;
} wedge_fw_descriptor_t;
typedef struct wedge_board_info {
    wedge_str_t board; wedge_str_t runtime; uint32_t model_slot_bytes; uint32_t arena_bytes;
    const uint8_t *key_hash; wedge_str_t firmware; const wedge_fw_descriptor_t *descriptor;
} wedge_board_info_t;
typedef enum wedge_model_state { WEDGE_MODEL_NO_MODEL, WEDGE_MODEL_RUNNING, WEDGE_MODEL_FAILED } wedge_model_state_t;
typedef struct wedge_model_status {
    wedge_model_state_t state; uint32_t boot_count; wedge_str_t model_name; wedge_str_t model_version;
    const uint8_t *model_hash; bool has_arena_used; uint32_t arena_used_bytes; bool has_self_test_us;
    uint32_t self_test_us; wedge_str_t event;
} wedge_model_status_t;
int wedge_smp_board_info_encode(const wedge_board_info_t *info, uint8_t *out, size_t cap, size_t *len);
int wedge_smp_model_status_encode(const wedge_model_status_t *status, uint8_t *out, size_t cap, size_t *len);
int wedge_smp_respond(const uint8_t *request, size_t request_len, uint16_t group_id, const wedge_board_info_t *info,
                      const wedge_model_status_t *status, uint8_t *out, size_t cap, size_t *len);

typedef enum wedge_dut_kind { WEDGE_DUT_EMPTY, WEDGE_DUT_NAME, WEDGE_DUT_PROFILE, WEDGE_DUT_TIMESTAMP,
    WEDGE_DUT_RESULTS, WEDGE_DUT_HELP, WEDGE_DUT_DB_PRINT, WEDGE_DUT_DB_LOAD, WEDGE_DUT_DB_DATA, WEDGE_DUT_INFER,
    WEDGE_DUT_ERROR } wedge_dut_kind_t;
typedef struct wedge_dut_command {
    wedge_dut_kind_t kind; int32_t size_bytes; int32_t runs; int32_t warmup_runs; const uint8_t *hex; size_t hex_len;
    int error; ...;
} wedge_dut_command_t;
int wedge_dut_parse(const uint8_t *text, size_t len, wedge_dut_command_t *cmd);
typedef struct wedge_dut_config {
    wedge_str_t firmware; wedge_str_t device; wedge_str_t vendor; wedge_str_t model; wedge_str_t timer;
} wedge_dut_config_t;
typedef struct wedge_dut { ...; } wedge_dut_t;
int wedge_dut_init(wedge_dut_t *dut, const wedge_port_t *port, const wedge_runtime_t *runtime,
                   const wedge_dut_config_t *config, uint8_t *input, size_t input_cap);
void wedge_dut_reset(wedge_dut_t *dut);
int wedge_dut_boot(wedge_dut_t *dut);
int wedge_dut_feed(wedge_dut_t *dut, const uint8_t *data, size_t len);
int wedge_dut_handle(wedge_dut_t *dut, const uint8_t *text, size_t len);

typedef enum wedge_confirm_policy { WEDGE_CONFIRM_BY_HOST, WEDGE_CONFIRM_ON_SELF_TEST } wedge_confirm_policy_t;
typedef enum wedge_boot_decision { WEDGE_BOOT_NO_MODEL, WEDGE_BOOT_RUN, WEDGE_BOOT_RUN_TESTING, WEDGE_BOOT_CONFIRMED,
    WEDGE_BOOT_FAILED, WEDGE_BOOT_REVERT } wedge_boot_decision_t;
typedef struct wedge_boot_input {
    const wedge_flash_t *model_slot; uint8_t model_image; bool testing; wedge_str_t board;
    wedge_confirm_policy_t policy; uint32_t boot_count; const wedge_runtime_t *runtime; const wedge_port_t *port;
} wedge_boot_input_t;
typedef struct wedge_boot_result {
    wedge_boot_decision_t decision; wedge_model_state_t state; bool has_model; uint32_t self_test_us;
    uint32_t arena_used_bytes; bool has_hash; uint8_t model_hash[32]; char model_name[...]; char model_version[...];
    char event[...];
} wedge_boot_result_t;
typedef struct wedge_boot_scratch { ...; } wedge_boot_scratch_t;
int wedge_boot_check(const wedge_boot_input_t *in, wedge_boot_scratch_t *scratch, wedge_boot_result_t *out);
void wedge_boot_status(const wedge_boot_result_t *result, uint32_t boot_count, wedge_model_status_t *status);
const char *wedge_boot_precheck(const wedge_manifest_t *m, const wedge_runtime_t *rt, char *text, size_t cap);

typedef enum wedge_dtype { WEDGE_DTYPE_INT8, WEDGE_DTYPE_UINT8, WEDGE_DTYPE_INT16, WEDGE_DTYPE_INT32,
    WEDGE_DTYPE_FLOAT32 } wedge_dtype_t;
typedef struct wedge_output {
    wedge_dtype_t dtype; bool quantized; float scale; int32_t zero_point; const void *values; uint16_t count;
} wedge_output_t;
typedef struct wedge_record {
    uint8_t version; bool backfill; uint32_t epoch; uint32_t seq; uint64_t t_device_us; uint32_t model_id;
    const wedge_output_t *outputs; uint8_t n_outputs;
} wedge_record_t;
size_t wedge_record_size(const wedge_record_t *record);
int wedge_record_encode(const wedge_record_t *record, uint8_t *out, size_t cap, size_t *len);
int wedge_record_key(const uint8_t *encoded, size_t len, uint32_t *epoch, uint32_t *seq);
int wedge_frame_records(const uint8_t *const *records, const uint16_t *lens, size_t n, uint8_t *out, size_t cap,
                        size_t *len);
unsigned wedge_fragment_count(size_t len, size_t payload_bytes);
int wedge_frame_fragment(const uint8_t *encoded, size_t len, size_t payload_bytes, unsigned index, uint8_t *out,
                         size_t cap, size_t *out_len);

typedef struct wedge_epoch_span { uint32_t epoch; uint32_t first_seq; uint32_t end_seq; uint32_t base; }
    wedge_epoch_span_t;
typedef struct wedge_ring {
    uint32_t epoch; uint32_t boot_count; uint32_t next_seq; uint32_t capacity_records; ...;
} wedge_ring_t;
typedef uint32_t (*wedge_random_fn)(void *ctx);
int wedge_ring_open(wedge_ring_t *ring, const wedge_flash_t *flash, uint32_t max_record_bytes,
                    wedge_random_fn random, void *random_ctx);
int wedge_ring_append(wedge_ring_t *ring, const uint8_t *encoded, size_t len);
int wedge_ring_read(wedge_ring_t *ring, uint32_t epoch, uint32_t seq, uint32_t offset, uint8_t *buf, size_t cap,
                    size_t *len, size_t *record_len);
int wedge_ring_span(const wedge_ring_t *ring, uint32_t epoch, wedge_epoch_span_t *out);
uint32_t wedge_ring_oldest_seq(const wedge_ring_t *ring);
unsigned wedge_ring_past_epochs(const wedge_ring_t *ring, wedge_epoch_span_t *out, unsigned cap);

typedef struct wedge_control {
    uint8_t opcode; uint32_t rate_mhz; uint32_t epoch; uint32_t first_seq; uint32_t end_seq;
} wedge_control_t;
int wedge_control_parse(const uint8_t *data, size_t len, wedge_control_t *out);
uint8_t wedge_control_att_error(int rc);
typedef struct wedge_status {
    bool streaming; uint64_t device_id; uint32_t epoch; uint32_t oldest_seq; uint32_t next_seq;
    uint32_t capacity_records; uint32_t rate_mhz; uint32_t model_id; uint32_t boot_count; uint8_t n_past;
    wedge_epoch_span_t past[8];
} wedge_status_t;
int wedge_status_encode(const wedge_status_t *status, uint8_t *out, size_t cap, size_t *len);

typedef struct wedge_stream { bool streaming; uint32_t rate_mhz; ...; } wedge_stream_t;
int wedge_stream_init(wedge_stream_t *stream, wedge_ring_t *ring, const wedge_port_t *port, uint32_t rate_mhz);
int wedge_stream_control(wedge_stream_t *stream, const uint8_t *data, size_t len);
void wedge_stream_backfill(wedge_stream_t *stream, uint32_t epoch, uint32_t first_seq, uint32_t end_seq);
bool wedge_stream_pending(const wedge_stream_t *stream);
int wedge_stream_pump(wedge_stream_t *stream, size_t payload_bytes, unsigned budget, unsigned *sent);
void wedge_stream_status(const wedge_stream_t *stream, uint64_t device_id, uint32_t model_id, wedge_status_t *out);

uint32_t host_random(void *ctx);

typedef struct host_flash {
    uint8_t *mem; uint32_t size_bytes; int64_t power_cut_after_bytes; bool dead; uint32_t bytes_written;
    uint32_t erases; wedge_flash_t flash;
} host_flash_t;
void host_flash_init(host_flash_t *h, uint8_t *mem, uint32_t size_bytes, uint32_t erase_bytes, uint32_t write_bytes);
void host_flash_power_on(host_flash_t *h);
typedef struct host_port {
    uint8_t *uart; size_t uart_cap; size_t uart_len; uint8_t *notify; size_t notify_cap; size_t notify_len;
    uint32_t notify_count; int notify_fail_after; uint64_t now_us; uint64_t step_us; int32_t confirmed_image;
    wedge_port_t port;
} host_port_t;
void host_port_init(host_port_t *h, uint8_t *uart, size_t uart_cap, uint8_t *notify, size_t notify_cap);
typedef struct host_runtime {
    size_t input_bytes; size_t output_count; const char *ops; int self_test_rc; const char *self_test_reason;
    int fail_infer_after; uint32_t inferences; uint32_t self_tests; uint32_t input_sum; uint32_t loaded_bytes;
    uint32_t last_body_offset; uint32_t last_body_bytes; wedge_runtime_t runtime;
} host_runtime_t;
size_t host_format_f32(float value, char *out, size_t cap);
void host_runtime_init(host_runtime_t *h, uint32_t arena_bytes, size_t input_bytes, size_t output_count,
                       const char *ops);
"""
