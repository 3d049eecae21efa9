/* The record ring buffer: the newest records of the current and up to 8 past boot epochs, in a flash region,
 * surviving reboots and power cuts (what wedge/firmware/virtual/ble/ring_buffer.py keeps in a file log).
 *
 * Flash layout: the region is a circle of sectors (at least 2), each opening with a 16-byte header: u32 sector
 * counter (grows by one per sector started), u32 epoch and u32 boot count of the boot that started it, u16 magic
 * "WR", u16 CRC-16/CCITT of the 14 bytes before it. The header is one write, its check last, so a header a power
 * cut interrupted (or that programmed only some bits) is a sector not in use, never a wrong epoch. Entries follow, aligned to the program unit: a 4-byte header (u16 length, bit 15 set for a boot entry;
 * u16 CRC-16/CCITT of the body) written after the body, so an entry cut by a power loss is never read back.
 * Each boot appends a boot entry (u32 epoch, u32 boot count): one flash write per boot, none per record beyond
 * its own. When the head sector is full the next one is erased, and its records leave the buffer.
 *
 * At boot the sectors are read in counter order and the epochs table (at most 1 + WEDGE_MAX_PAST_EPOCHS spans of
 * epoch, first and end) is rebuilt from the record headers. A log that breaks the rules (epoch 0, a number
 * skipped inside an epoch, an epoch that comes back) ends where it breaks, as read_log does; the sectors after
 * that are erased.
 */
#ifndef WEDGE_RING_H
#define WEDGE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wedge/port.h"
#include "wedge/wedge_config.h"

#define WEDGE_MAX_PAST_EPOCHS 8u
#define WEDGE_RING_SECTOR_HEADER_BYTES 16u
#define WEDGE_RING_MAGIC 0x5257u /* "WR", in the sector header before its CRC */
#define WEDGE_NO_EPOCH 0u
#define WEDGE_MAX_EPOCH 0xFFFFFFFFu
#define WEDGE_RANDOM_EPOCH_LIMIT 0x80000000u /* a random first epoch is below 2^31 */

typedef struct wedge_epoch_span {
    uint32_t epoch;
    uint32_t first_seq; /* the oldest buffered number */
    uint32_t end_seq;   /* one past the newest */
    uint32_t base;      /* the log index of first_seq */
} wedge_epoch_span_t;

typedef struct wedge_ring {
    const wedge_flash_t *flash;
    uint32_t sector_bytes;
    uint32_t align;
    uint16_t n_sectors;
    uint16_t head;         /* the sector appended to */
    uint32_t head_offset;  /* where the next entry goes in it (sector_bytes: sealed, move on) */
    bool head_open;        /* the head sector has a header (false: erase and start it before writing) */
    uint32_t counter;      /* the head sector's counter */
    uint32_t counters[WEDGE_RING_MAX_SECTORS]; /* 0: a free sector */
    uint32_t firsts[WEDGE_RING_MAX_SECTORS];   /* the log index of the first record in each sector */
    uint32_t ends[WEDGE_RING_MAX_SECTORS];     /* where each sector's valid entries end */
    uint32_t next_index;   /* the log index the next record gets */
    uint32_t epoch;
    uint32_t boot_count;
    uint32_t next_seq;
    uint32_t capacity_records;
    uint8_t n_spans;
    wedge_epoch_span_t spans[1u + WEDGE_MAX_PAST_EPOCHS]; /* oldest first */
    /* the last entry read, to walk on from it */
    uint32_t cursor_index;
    uint16_t cursor_sector;
    uint32_t cursor_offset;
    bool cursor_valid;
} wedge_ring_t;

/* A random 32-bit number (the hardware RNG: nRF's RNG peripheral, Zephyr's sys_rand32_get). */
typedef uint32_t (*wedge_random_fn)(void *ctx);

/* Open the ring on `flash` (erase_bytes-sized sectors, at least 2 of them) and start a new boot: epoch = the last
 * one + 1 (a random one in [1, 2^31) without any, or if that epoch is still buffered), boot count + 1.
 * `max_record_bytes` sizes capacity_records (the records the buffer holds at least). */
int wedge_ring_open(wedge_ring_t *ring, const wedge_flash_t *flash, uint32_t max_record_bytes,
                    wedge_random_fn random, void *random_ctx);

/* Append the current epoch's next record (its header must say (ring->epoch, ring->next_seq)). */
int wedge_ring_append(wedge_ring_t *ring, const uint8_t *encoded, size_t len);

/* Bytes [offset, offset + cap) of buffered record (epoch, seq) into buf; *len what was copied, *record_len the
 * record's size. WEDGE_ERR_NOTFOUND when it is not buffered (never produced, or gone). */
int wedge_ring_read(wedge_ring_t *ring, uint32_t epoch, uint32_t seq, uint32_t offset, uint8_t *buf, size_t cap,
                    size_t *len, size_t *record_len);

/* The span of a buffered epoch (the current one even before its first record: [next_seq, next_seq)); end_seq of
 * the current epoch is next_seq. WEDGE_ERR_NOTFOUND when the epoch is not buffered. */
int wedge_ring_span(const wedge_ring_t *ring, uint32_t epoch, wedge_epoch_span_t *out);
/* The first buffered number of the current epoch (next_seq when none is). */
uint32_t wedge_ring_oldest_seq(const wedge_ring_t *ring);
/* The past epochs still buffered, oldest first; their count. */
unsigned wedge_ring_past_epochs(const wedge_ring_t *ring, wedge_epoch_span_t *out, unsigned cap);

#endif
