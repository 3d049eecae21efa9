/* MCUboot image structure: the header, and the walk over a TLV area (u16 type, u16 length, value). */
#include "wedge/image.h"

#include <string.h>

#include "wedge/wedge_err.h"
#include "bytes.h"

/* An area's info header (magic, total bytes with the header) at `offset`; its total in *total. */
static int tlv_area(const wedge_flash_t *slot, uint32_t offset, uint16_t magic, uint32_t *total)
{
    uint8_t info[4];
    if (offset > slot->size_bytes || slot->size_bytes - offset < sizeof info) {
        return WEDGE_ERR_MALFORMED;
    }
    int rc = wedge_flash_read(slot, offset, info, sizeof info);
    if (rc != WEDGE_OK) {
        return rc;
    }
    uint32_t tot = wedge_le16(info + 2);
    if (wedge_le16(info) != magic || tot < sizeof info || tot > slot->size_bytes - offset) {
        return WEDGE_ERR_MALFORMED;
    }
    *total = tot;
    return WEDGE_OK;
}

int wedge_image_read(const wedge_flash_t *slot, wedge_image_info_t *info)
{
    if (slot == NULL || info == NULL) {
        return WEDGE_ERR_INVAL;
    }
    memset(info, 0, sizeof *info);
    uint8_t h[WEDGE_IMAGE_HEADER_BYTES];
    if (slot->size_bytes < sizeof h) {
        return WEDGE_ERR_NOTFOUND;
    }
    int rc = wedge_flash_read(slot, 0, h, sizeof h);
    if (rc != WEDGE_OK) {
        return rc;
    }
    if (wedge_le32(h) != WEDGE_IMAGE_MAGIC) {
        return WEDGE_ERR_NOTFOUND;
    }
    /* struct image_header: magic, load_addr, hdr_size u16, protect_tlv_size u16, img_size, flags, version. */
    info->header_bytes = wedge_le16(h + 8);
    uint32_t protect = wedge_le16(h + 10);
    info->body_bytes = wedge_le32(h + 12);
    info->flags = wedge_le32(h + 16);
    info->version_major = h[20];
    info->version_minor = h[21];
    info->version_revision = wedge_le16(h + 22);
    info->version_build = wedge_le32(h + 24);
    if (info->header_bytes < WEDGE_IMAGE_HEADER_BYTES || info->header_bytes > slot->size_bytes ||
        info->body_bytes > slot->size_bytes - info->header_bytes) {
        return WEDGE_ERR_MALFORMED;
    }
    uint32_t at = info->header_bytes + info->body_bytes;
    if (protect != 0) {
        rc = tlv_area(slot, at, WEDGE_TLV_PROT_INFO_MAGIC, &info->protected_bytes);
        if (rc != WEDGE_OK) {
            return rc;
        }
        if (info->protected_bytes != protect) {
            return WEDGE_ERR_MALFORMED;
        }
        info->protected_offset = at;
        at += info->protected_bytes;
    }
    rc = tlv_area(slot, at, WEDGE_TLV_INFO_MAGIC, &info->tlv_bytes);
    if (rc != WEDGE_OK) {
        return rc;
    }
    info->tlv_offset = at;
    info->total_bytes = at + info->tlv_bytes;
    uint32_t offset;
    uint32_t len;
    rc = wedge_image_find_tlv(slot, info, false, WEDGE_TLV_SHA256, &offset, &len);
    if (rc == WEDGE_OK && len == sizeof info->sha256) {
        rc = wedge_flash_read(slot, offset, info->sha256, len);
        if (rc != WEDGE_OK) {
            return rc;
        }
        info->has_sha256 = true;
    } else if (rc != WEDGE_OK && rc != WEDGE_ERR_NOTFOUND) {
        return rc;
    }
    return WEDGE_OK;
}

int wedge_image_find_tlv(const wedge_flash_t *slot, const wedge_image_info_t *info, bool protected_area,
                         uint16_t type, uint32_t *offset, uint32_t *len)
{
    if (slot == NULL || info == NULL || offset == NULL || len == NULL) {
        return WEDGE_ERR_INVAL;
    }
    uint32_t at = protected_area ? info->protected_offset : info->tlv_offset;
    uint32_t area = protected_area ? info->protected_bytes : info->tlv_bytes;
    if (area == 0) {
        return WEDGE_ERR_NOTFOUND;
    }
    uint32_t end = at + area;
    at += 4;
    while (at < end) {
        uint8_t entry[4];
        if (end - at < sizeof entry) {
            return WEDGE_ERR_MALFORMED;
        }
        int rc = wedge_flash_read(slot, at, entry, sizeof entry);
        if (rc != WEDGE_OK) {
            return rc;
        }
        uint32_t value_len = wedge_le16(entry + 2);
        at += sizeof entry;
        if (value_len > end - at) {
            return WEDGE_ERR_MALFORMED;
        }
        if (wedge_le16(entry) == type) {
            *offset = at;
            *len = value_len;
            return WEDGE_OK;
        }
        at += value_len;
    }
    return WEDGE_ERR_NOTFOUND;
}
