/* wedge's own SMP (mcumgr) group, as wedge/firmware/protocol/wedge_group.py defines it: command 0 board info
 * (identity, budgets, trusted key hash, firmware descriptor), command 1 model status. Its group id is the
 * firmware's choice (64..65535; 96 by default).
 *
 * In a Zephyr application the *_entries functions fill the map mcumgr opened (see firmware/README.md); without
 * mcumgr, wedge_smp_respond answers a whole SMP request. Bodies are canonical CBOR (built with ZCBOR_CANONICAL),
 * the bytes the Python side's encode_response writes; absent fields are left out.
 */
#ifndef WEDGE_SMP_GROUP_H
#define WEDGE_SMP_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wedge/manifest.h"
#include "zcbor_common.h"

#define WEDGE_SMP_GROUP_ID_DEFAULT 96u
#define WEDGE_SMP_GROUP_ID_PERUSER 64u
#define WEDGE_SMP_CMD_BOARD_INFO 0u
#define WEDGE_SMP_CMD_MODEL_STATUS 1u
#define WEDGE_SMP_HEADER_BYTES 8u
#define WEDGE_DESCRIPTOR_FORMAT 1u

/* A string literal as a wedge_str_t. */
#define WEDGE_STR(lit) ((wedge_str_t){(lit), (uint32_t)(sizeof(lit) - 1u)})

/* The running application's firmware descriptor as the group reports it (FirmwareDescriptor.to_report). */
typedef struct wedge_fw_descriptor {
    wedge_str_t name;
    wedge_str_t version;
    wedge_str_t board;
    wedge_str_t tflm_version;
    uint32_t arena_bytes;
    uint32_t stream_protocol;
    uint8_t model_image;
    const uint8_t *ops_bitmap; /* bit n: TFLite BuiltinOperator n is registered */
    uint32_t ops_bitmap_bytes;
} wedge_fw_descriptor_t;

typedef struct wedge_board_info {
    wedge_str_t board;
    wedge_str_t runtime;
    uint32_t model_slot_bytes;
    uint32_t arena_bytes;
    const uint8_t *key_hash; /* 32 bytes: SHA-256 of the public key the bootloader trusts */
    wedge_str_t firmware;    /* "name version" */
    const wedge_fw_descriptor_t *descriptor; /* NULL: left out */
} wedge_board_info_t;

typedef enum wedge_model_state {
    WEDGE_MODEL_NO_MODEL = 0,
    WEDGE_MODEL_RUNNING = 1,
    WEDGE_MODEL_FAILED = 2
} wedge_model_state_t;

/* ModelStatus.body(): a NULL ptr or a false has_* leaves the field out. */
typedef struct wedge_model_status {
    wedge_model_state_t state;
    uint32_t boot_count;
    wedge_str_t model_name;
    wedge_str_t model_version;
    const uint8_t *model_hash; /* 32 bytes */
    bool has_arena_used;
    uint32_t arena_used_bytes;
    bool has_self_test_us;
    uint32_t self_test_us;
    wedge_str_t event;
} wedge_model_status_t;

/* The entries of each body, into a map the caller opened (Zephyr: the mcumgr handler's zse). */
bool wedge_smp_board_info_entries(zcbor_state_t *zse, const wedge_board_info_t *info);
bool wedge_smp_model_status_entries(zcbor_state_t *zse, const wedge_model_status_t *status);

/* Each body as a whole CBOR map into out[0..cap). */
int wedge_smp_board_info_encode(const wedge_board_info_t *info, uint8_t *out, size_t cap, size_t *len);
int wedge_smp_model_status_encode(const wedge_model_status_t *status, uint8_t *out, size_t cap, size_t *len);

/* The group's answer to one SMP request (8-byte header + CBOR body) into out: the body for a read of command 0 or
 * 1 of `group_id`, `rc: 8` (ENOTSUP) for another command, op or group, `rc: 3` (EINVAL) for a body that is not a
 * CBOR map, as Zephyr answers. WEDGE_ERR_NOTFOUND when the message is not a request (nothing to answer). */
int wedge_smp_respond(const uint8_t *request, size_t request_len, uint16_t group_id, const wedge_board_info_t *info,
                      const wedge_model_status_t *status, uint8_t *out, size_t cap, size_t *len);

#endif
