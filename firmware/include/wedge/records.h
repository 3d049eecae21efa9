/* The wedge stream's records and notification frames, as wedge/firmware/protocol/ble_records.py lays them out
 * (little-endian, fixed offsets, no padding):
 *
 * Record version 2: u8 2 | u8 flags (bit 0 backfill) | u32 epoch (never 0) | u32 seq | u64 t_device_us |
 *                   u32 model_id | u8 output count | outputs
 * Record version 1: u8 1 | u8 flags | u32 seq | u64 t_device_us | u32 model_id | u8 output count | outputs
 * Output: u8 dtype | u8 flags (bit 0 quantized) | u16 count | [f32 scale | i32 zero point] | count values
 * Frame 0x01 records:  u8 0x01 | u8 count | count x (u16 length | record)
 * Frame 0x02 fragment: u8 0x02 | u32 seq | u8 index | u8 total | a slice of the record (one record's fragments
 *                      back to back, each frame at most ATT_MTU - 3 bytes)
 */
#ifndef WEDGE_RECORDS_H
#define WEDGE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEDGE_RECORD_VERSION 2u
#define WEDGE_RECORD_VERSION_1 1u
#define WEDGE_RECORD_FLAG_BACKFILL 0x01u
#define WEDGE_OUTPUT_FLAG_QUANTIZED 0x01u
#define WEDGE_RECORD_HEADER_BYTES 23u   /* version 2 */
#define WEDGE_RECORD_V1_HEADER_BYTES 19u
#define WEDGE_FRAME_RECORDS 0x01u
#define WEDGE_FRAME_FRAGMENT 0x02u
#define WEDGE_FRAME_RECORDS_HEADER_BYTES 2u
#define WEDGE_FRAME_LENGTH_BYTES 2u
#define WEDGE_FRAGMENT_HEADER_BYTES 7u
#define WEDGE_MAX_FRAGMENTS 255u
#define WEDGE_ATT_MTU_MIN 23u
#define WEDGE_ATT_NOTIFY_OVERHEAD 3u

typedef enum wedge_dtype {
    WEDGE_DTYPE_INT8 = 0,
    WEDGE_DTYPE_UINT8 = 1,
    WEDGE_DTYPE_INT16 = 2,
    WEDGE_DTYPE_INT32 = 3,
    WEDGE_DTYPE_FLOAT32 = 4
} wedge_dtype_t;

/* One output tensor, flattened: `values` points to `count` values of `dtype` in the CPU's own layout (int8_t,
 * uint8_t, int16_t, int32_t or float); the encoder writes them little-endian. */
typedef struct wedge_output {
    wedge_dtype_t dtype;
    bool quantized;
    float scale;
    int32_t zero_point;
    const void *values;
    uint16_t count;
} wedge_output_t;

typedef struct wedge_record {
    uint8_t version; /* 2, or 1 for an epoch-less record */
    bool backfill;
    uint32_t epoch;  /* 1.. for version 2; 0 for version 1 */
    uint32_t seq;
    uint64_t t_device_us;
    uint32_t model_id;
    const wedge_output_t *outputs;
    uint8_t n_outputs;
} wedge_record_t;

/* The encoded size of `record` (0 when it cannot be encoded). */
size_t wedge_record_size(const wedge_record_t *record);
int wedge_record_encode(const wedge_record_t *record, uint8_t *out, size_t cap, size_t *len);
/* (epoch, seq) from an encoded record's header (epoch 0 for version 1). */
int wedge_record_key(const uint8_t *encoded, size_t len, uint32_t *epoch, uint32_t *seq);

/* A records frame of n encoded records; WEDGE_ERR_NOSPC when they do not fit `cap`. */
int wedge_frame_records(const uint8_t *const *records, const uint16_t *lens, size_t n, uint8_t *out, size_t cap,
                        size_t *len);
/* How many fragments a record of `len` bytes takes in `payload_bytes` notifications (0: impossible). */
unsigned wedge_fragment_count(size_t len, size_t payload_bytes);
/* Fragment `index` of an encoded record in `payload_bytes` notifications. */
int wedge_frame_fragment(const uint8_t *encoded, size_t len, size_t payload_bytes, unsigned index, uint8_t *out,
                         size_t cap, size_t *out_len);

#endif
