/* Heart Rate Measurement (0x2A37) encoder: the same bytes as encode_heart_rate in
 * wedge/firmware/protocol/heart_rate.py, cut to the notification it must fit.
 */
#include "wedge/heart_rate.h"

#include "wedge/wedge_err.h"
#include "bytes.h"

int wedge_hr_encode(const wedge_hr_t *hr, uint8_t *out, size_t cap, size_t *len, size_t *rr_sent)
{
    if (hr == NULL || out == NULL || len == NULL || rr_sent == NULL || (hr->rr_count > 0 && hr->rr_1024 == NULL) ||
        hr->contact > WEDGE_HR_CONTACT_DETECTED) {
        return WEDGE_ERR_INVAL;
    }
    uint8_t flags = 0;
    if (hr->bpm > 0xFFu) {
        flags |= WEDGE_HR_FLAG_UINT16;
    }
    if (hr->contact != WEDGE_HR_CONTACT_UNSUPPORTED) {
        flags |= WEDGE_HR_FLAG_CONTACT_SUPPORTED;
        if (hr->contact == WEDGE_HR_CONTACT_DETECTED) {
            flags |= WEDGE_HR_FLAG_CONTACT_DETECTED;
        }
    }
    if (hr->has_energy) {
        flags |= WEDGE_HR_FLAG_ENERGY;
    }
    size_t fixed = 1u + ((flags & WEDGE_HR_FLAG_UINT16) ? 2u : 1u) + (hr->has_energy ? 2u : 0u);
    if (cap < fixed) {
        return WEDGE_ERR_NOSPC;
    }
    size_t rr = hr->rr_count;
    if (rr > (cap - fixed) / 2u) {
        rr = (cap - fixed) / 2u;
    }
    if (rr > 0) {
        flags |= WEDGE_HR_FLAG_RR;
    }
    size_t at = 0;
    out[at++] = flags;
    if (flags & WEDGE_HR_FLAG_UINT16) {
        wedge_put_le16(out + at, hr->bpm);
        at += 2;
    } else {
        out[at++] = (uint8_t)hr->bpm;
    }
    if (hr->has_energy) {
        wedge_put_le16(out + at, hr->energy_kj);
        at += 2;
    }
    for (size_t i = 0; i < rr; i++) {
        wedge_put_le16(out + at, hr->rr_1024[i]);
        at += 2;
    }
    *len = at;
    *rr_sent = rr;
    return WEDGE_OK;
}

uint16_t wedge_hr_rr_units(uint32_t rr_us)
{
    /* rr_us * 1024 / 1e6 = rr_us * 16 / 15625; 15625 is odd, so the quotient is never a tie. 32-bit arithmetic:
     * from 64 s on, the value is clamped anyway. */
    if (rr_us >= 64000000u) {
        return 0xFFFFu;
    }
    uint32_t units = (rr_us * 16u + 15625u / 2u) / 15625u;
    return units > 0xFFFFu ? 0xFFFFu : (uint16_t)units;
}
