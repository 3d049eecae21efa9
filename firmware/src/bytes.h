/* Little- and big-endian stores and loads: the core never casts a byte pointer to a wider type, so neither the
 * host's endianness nor a Cortex-M's alignment rules change a layout. (Internal header.)
 */
#ifndef WEDGE_BYTES_H
#define WEDGE_BYTES_H

#include <stdint.h>
#include <string.h>

static inline void wedge_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void wedge_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void wedge_put_le64(uint8_t *p, uint64_t v)
{
    wedge_put_le32(p, (uint32_t)v);
    wedge_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline void wedge_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline uint16_t wedge_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t wedge_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t wedge_le64(const uint8_t *p)
{
    return (uint64_t)wedge_le32(p) | ((uint64_t)wedge_le32(p + 4) << 32);
}

static inline uint16_t wedge_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t wedge_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* A float's bits, without type punning through a pointer. */
static inline uint32_t wedge_f32_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static inline float wedge_f32_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#endif
