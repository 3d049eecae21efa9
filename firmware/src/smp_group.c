/* wedge SMP group bodies with zcbor's encoder; keys in canonical CBOR order (shorter first, then bytewise). */
#include "wedge/smp_group.h"

#include "wedge/wedge_err.h"
#include "bytes.h"
#include "zcbor_encode.h"

#define KEY(zse, lit) zcbor_tstr_put_lit(zse, lit)
#define MGMT_ERR_EINVAL 3u
#define MGMT_ERR_ENOTSUP 8u
#define OP_READ 0u
#define OP_WRITE 2u

static bool put_str(zcbor_state_t *zse, wedge_str_t s)
{
    return zcbor_tstr_encode_ptr(zse, s.ptr, s.len);
}

static bool put_digest(zcbor_state_t *zse, const uint8_t *digest)
{
    return zcbor_bstr_encode_ptr(zse, (const char *)digest, WEDGE_DIGEST_BYTES);
}

static bool descriptor_map(zcbor_state_t *zse, const wedge_fw_descriptor_t *d)
{
    /* name, board, format, version, ops_bitmap, arena_bytes, model_image, tflm_version, stream_protocol */
    return zcbor_map_start_encode(zse, 9) && KEY(zse, "name") && put_str(zse, d->name) && KEY(zse, "board") &&
           put_str(zse, d->board) && KEY(zse, "format") && zcbor_uint32_put(zse, WEDGE_DESCRIPTOR_FORMAT) &&
           KEY(zse, "version") && put_str(zse, d->version) && KEY(zse, "ops_bitmap") &&
           zcbor_bstr_encode_ptr(zse, (const char *)d->ops_bitmap, d->ops_bitmap_bytes) &&
           KEY(zse, "arena_bytes") && zcbor_uint32_put(zse, d->arena_bytes) && KEY(zse, "model_image") &&
           zcbor_uint32_put(zse, d->model_image) && KEY(zse, "tflm_version") && put_str(zse, d->tflm_version) &&
           KEY(zse, "stream_protocol") && zcbor_uint32_put(zse, d->stream_protocol) && zcbor_map_end_encode(zse, 9);
}

bool wedge_smp_board_info_entries(zcbor_state_t *zse, const wedge_board_info_t *info)
{
    /* board, runtime, firmware, key_hash, descriptor, arena_bytes, model_slot_bytes */
    if (info == NULL || info->key_hash == NULL ||
        (info->descriptor != NULL && info->descriptor->ops_bitmap == NULL)) {
        return false;
    }
    return KEY(zse, "board") && put_str(zse, info->board) && KEY(zse, "runtime") && put_str(zse, info->runtime) &&
           KEY(zse, "firmware") && put_str(zse, info->firmware) && KEY(zse, "key_hash") &&
           put_digest(zse, info->key_hash) &&
           (info->descriptor == NULL || (KEY(zse, "descriptor") && descriptor_map(zse, info->descriptor))) &&
           KEY(zse, "arena_bytes") && zcbor_uint32_put(zse, info->arena_bytes) && KEY(zse, "model_slot_bytes") &&
           zcbor_uint32_put(zse, info->model_slot_bytes);
}

bool wedge_smp_model_status_entries(zcbor_state_t *zse, const wedge_model_status_t *s)
{
    /* event, state, boot_count, model_hash, model_name, self_test_us, model_version, arena_used_bytes */
    if (s == NULL) {
        return false;
    }
    return (s->event.ptr == NULL || (KEY(zse, "event") && put_str(zse, s->event))) && KEY(zse, "state") &&
           zcbor_uint32_put(zse, (uint32_t)s->state) && KEY(zse, "boot_count") &&
           zcbor_uint32_put(zse, s->boot_count) &&
           (s->model_hash == NULL || (KEY(zse, "model_hash") && put_digest(zse, s->model_hash))) &&
           (s->model_name.ptr == NULL || (KEY(zse, "model_name") && put_str(zse, s->model_name))) &&
           (!s->has_self_test_us || (KEY(zse, "self_test_us") && zcbor_uint32_put(zse, s->self_test_us))) &&
           (s->model_version.ptr == NULL || (KEY(zse, "model_version") && put_str(zse, s->model_version))) &&
           (!s->has_arena_used || (KEY(zse, "arena_used_bytes") && zcbor_uint32_put(zse, s->arena_used_bytes)));
}

