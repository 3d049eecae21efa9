/* Stream records and frames: byte for byte what encode_record, records_frame and fragment_record write. */
#include "wedge/records.h"

#include <string.h>

#include "wedge/wedge_err.h"
#include "bytes.h"

static size_t dtype_bytes(wedge_dtype_t dtype)
{
    switch (dtype) {
    case WEDGE_DTYPE_INT8:
    case WEDGE_DTYPE_UINT8:
        return 1;
    case WEDGE_DTYPE_INT16:
        return 2;
    case WEDGE_DTYPE_INT32:
    case WEDGE_DTYPE_FLOAT32:
        return 4;
    default:
        return 0;
    }
}

static bool valid(const wedge_record_t *r)
{
    if (r == NULL || (r->n_outputs > 0 && r->outputs == NULL)) {
        return false;
    }
    if (r->version == WEDGE_RECORD_VERSION ? r->epoch == 0
                                            : (r->version != WEDGE_RECORD_VERSION_1 || r->epoch != 0)) {
        return false;
    }
    for (unsigned i = 0; i < r->n_outputs; i++) {
        if (dtype_bytes(r->outputs[i].dtype) == 0 || (r->outputs[i].count > 0 && r->outputs[i].values == NULL)) {
            return false;
        }
    }
    return true;
}

size_t wedge_record_size(const wedge_record_t *r)
{
    if (!valid(r)) {
        return 0;
    }
    size_t size = r->version == WEDGE_RECORD_VERSION ? WEDGE_RECORD_HEADER_BYTES : WEDGE_RECORD_V1_HEADER_BYTES;
    for (unsigned i = 0; i < r->n_outputs; i++) {
        const wedge_output_t *o = &r->outputs[i];
        size += 4u + (o->quantized ? 8u : 0u) + (size_t)o->count * dtype_bytes(o->dtype);
    }
    return size;
}

static uint8_t *put_values(uint8_t *p, const wedge_output_t *o)
{
    switch (o->dtype) {
    case WEDGE_DTYPE_INT8:
    case WEDGE_DTYPE_UINT8:
        memcpy(p, o->values, o->count);
        return p + o->count;
    case WEDGE_DTYPE_INT16: {
        const int16_t *v = o->values;
        for (unsigned i = 0; i < o->count; i++, p += 2) {
            wedge_put_le16(p, (uint16_t)v[i]);
        }
        return p;
    }
    case WEDGE_DTYPE_INT32: {
        const int32_t *v = o->values;
        for (unsigned i = 0; i < o->count; i++, p += 4) {
            wedge_put_le32(p, (uint32_t)v[i]);
        }
        return p;
    }
    default: {
        const float *v = o->values;
        for (unsigned i = 0; i < o->count; i++, p += 4) {
            wedge_put_le32(p, wedge_f32_bits(v[i]));
        }
        return p;
    }
    }
}

int wedge_record_encode(const wedge_record_t *r, uint8_t *out, size_t cap, size_t *len)
{
    if (out == NULL || len == NULL) {
        return WEDGE_ERR_INVAL;
    }
    size_t size = wedge_record_size(r);
    if (size == 0) {
        return WEDGE_ERR_INVAL;
    }
    if (size > cap) {
        return WEDGE_ERR_NOSPC;
    }
    uint8_t *p = out;
    *p++ = r->version;
    *p++ = r->backfill ? WEDGE_RECORD_FLAG_BACKFILL : 0u;
    if (r->version == WEDGE_RECORD_VERSION) {
        wedge_put_le32(p, r->epoch);
        p += 4;
    }
    wedge_put_le32(p, r->seq);
    wedge_put_le64(p + 4, r->t_device_us);
    wedge_put_le32(p + 12, r->model_id);
    p[16] = r->n_outputs;
    p += 17;
    for (unsigned i = 0; i < r->n_outputs; i++) {
        const wedge_output_t *o = &r->outputs[i];
        p[0] = (uint8_t)o->dtype;
        p[1] = o->quantized ? WEDGE_OUTPUT_FLAG_QUANTIZED : 0u;
        wedge_put_le16(p + 2, o->count);
        p += 4;
        if (o->quantized) {
            wedge_put_le32(p, wedge_f32_bits(o->scale));
            wedge_put_le32(p + 4, (uint32_t)o->zero_point);
            p += 8;
        }
        p = put_values(p, o);
    }
    *len = size;
    return WEDGE_OK;
}

