/* The stream's frames, built from the ring buffer (see stream.h). */
#include "wedge/stream.h"

#include <string.h>

#include "wedge/records.h"
#include "wedge/wedge_err.h"
#include "bytes.h"

#define BACKFILL_SHARE_DIVISOR 3u

int wedge_stream_init(wedge_stream_t *s, wedge_ring_t *ring, const wedge_port_t *port, uint32_t rate_mhz)
{
    if (s == NULL || ring == NULL || port == NULL || port->notify == NULL) {
        return WEDGE_ERR_INVAL;
    }
    memset(s, 0, sizeof *s);
    s->ring = ring;
    s->port = port;
    s->rate_mhz = rate_mhz;
    s->streaming = true;
    s->live = (wedge_stream_writer_t){true, true, ring->epoch, ring->next_seq, 0, false, 0, 0, 0, 0};
    return WEDGE_OK;
}

static void set_streaming(wedge_stream_t *s, bool on)
{
    if (on && !s->streaming) {
        s->live.next = s->ring->next_seq; /* records made while stopped were never queued */
    }
    s->streaming = on;
    s->live.active = on;
}

void wedge_stream_backfill(wedge_stream_t *s, uint32_t epoch, uint32_t first_seq, uint32_t end_seq)
{
    wedge_epoch_span_t span;
    if (s == NULL || wedge_ring_span(s->ring, epoch, &span) != WEDGE_OK) {
        return;
    }
    uint32_t end = end_seq == WEDGE_BACKFILL_TO_NEWEST ? span.end_seq : end_seq;
    s->backfill.active = true;
    s->backfill.live = false;
    s->backfill.epoch = epoch;
    s->backfill.next = first_seq > span.first_seq ? first_seq : span.first_seq;
    s->backfill.end = end < span.end_seq ? end : span.end_seq;
}

int wedge_stream_control(wedge_stream_t *s, const uint8_t *data, size_t len)
{
    if (s == NULL) {
        return WEDGE_ERR_INVAL;
    }
    wedge_control_t c;
    int rc = wedge_control_parse(data, len, &c);
    if (rc != WEDGE_OK) {
        return rc;
    }
    switch (c.opcode) {
    case WEDGE_CONTROL_START:
        set_streaming(s, true);
        break;
    case WEDGE_CONTROL_STOP:
        set_streaming(s, false);
        break;
    case WEDGE_CONTROL_SET_RATE:
        s->rate_mhz = c.rate_mhz;
        break;
    default:
        wedge_stream_backfill(s, c.opcode == WEDGE_CONTROL_BACKFILL ? s->ring->epoch : c.epoch, c.first_seq,
                              c.end_seq);
        break;
    }
    return WEDGE_OK;
}

static uint32_t writer_end(const wedge_stream_t *s, const wedge_stream_writer_t *w)
{
    return w->live ? s->ring->next_seq : w->end;
}

static bool has_records(const wedge_stream_t *s, const wedge_stream_writer_t *w)
{
    return w->active && w->next < writer_end(s, w) && (!w->live || w->epoch == s->ring->epoch);
}

static bool writer_pending(const wedge_stream_t *s, const wedge_stream_writer_t *w)
{
    return w->mid || has_records(s, w);
}

bool wedge_stream_pending(const wedge_stream_t *s)
{
    return s != NULL && (writer_pending(s, &s->live) || writer_pending(s, &s->backfill));
}

/* The length of record (epoch, seq); past records the ring lost are skipped (next moves to the oldest kept). */
static int next_length(wedge_stream_t *s, wedge_stream_writer_t *w, size_t *len)
{
    while (has_records(s, w)) {
        size_t unused;
        int rc = wedge_ring_read(s->ring, w->epoch, w->next, 0, NULL, 0, &unused, len);
        if (rc != WEDGE_ERR_NOTFOUND) {
            return rc;
        }
        wedge_epoch_span_t span;
        if (wedge_ring_span(s->ring, w->epoch, &span) != WEDGE_OK || span.first_seq <= w->next) {
            w->active = w->live; /* the epoch left the buffer: nothing more to send from it */
            w->next = writer_end(s, w);
            return WEDGE_ERR_NOTFOUND;
        }
        w->next = span.first_seq;
    }
    return WEDGE_ERR_NOTFOUND;
}