typedef bool (*entries_fn)(zcbor_state_t *zse, const void *value);

static bool board_info_fn(zcbor_state_t *zse, const void *value)
{
    return wedge_smp_board_info_entries(zse, value);
}

static bool model_status_fn(zcbor_state_t *zse, const void *value)
{
    return wedge_smp_model_status_entries(zse, value);
}

static bool rc_fn(zcbor_state_t *zse, const void *value)
{
    return KEY(zse, "rc") && zcbor_uint32_put(zse, *(const uint32_t *)value);
}

static int encode_map(entries_fn entries, const void *value, uint8_t *out, size_t cap, size_t *len)
{
    if (value == NULL || out == NULL || len == NULL) {
        return WEDGE_ERR_INVAL;
    }
    ZCBOR_STATE_E(zse, 2, out, cap, 1);
    if (!zcbor_map_start_encode(zse, 16) || !entries(zse, value) || !zcbor_map_end_encode(zse, 16)) {
        int err = zcbor_peek_error(zse);
        return err == ZCBOR_ERR_NO_PAYLOAD ? WEDGE_ERR_NOSPC : WEDGE_ERR_INVAL;
    }
    *len = (size_t)(zse->payload - out);
    return WEDGE_OK;
}

int wedge_smp_board_info_encode(const wedge_board_info_t *info, uint8_t *out, size_t cap, size_t *len)
{
    return encode_map(board_info_fn, info, out, cap, len);
}

int wedge_smp_model_status_encode(const wedge_model_status_t *status, uint8_t *out, size_t cap, size_t *len)
{
    return encode_map(model_status_fn, status, out, cap, len);
}

int wedge_smp_respond(const uint8_t *request, size_t request_len, uint16_t group_id, const wedge_board_info_t *info,
                      const wedge_model_status_t *status, uint8_t *out, size_t cap, size_t *len)
{
    if (request == NULL || info == NULL || status == NULL || out == NULL || len == NULL) {
        return WEDGE_ERR_INVAL;
    }
    if (request_len < WEDGE_SMP_HEADER_BYTES) {
        return WEDGE_ERR_NOTFOUND;
    }
    /* struct smp_hdr: res:3 ver:2 op:3 (op in the low bits), flags, u16 length, u16 group, seq, command id. */
    unsigned op = request[0] & 0x07u;
    unsigned version = (request[0] >> 3) & 0x03u;
    if ((op != OP_READ && op != OP_WRITE) || version > 1u) {
        return WEDGE_ERR_NOTFOUND;
    }
    if (cap < WEDGE_SMP_HEADER_BYTES) {
        return WEDGE_ERR_NOSPC;
    }
    uint16_t group = wedge_be16(request + 4);
    uint8_t command = request[7];
    const uint8_t *body = request + WEDGE_SMP_HEADER_BYTES;
    size_t body_len = request_len - WEDGE_SMP_HEADER_BYTES;
    uint32_t rc = 0;
    entries_fn entries = rc_fn;
    const void *value = &rc;
    /* As Zephyr's smp_handle_single_req: the handler is looked up first, then the body must be a CBOR map. */
    if (group != group_id || op != OP_READ || command > WEDGE_SMP_CMD_MODEL_STATUS) {
        rc = MGMT_ERR_ENOTSUP;
    } else if (body_len > 0 && (body[0] >> 5) != 5u) {
        rc = MGMT_ERR_EINVAL;
    } else if (command == WEDGE_SMP_CMD_BOARD_INFO) {
        entries = board_info_fn;
        value = info;
    } else {
        entries = model_status_fn;
        value = status;
    }
    size_t body_out = 0;
    int err = encode_map(entries, value, out + WEDGE_SMP_HEADER_BYTES, cap - WEDGE_SMP_HEADER_BYTES, &body_out);
    if (err != WEDGE_OK) {
        return err;
    }
    out[0] = (uint8_t)((version << 3) | (op + 1u)); /* READ_RSP = 1, WRITE_RSP = 3 */
    out[1] = 0;
    wedge_put_be16(out + 2, (uint16_t)body_out);
    wedge_put_be16(out + 4, group);
    out[6] = request[6];
    out[7] = command;
    *len = WEDGE_SMP_HEADER_BYTES + body_out;
    return WEDGE_OK;
}
