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