int wedge_record_key(const uint8_t *encoded, size_t len, uint32_t *epoch, uint32_t *seq)
{
    if (encoded == NULL || epoch == NULL || seq == NULL) {
        return WEDGE_ERR_INVAL;
    }
    if (len < 1) {
        return WEDGE_ERR_MALFORMED;
    }
    if (encoded[0] == WEDGE_RECORD_VERSION) {
        if (len < WEDGE_RECORD_HEADER_BYTES) {
            return WEDGE_ERR_MALFORMED;
        }
        *epoch = wedge_le32(encoded + 2);
        *seq = wedge_le32(encoded + 6);
        return *epoch == 0 ? WEDGE_ERR_MALFORMED : WEDGE_OK;
    }
    if (encoded[0] == WEDGE_RECORD_VERSION_1) {
        if (len < WEDGE_RECORD_V1_HEADER_BYTES) {
            return WEDGE_ERR_MALFORMED;
        }
        *epoch = 0;
        *seq = wedge_le32(encoded + 2);
        return WEDGE_OK;
    }
    return WEDGE_ERR_VERSION;
}

int wedge_frame_records(const uint8_t *const *records, const uint16_t *lens, size_t n, uint8_t *out, size_t cap,
                        size_t *len)
{
    if (records == NULL || lens == NULL || out == NULL || len == NULL || n == 0 || n > 255u) {
        return WEDGE_ERR_INVAL;
    }
    size_t size = WEDGE_FRAME_RECORDS_HEADER_BYTES;
    for (size_t i = 0; i < n; i++) {
        size += WEDGE_FRAME_LENGTH_BYTES + lens[i];
    }
    if (size > cap) {
        return WEDGE_ERR_NOSPC;
    }
    uint8_t *p = out;
    *p++ = WEDGE_FRAME_RECORDS;
    *p++ = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        wedge_put_le16(p, lens[i]);
        memcpy(p + 2, records[i], lens[i]);
        p += 2u + lens[i];
    }
    *len = size;
    return WEDGE_OK;
}

unsigned wedge_fragment_count(size_t len, size_t payload_bytes)
{
    if (payload_bytes <= WEDGE_FRAGMENT_HEADER_BYTES || len == 0) {
        return 0;
    }
    size_t chunk = payload_bytes - WEDGE_FRAGMENT_HEADER_BYTES;
    size_t total = (len + chunk - 1) / chunk;
    return total > WEDGE_MAX_FRAGMENTS ? 0u : (unsigned)total;
}

int wedge_frame_fragment(const uint8_t *encoded, size_t len, size_t payload_bytes, unsigned index, uint8_t *out,
                         size_t cap, size_t *out_len)
{
    if (encoded == NULL || out == NULL || out_len == NULL) {
        return WEDGE_ERR_INVAL;
    }
    uint32_t epoch;
    uint32_t seq;
    int rc = wedge_record_key(encoded, len, &epoch, &seq);
    if (rc != WEDGE_OK) {
        return rc;
    }
    unsigned total = wedge_fragment_count(len, payload_bytes);
    if (total == 0 || index >= total) {
        return WEDGE_ERR_INVAL;
    }
    size_t chunk = payload_bytes - WEDGE_FRAGMENT_HEADER_BYTES;
    size_t at = (size_t)index * chunk;
    size_t n = len - at < chunk ? len - at : chunk;
    if (WEDGE_FRAGMENT_HEADER_BYTES + n > cap) {
        return WEDGE_ERR_NOSPC;
    }
    out[0] = WEDGE_FRAME_FRAGMENT;
    wedge_put_le32(out + 1, seq);
    out[5] = (uint8_t)index;
    out[6] = (uint8_t)total;
    memcpy(out + WEDGE_FRAGMENT_HEADER_BYTES, encoded + at, n);
    *out_len = WEDGE_FRAGMENT_HEADER_BYTES + n;
    return WEDGE_OK;
}
