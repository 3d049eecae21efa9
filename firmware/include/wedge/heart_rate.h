/* The standard Heart Rate Measurement characteristic (0x2A37), as wedge/firmware/protocol/heart_rate.py lays it out:
 * u8 flags | u8 or u16 heart rate | [u16 energy expended, kJ] | [u16 RR intervals, 1/1024 s].
 */
#ifndef WEDGE_HEART_RATE_H
#define WEDGE_HEART_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEDGE_HR_FLAG_UINT16 0x01u
#define WEDGE_HR_FLAG_CONTACT_DETECTED 0x02u
#define WEDGE_HR_FLAG_CONTACT_SUPPORTED 0x04u
#define WEDGE_HR_FLAG_ENERGY 0x08u
#define WEDGE_HR_FLAG_RR 0x10u

typedef enum wedge_hr_contact {
    WEDGE_HR_CONTACT_UNSUPPORTED = 0, /* the sensor cannot tell */
    WEDGE_HR_CONTACT_NONE = 1,
    WEDGE_HR_CONTACT_DETECTED = 2
} wedge_hr_contact_t;

typedef struct wedge_hr {
    uint16_t bpm;
    wedge_hr_contact_t contact;
    bool has_energy;
    uint16_t energy_kj;
    const uint16_t *rr_1024; /* RR intervals in 1/1024 s */
    size_t rr_count;
} wedge_hr_t;

/* The measurement into out[0..cap): as many RR intervals as fit (the spec sends the rest in the next one), their
 * count in *rr_sent. WEDGE_ERR_NOSPC when not even the flags, rate and energy fit. */
int wedge_hr_encode(const wedge_hr_t *hr, uint8_t *out, size_t cap, size_t *len, size_t *rr_sent);

/* An RR interval in microseconds as 1/1024 s units, rounded half to even and clamped to 16 bits (as rr_units). */
uint16_t wedge_hr_rr_units(uint32_t rr_us);

#endif
