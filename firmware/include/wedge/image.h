/* An MCUboot image in a flash slot, as wedge/firmware/image/format.py lays it out: the 32-byte header, the body,
 * the protected TLV area (wedge's manifest 0x00A5 or firmware descriptor 0x00A6) and the TLV area (SHA-256 0x10,
 * key hash, ed25519 signature). Only the structure is checked: MCUboot verified hash and signature at boot.
 */
#ifndef WEDGE_IMAGE_H
#define WEDGE_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "wedge/port.h"

#define WEDGE_IMAGE_MAGIC 0x96F3B83Du
#define WEDGE_IMAGE_HEADER_BYTES 32u
#define WEDGE_TLV_INFO_MAGIC 0x6907u
#define WEDGE_TLV_PROT_INFO_MAGIC 0x6908u
#define WEDGE_TLV_SHA256 0x0010u
#define WEDGE_TLV_WEDGE_MANIFEST 0x00A5u
#define WEDGE_TLV_WEDGE_FIRMWARE 0x00A6u

typedef struct wedge_image_info {
    uint32_t header_bytes;
    uint32_t body_bytes;
    uint32_t flags;
    uint8_t version_major;
    uint8_t version_minor;
    uint16_t version_revision;
    uint32_t version_build;
    uint32_t protected_offset; /* the protected TLV area (its info header included), 0 bytes when absent */
    uint32_t protected_bytes;
    uint32_t tlv_offset;       /* the TLV area, its info header included */
    uint32_t tlv_bytes;
    uint32_t total_bytes;
    bool has_sha256;
    uint8_t sha256[32]; /* the image hash SMP reports (the SHA-256 TLV) */
} wedge_image_info_t;

/* The image at the start of `slot`. WEDGE_ERR_NOTFOUND: no image header (an erased slot); WEDGE_ERR_MALFORMED: a
 * header whose areas do not fit the slot or do not chain. */
int wedge_image_read(const wedge_flash_t *slot, wedge_image_info_t *info);

/* The first TLV of `type` in the protected area (protected = true) or the TLV area: its value's place and size. */
int wedge_image_find_tlv(const wedge_flash_t *slot, const wedge_image_info_t *info, bool protected_area,
                         uint16_t type, uint32_t *offset, uint32_t *len);

#endif
