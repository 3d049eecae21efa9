/* The wedge stream's control point and status value, as wedge/firmware/protocol/ble_control.py defines them:
 *
 * Control point (write with response): 0x01 start | 0x02 stop | 0x03 set rate: u32 mHz (not 0) |
 *   0x04 backfill: u32 first | u32 end (exclusive, 0xFFFFFFFF = to the newest), current epoch |
 *   0x05 backfill epoch: u32 epoch (not 0) | u32 first | u32 end
 * An unknown opcode (or an empty write) is ATT error 0x80, a known one with bad parameters 0x81.
 * Status (read), version 2: u8 2 | u8 flags (bit 0 streaming) | u64 device id | u32 epoch | u32 oldest seq |
 *   u32 next seq | u32 capacity | u32 rate mHz | u32 model id | u32 boot count | u8 n | n x (u32 epoch |
 *   u32 first | u32 end), n <= 8 past epochs, oldest first. Version 1 (device id 0): no device id, epoch, epochs.
 */
#ifndef WEDGE_CONTROL_H
#define WEDGE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wedge/ring.h"

#define WEDGE_CONTROL_START 0x01u
#define WEDGE_CONTROL_STOP 0x02u
#define WEDGE_CONTROL_SET_RATE 0x03u
#define WEDGE_CONTROL_BACKFILL 0x04u
#define WEDGE_CONTROL_BACKFILL_EPOCH 0x05u
#define WEDGE_BACKFILL_TO_NEWEST 0xFFFFFFFFu
#define WEDGE_ATT_ERROR_UNKNOWN_OPCODE 0x80u
#define WEDGE_ATT_ERROR_BAD_PARAMETER 0x81u
#define WEDGE_STATUS_VERSION 2u
#define WEDGE_STATUS_VERSION_1 1u
#define WEDGE_STATUS_HEADER_BYTES 39u
#define WEDGE_STATUS_V1_BYTES 26u
#define WEDGE_STATUS_MAX_BYTES (WEDGE_STATUS_HEADER_BYTES + 12u * WEDGE_MAX_PAST_EPOCHS)

typedef struct wedge_control {
    uint8_t opcode;
    uint32_t rate_mhz;
    uint32_t epoch; /* 0: the current epoch (WEDGE_CONTROL_BACKFILL) */
    uint32_t first_seq;
    uint32_t end_seq;
} wedge_control_t;

/* Parse one control point write. WEDGE_ERR_UNSUPPORTED: an empty write or an unknown opcode; WEDGE_ERR_MALFORMED:
 * a known opcode with the wrong parameter bytes, a rate of 0, epoch 0, a reversed range. */
int wedge_control_parse(const uint8_t *data, size_t len, wedge_control_t *out);
/* The ATT error a device answers a refused write with (0 for WEDGE_OK). */
uint8_t wedge_control_att_error(int rc);

typedef struct wedge_status {
    bool streaming;
    uint64_t device_id; /* 0: a version 1 status */
    uint32_t epoch;
    uint32_t oldest_seq;
    uint32_t next_seq;
    uint32_t capacity_records;
    uint32_t rate_mhz;
    uint32_t model_id;
    uint32_t boot_count;
    uint8_t n_past;
    wedge_epoch_span_t past[WEDGE_MAX_PAST_EPOCHS];
} wedge_status_t;

int wedge_status_encode(const wedge_status_t *status, uint8_t *out, size_t cap, size_t *len);

#endif
