/* The wedge stream's notify side for one connection, over the ring buffer: live records of the current epoch as
 * they are appended, a backfill range the host asked for, cut into notification frames as ble_records.py's
 * FrameWriter cuts them, scheduled as the virtual board's RecordStreamer schedules them (live first, a third of
 * each connection event for a pending backfill, a fragmented record's frames back to back).
 *
 * The records stay in flash: frames are read from the ring as they are built, nothing is queued twice. A record
 * evicted while it is being sent is cut short (the host's reader drops it, and backfills it if it is still there).
 */
#ifndef WEDGE_STREAM_H
#define WEDGE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wedge/control.h"
#include "wedge/port.h"
#include "wedge/ring.h"
#include "wedge/wedge_config.h"

/* One frame writer: the records [next, end) of an epoch (live: the current epoch up to the ring's next_seq). */
typedef struct wedge_stream_writer {
    bool active;
    bool live;
    uint32_t epoch;
    uint32_t next;
    uint32_t end;
    /* a record being fragmented */
    bool mid;
    uint32_t frag_epoch;
    uint32_t frag_seq;
    uint8_t frag_index;
    uint8_t frag_total;
} wedge_stream_writer_t;

typedef struct wedge_stream {
    wedge_ring_t *ring;
    const wedge_port_t *port;
    bool streaming;
    uint32_t rate_mhz;
    wedge_stream_writer_t live;
    wedge_stream_writer_t backfill;
    uint8_t frame[WEDGE_FRAME_MAX_BYTES];
} wedge_stream_t;

/* A new subscriber: streaming from the ring's next record on (as a subscription starts the virtual board's). */
int wedge_stream_init(wedge_stream_t *stream, wedge_ring_t *ring, const wedge_port_t *port, uint32_t rate_mhz);

/* A control point write: start, stop, set rate, or backfill. Returns 0, or the refusal (see wedge_control_parse
 * and wedge_control_att_error for the ATT error to answer). */
int wedge_stream_control(wedge_stream_t *stream, const uint8_t *data, size_t len);

/* Queue the buffered records of `epoch` in [first_seq, end_seq) (end 0xFFFFFFFF: to the newest), replacing a
 * backfill still being sent; an epoch not buffered queues nothing and keeps the one being sent. */
void wedge_stream_backfill(wedge_stream_t *stream, uint32_t epoch, uint32_t first_seq, uint32_t end_seq);

/* True when a frame is waiting (live or backfill). */
bool wedge_stream_pending(const wedge_stream_t *stream);

/* Send up to `budget` notifications of at most `payload_bytes` (ATT_MTU - 3, clipped to WEDGE_FRAME_MAX_BYTES) in
 * one connection event; *sent counts them. A notification the port refuses (its TX buffers are full) is not
 * lost: WEDGE_ERR_IO, and the next call sends it again. */
int wedge_stream_pump(wedge_stream_t *stream, size_t payload_bytes, unsigned budget, unsigned *sent);

/* The status value's fields for this connection. */
void wedge_stream_status(const wedge_stream_t *stream, uint64_t device_id, uint32_t model_id, wedge_status_t *out);

#endif