/* The next frame of writer `w` into s->frame; *len 0 when it has none. The writer advances in *w only. */
static int next_frame(wedge_stream_t *s, wedge_stream_writer_t *w, size_t payload, size_t *len)
{
    *len = 0;
    for (;;) {
        if (w->mid) {
            size_t chunk = payload - WEDGE_FRAGMENT_HEADER_BYTES;
            size_t copied;
            size_t record_len;
            int rc = wedge_ring_read(s->ring, w->frag_epoch, w->frag_seq, (uint32_t)(w->frag_index * chunk),
                                     s->frame + WEDGE_FRAGMENT_HEADER_BYTES, chunk, &copied, &record_len);
            if (rc == WEDGE_ERR_NOTFOUND || (rc == WEDGE_OK && copied == 0)) {
                w->mid = false; /* evicted under us: the reader drops the cut record */
                continue;
            }
            if (rc != WEDGE_OK) {
                return rc;
            }
            s->frame[0] = WEDGE_FRAME_FRAGMENT;
            wedge_put_le32(s->frame + 1, w->frag_seq);
            s->frame[5] = w->frag_index;
            s->frame[6] = w->frag_total;
            if (w->frag_index == 0 && !w->live && copied > 1) {
                s->frame[WEDGE_FRAGMENT_HEADER_BYTES + 1] |= WEDGE_RECORD_FLAG_BACKFILL;
            }
            *len = WEDGE_FRAGMENT_HEADER_BYTES + copied;
            if (++w->frag_index == w->frag_total) {
                w->mid = false;
            }
            return WEDGE_OK;
        }
        size_t first;
        int rc = next_length(s, w, &first);
        if (rc == WEDGE_ERR_NOTFOUND) {
            return WEDGE_OK;
        }
        if (rc != WEDGE_OK) {
            return rc;
        }
        if (WEDGE_FRAME_RECORDS_HEADER_BYTES + WEDGE_FRAME_LENGTH_BYTES + first > payload) {
            unsigned total = wedge_fragment_count(first, payload);
            if (total == 0) {
                w->next++; /* more than 255 fragments at this MTU: it cannot be sent */
                continue;
            }
            w->mid = true;
            w->frag_epoch = w->epoch;
            w->frag_seq = w->next++;
            w->frag_index = 0;
            w->frag_total = (uint8_t)total;
            continue;
        }
        size_t at = WEDGE_FRAME_RECORDS_HEADER_BYTES;
        unsigned count = 0;
        size_t record = first;
        do {
            size_t copied;
            rc = wedge_ring_read(s->ring, w->epoch, w->next, 0, s->frame + at + WEDGE_FRAME_LENGTH_BYTES, record,
                                 &copied, &record);
            if (rc != WEDGE_OK) {
                return rc;
            }
            wedge_put_le16(s->frame + at, (uint16_t)record);
            if (!w->live) {
                s->frame[at + WEDGE_FRAME_LENGTH_BYTES + 1] |= WEDGE_RECORD_FLAG_BACKFILL;
            }
            at += WEDGE_FRAME_LENGTH_BYTES + record;
            count++;
            w->next++;
            if (count == 255u || !has_records(s, w) ||
                wedge_ring_read(s->ring, w->epoch, w->next, 0, NULL, 0, &copied, &record) != WEDGE_OK) {
                break;
            }
        } while (at + WEDGE_FRAME_LENGTH_BYTES + record <= payload);
        s->frame[0] = WEDGE_FRAME_RECORDS;
        s->frame[1] = (uint8_t)count;
        *len = at;
        return WEDGE_OK;
    }
}

int wedge_stream_pump(wedge_stream_t *s, size_t payload, unsigned budget, unsigned *sent)
{
    if (s == NULL || sent == NULL || payload < WEDGE_ATT_MTU_MIN - WEDGE_ATT_NOTIFY_OVERHEAD) {
        return WEDGE_ERR_INVAL;
    }
    *sent = 0;
    if (payload > sizeof s->frame) {
        payload = sizeof s->frame;
    }
    unsigned share = writer_pending(s, &s->backfill) ? (budget / BACKFILL_SHARE_DIVISOR > 0
                                                              ? budget / BACKFILL_SHARE_DIVISOR : 1u) : 0u;
    for (unsigned index = 0; index < budget; index++) {
        wedge_stream_writer_t *first = index < share ? &s->backfill : &s->live;
        wedge_stream_writer_t *second = index < share ? &s->live : &s->backfill;
        if (second->mid) {
            wedge_stream_writer_t *t = first;
            first = second;
            second = t;
        }
        wedge_stream_writer_t *used = first;
        wedge_stream_writer_t trial = *first;
        size_t len;
        int rc = next_frame(s, &trial, payload, &len);
        if (rc == WEDGE_OK && len == 0) {
            *first = trial; /* it skipped records the ring no longer holds */
            used = second;
            trial = *second;
            rc = next_frame(s, &trial, payload, &len);
        }
        if (rc != WEDGE_OK) {
            return rc;
        }
        if (len == 0) {
            *used = trial;
            return WEDGE_OK;
        }
        if (s->port->notify(s->port->ctx, s->frame, len) != 0) {
            return WEDGE_ERR_IO; /* the writer did not advance: the same frame goes next time */
        }
        *used = trial;
        (*sent)++;
    }
    return WEDGE_OK;
}

void wedge_stream_status(const wedge_stream_t *s, uint64_t device_id, uint32_t model_id, wedge_status_t *out)
{
    memset(out, 0, sizeof *out);
    out->streaming = s->streaming;
    out->device_id = device_id;
    out->epoch = s->ring->epoch;
    out->oldest_seq = wedge_ring_oldest_seq(s->ring);
    out->next_seq = s->ring->next_seq;
    out->capacity_records = s->ring->capacity_records;
    out->rate_mhz = s->rate_mhz;
    out->model_id = model_id;
    out->boot_count = s->ring->boot_count;
    out->n_past = (uint8_t)wedge_ring_past_epochs(s->ring, out->past, WEDGE_MAX_PAST_EPOCHS);
}
