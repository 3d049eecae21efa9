/* Control point parser and status encoder: decode_command's rules and encode_status's bytes. */
#include "wedge/control.h"

#include "wedge/wedge_err.h"
#include "bytes.h"

int wedge_control_parse(const uint8_t *data, size_t len, wedge_control_t *out)
{
    if ((data == NULL && len > 0) || out == NULL) {
        return WEDGE_ERR_INVAL;
    }
    *out = (wedge_control_t){0, 0, 0, 0, WEDGE_BACKFILL_TO_NEWEST};
    if (len == 0 || data[0] < WEDGE_CONTROL_START || data[0] > WEDGE_CONTROL_BACKFILL_EPOCH) {
        return WEDGE_ERR_UNSUPPORTED;
    }
    static const uint8_t PARAMETER_BYTES[] = {0, 0, 4, 8, 12};
    out->opcode = data[0];
    if (len - 1u != PARAMETER_BYTES[data[0] - 1u]) {
        return WEDGE_ERR_MALFORMED;
    }
    const uint8_t *p = data + 1;
    switch (out->opcode) {
    case WEDGE_CONTROL_SET_RATE:
        out->rate_mhz = wedge_le32(p);
        return out->rate_mhz == 0 ? WEDGE_ERR_MALFORMED : WEDGE_OK; /* 0 Hz: use stop */
    case WEDGE_CONTROL_BACKFILL_EPOCH:
        out->epoch = wedge_le32(p);
        if (out->epoch == 0) {
            return WEDGE_ERR_MALFORMED;
        }
        p += 4;
        /* fallthrough */
    case WEDGE_CONTROL_BACKFILL:
        out->first_seq = wedge_le32(p);
        out->end_seq = wedge_le32(p + 4);
        return out->first_seq > out->end_seq ? WEDGE_ERR_MALFORMED : WEDGE_OK;
    default:
        return WEDGE_OK;
    }
}

uint8_t wedge_control_att_error(int rc)
{
    if (rc == WEDGE_OK) {
        return 0;
    }
    return rc == WEDGE_ERR_MALFORMED ? WEDGE_ATT_ERROR_BAD_PARAMETER : WEDGE_ATT_ERROR_UNKNOWN_OPCODE;
}

int wedge_status_encode(const wedge_status_t *s, uint8_t *out, size_t cap, size_t *len)
{
    if (s == NULL || out == NULL || len == NULL || s->n_past > WEDGE_MAX_PAST_EPOCHS) {
        return WEDGE_ERR_INVAL;
    }
    uint8_t flags = s->streaming ? 0x01u : 0u;
    if (s->device_id == 0) {
        if (cap < WEDGE_STATUS_V1_BYTES) {
            return WEDGE_ERR_NOSPC;
        }
        out[0] = WEDGE_STATUS_VERSION_1;
        out[1] = flags;
        const uint32_t fields[] = {s->oldest_seq, s->next_seq, s->capacity_records, s->rate_mhz, s->model_id,
                                   s->boot_count};
        for (unsigned i = 0; i < 6; i++) {
            wedge_put_le32(out + 2 + 4 * i, fields[i]);
        }
        *len = WEDGE_STATUS_V1_BYTES;
        return WEDGE_OK;
    }
    size_t size = WEDGE_STATUS_HEADER_BYTES + 12u * s->n_past;
    if (s->epoch == 0 || s->oldest_seq > s->next_seq) {
        return WEDGE_ERR_INVAL;
    }
    if (cap < size) {
        return WEDGE_ERR_NOSPC;
    }
    out[0] = WEDGE_STATUS_VERSION;
    out[1] = flags;
    wedge_put_le64(out + 2, s->device_id);
    const uint32_t fields[] = {s->epoch, s->oldest_seq, s->next_seq, s->capacity_records, s->rate_mhz, s->model_id,
                               s->boot_count};
    for (unsigned i = 0; i < 7; i++) {
        wedge_put_le32(out + 10 + 4 * i, fields[i]);
    }
    out[38] = s->n_past;
    for (unsigned i = 0; i < s->n_past; i++) {
        const wedge_epoch_span_t *span = &s->past[i];
        if (span->epoch == 0 || span->first_seq > span->end_seq) {
            return WEDGE_ERR_INVAL;
        }
        wedge_put_le32(out + 39 + 12 * i, span->epoch);
        wedge_put_le32(out + 43 + 12 * i, span->first_seq);
        wedge_put_le32(out + 47 + 12 * i, span->end_seq);
    }
    *len = size;
    return WEDGE_OK;
}
