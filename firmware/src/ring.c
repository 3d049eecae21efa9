/* The record ring buffer on a flash region (see ring.h for the layout and the rules it keeps). */
#include "wedge/ring.h"

#include <string.h>

#include "wedge/records.h"
#include "wedge/wedge_err.h"
#include "bytes.h"

#define ENTRY_BOOT 0x8000u
#define ENTRY_LENGTH_MASK 0x7FFFu
#define ENTRY_ERASED 0xFFFFu
#define BOOT_BODY_BYTES 8u
#define MAX_ALIGN 8u
#define CHUNK_BYTES 32u

static uint32_t align_up(const wedge_ring_t *r, uint32_t n)
{
    return (n + r->align - 1u) & ~(r->align - 1u);
}

static uint32_t entry_bytes(const wedge_ring_t *r, uint32_t body)
{
    return r->align + align_up(r, body);
}

static uint32_t sector_at(const wedge_ring_t *r, uint16_t s)
{
    return (uint32_t)s * r->sector_bytes;
}

static uint16_t crc16(uint16_t crc, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(data[i] << 8);
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

static int body_crc(const wedge_ring_t *r, uint32_t at, uint32_t len, uint16_t *crc)
{
    uint8_t chunk[CHUNK_BYTES];
    uint16_t c = 0xFFFFu;
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < sizeof chunk ? len - done : (uint32_t)sizeof chunk;
        int rc = wedge_flash_read(r->flash, at + done, chunk, n);
        if (rc != WEDGE_OK) {
            return rc;
        }
        c = crc16(c, chunk, n);
        done += n;
    }
    *crc = c;
    return WEDGE_OK;
}

static bool erased_from(const wedge_ring_t *r, uint32_t at, uint32_t end)
{
    uint8_t chunk[CHUNK_BYTES];
    while (at < end) {
        uint32_t n = end - at < sizeof chunk ? end - at : (uint32_t)sizeof chunk;
        if (wedge_flash_read(r->flash, at, chunk, n) != WEDGE_OK) {
            return false;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (chunk[i] != 0xFFu) {
                return false;
            }
        }
        at += n;
    }
    return true;
}

/* -- the epochs table ------------------------------------------------------------------------------------------ */

static wedge_epoch_span_t *find_span(wedge_ring_t *r, uint32_t epoch)
{
    for (unsigned i = 0; i < r->n_spans; i++) {
        if (r->spans[i].epoch == epoch) {
            return &r->spans[i];
        }
    }
    return NULL;
}

static void drop_oldest_span(wedge_ring_t *r)
{
    memmove(&r->spans[0], &r->spans[1], (r->n_spans - 1u) * sizeof r->spans[0]);
    r->n_spans--;
}

/* Record `index` is (epoch, seq): extend the last span or open one (the oldest is forgotten when full). */
static void keep(wedge_ring_t *r, uint32_t epoch, uint32_t seq, uint32_t index)
{
    if (r->n_spans > 0 && r->spans[r->n_spans - 1u].epoch == epoch) {
        r->spans[r->n_spans - 1u].end_seq = seq + 1u;
        return;
    }
    if (r->n_spans == sizeof r->spans / sizeof r->spans[0]) {
        drop_oldest_span(r);
    }
    r->spans[r->n_spans++] = (wedge_epoch_span_t){epoch, seq, seq + 1u, index};
}

/* Records below log index `end` left the buffer. */
static void evict_below(wedge_ring_t *r, uint32_t end)
{
    while (r->n_spans > 0) {
        wedge_epoch_span_t *s = &r->spans[0];
        uint32_t count = s->end_seq - s->first_seq;
        if (s->base + count <= end) {
            drop_oldest_span(r);
        } else {
            if (s->base < end) {
                s->first_seq += end - s->base;
                s->base = end;
            }
            return;
        }
    }
}

/* -- writing --------------------------------------------------------------------------------------------------- */

/* Erase sector `s` (its records leave) and start it as the head. */
static int start_sector(wedge_ring_t *r, uint16_t s)
{
    if (r->counters[s] != 0) {
        uint32_t end = r->next_index;
        for (uint16_t k = 1; k < r->n_sectors; k++) {
            uint16_t t = (uint16_t)((s + k) % r->n_sectors);
            if (r->counters[t] != 0) {
                end = r->firsts[t];
                break;
            }
        }
        evict_below(r, end);
        r->counters[s] = 0;
    }
    r->cursor_valid = false;
    r->head = s;
    r->head_open = false;
    r->head_offset = r->sector_bytes;
    r->ends[s] = WEDGE_RING_SECTOR_HEADER_BYTES;
    int rc = wedge_flash_erase(r->flash, sector_at(r, s), r->sector_bytes);
    if (rc != WEDGE_OK) {
        return rc;
    }
    uint8_t h[WEDGE_RING_SECTOR_HEADER_BYTES];
    uint32_t counter = r->counter + 1u;
    wedge_put_le32(h, counter);
    wedge_put_le32(h + 4, r->epoch);
    wedge_put_le32(h + 8, r->boot_count);
    wedge_put_le16(h + 12, WEDGE_RING_MAGIC);
    wedge_put_le16(h + 14, crc16(0xFFFFu, h, 14));
    rc = wedge_flash_write(r->flash, sector_at(r, s), h, sizeof h);
    if (rc != WEDGE_OK) {
        return rc;
    }
    r->counter = counter;
    r->counters[s] = counter;
    r->firsts[s] = r->next_index;
    r->head_open = true;
    r->head_offset = WEDGE_RING_SECTOR_HEADER_BYTES;
    return WEDGE_OK;
}

/* One entry: the body, then its header (the commit). */
static int append_entry(wedge_ring_t *r, uint16_t kind, const uint8_t *body, uint32_t len)
{
    uint32_t total = entry_bytes(r, len);
    if (len > ENTRY_LENGTH_MASK || total > r->sector_bytes - WEDGE_RING_SECTOR_HEADER_BYTES) {
        return WEDGE_ERR_RANGE;
    }
    if (!r->head_open || r->head_offset + total > r->sector_bytes) {
        uint16_t next = r->head_open ? (uint16_t)((r->head + 1u) % r->n_sectors) : r->head;
        int rc = start_sector(r, next);
        if (rc != WEDGE_OK) {
            return rc;
        }
    }
    uint32_t at = sector_at(r, r->head) + r->head_offset;
    uint32_t whole = len & ~(r->align - 1u);
    uint8_t unit[MAX_ALIGN];
    int rc = wedge_flash_write(r->flash, at + r->align, body, whole);
    if (rc == WEDGE_OK && whole < len) {
        memset(unit, 0xFF, sizeof unit);
        memcpy(unit, body + whole, len - whole);
        rc = wedge_flash_write(r->flash, at + r->align + whole, unit, r->align);
    }
    if (rc == WEDGE_OK) {
        memset(unit, 0xFF, sizeof unit);
        wedge_put_le16(unit, (uint16_t)(kind | len));
        wedge_put_le16(unit + 2, crc16(0xFFFFu, body, len));
        rc = wedge_flash_write(r->flash, at, unit, r->align);
    }
    if (rc != WEDGE_OK) {
        r->head_offset = r->sector_bytes; /* what is there now is unknown: the next entry goes to a new sector */
        return rc;
    }
    r->head_offset += total;
    r->ends[r->head] = r->head_offset;
    return WEDGE_OK;
}

int wedge_ring_append(wedge_ring_t *r, const uint8_t *encoded, size_t len)
{
    if (r == NULL || encoded == NULL) {
        return WEDGE_ERR_INVAL;
    }
    uint32_t epoch;
    uint32_t seq;
    int rc = wedge_record_key(encoded, len, &epoch, &seq);
    if (rc != WEDGE_OK) {
        return rc;
    }
    if (epoch != r->epoch || seq != r->next_seq || len > WEDGE_RECORD_MAX_BYTES) {
        return WEDGE_ERR_INVAL;
    }
    if (r->next_seq == UINT32_MAX) {
        return WEDGE_ERR_STATE; /* the epoch's numbers are used up: reboot */
    }
    rc = append_entry(r, 0, encoded, (uint32_t)len);
    if (rc != WEDGE_OK) {
        return rc;
    }
    keep(r, epoch, seq, r->next_index);
    r->next_index++;
    r->next_seq++;
    return WEDGE_OK;
}

/* -- opening --------------------------------------------------------------------------------------------------- */

typedef struct scan {
    uint32_t last_epoch;
    uint32_t last_boots;
    bool broken; /* the log broke its rules: what follows is erased */
} scan_t;

/* Whether record (epoch, seq) may follow what was read so far (read_log's rules). */
static bool follows(wedge_ring_t *r, uint32_t epoch, uint32_t seq)
{
    if (epoch == WEDGE_NO_EPOCH) {
        return false;
    }
    if (r->n_spans > 0 && r->spans[r->n_spans - 1u].epoch == epoch) {
        return seq == r->spans[r->n_spans - 1u].end_seq;
    }
    return find_span(r, epoch) == NULL;
}

/* Read sector `s`'s entries; ends[s] is where its valid entries end (sector_bytes when it cannot take more). */
static int scan_sector(wedge_ring_t *r, uint16_t s, scan_t *scan)
{
    uint32_t base = sector_at(r, s);
    uint32_t off = WEDGE_RING_SECTOR_HEADER_BYTES;
    r->firsts[s] = r->next_index;
    bool sealed = false;
    while (off + r->align <= r->sector_bytes) {
        uint8_t h[4];
        int rc = wedge_flash_read(r->flash, base + off, h, sizeof h);
        if (rc != WEDGE_OK) {
            return rc;
        }
        uint16_t raw = wedge_le16(h);
        if (raw == ENTRY_ERASED) {
            break;
        }
        uint32_t len = raw & ENTRY_LENGTH_MASK;
        uint32_t total = entry_bytes(r, len);
        uint16_t crc;
        if (total > r->sector_bytes - off) {
            sealed = true;
            break;
        }
        rc = body_crc(r, base + off + r->align, len, &crc);
        if (rc != WEDGE_OK) {
            return rc;
        }
        if (crc != wedge_le16(h + 2)) {
            sealed = true; /* cut by a power loss: nothing after it in this sector counts */
            break;
        }
        uint8_t body[WEDGE_RECORD_HEADER_BYTES];
        uint32_t head = len < sizeof body ? len : (uint32_t)sizeof body;
        rc = wedge_flash_read(r->flash, base + off + r->align, body, head);
        if (rc != WEDGE_OK) {
            return rc;
        }
        if (raw & ENTRY_BOOT) {
            if (len == BOOT_BODY_BYTES) {
                scan->last_epoch = wedge_le32(body);
                scan->last_boots = wedge_le32(body + 4);
            }
        } else {
            uint32_t epoch;
            uint32_t seq;
            if (wedge_record_key(body, head, &epoch, &seq) != WEDGE_OK || !follows(r, epoch, seq)) {
                scan->broken = true;
                sealed = true;
                break;
            }
            keep(r, epoch, seq, r->next_index++);
        }
        off += total;
    }
    if (!sealed && !erased_from(r, base + off, base + r->sector_bytes)) {
        sealed = true; /* an entry's body was cut before its header: the space after is not erased */
    }
    r->ends[s] = off;
    r->head = s;
    r->head_open = true;
    r->head_offset = sealed ? r->sector_bytes : off;
    return WEDGE_OK;
}

int wedge_ring_open(wedge_ring_t *r, const wedge_flash_t *flash, uint32_t max_record_bytes, wedge_random_fn random,
                    void *random_ctx)
{
    if (r == NULL || flash == NULL || flash->erase_bytes == 0 || flash->write_bytes == 0 ||
        flash->write_bytes > MAX_ALIGN || (flash->write_bytes & (flash->write_bytes - 1u)) != 0 ||
        flash->size_bytes % flash->erase_bytes != 0) {
        return WEDGE_ERR_INVAL;
    }
    uint32_t n = flash->size_bytes / flash->erase_bytes;
    if (n < 2 || n > WEDGE_RING_MAX_SECTORS || max_record_bytes == 0 || max_record_bytes > WEDGE_RECORD_MAX_BYTES) {
        return WEDGE_ERR_INVAL;
    }
    memset(r, 0, sizeof *r);
    r->flash = flash;
    r->sector_bytes = flash->erase_bytes;
    r->align = flash->write_bytes < 4u ? 4u : flash->write_bytes;
    r->n_sectors = (uint16_t)n;
    if (entry_bytes(r, max_record_bytes) > r->sector_bytes - WEDGE_RING_SECTOR_HEADER_BYTES) {
        return WEDGE_ERR_INVAL;
    }
    /* The sectors in use, oldest first (by counter). */
    uint16_t order[WEDGE_RING_MAX_SECTORS];
    unsigned used = 0;
    for (uint16_t s = 0; s < n; s++) {
        uint8_t h[WEDGE_RING_SECTOR_HEADER_BYTES];
        int rc = wedge_flash_read(flash, sector_at(r, s), h, sizeof h);
        if (rc != WEDGE_OK) {
            return rc;
        }
        uint32_t counter = wedge_le32(h);
        if (wedge_le16(h + 12) != WEDGE_RING_MAGIC || wedge_le16(h + 14) != crc16(0xFFFFu, h, 14) || counter == 0 ||
            counter == UINT32_MAX) {
            continue; /* erased, or a header cut by a power loss: not in use */
        }
        r->counters[s] = counter;
        unsigned at = used++;
        while (at > 0 && r->counters[order[at - 1]] > counter) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = s;
    }
    scan_t scan = {0, 0, false};
    for (unsigned k = 0; k < used; k++) {
        uint16_t s = order[k];
        if (scan.broken) {
            r->counters[s] = 0;
            int rc = wedge_flash_erase(flash, sector_at(r, s), r->sector_bytes);
            if (rc != WEDGE_OK) {
                return rc;
            }
            continue;
        }
        uint8_t h[8];
        int rc = wedge_flash_read(flash, sector_at(r, s) + 4u, h, sizeof h);
        if (rc != WEDGE_OK) {
            return rc;
        }
        scan.last_epoch = wedge_le32(h);
        scan.last_boots = wedge_le32(h + 4);
        r->counter = r->counters[s];
        rc = scan_sector(r, s, &scan);
        if (rc != WEDGE_OK) {
            return rc;
        }
    }
    while (r->n_spans > WEDGE_MAX_PAST_EPOCHS) {
        drop_oldest_span(r);
    }
    uint32_t epoch = scan.last_epoch == WEDGE_NO_EPOCH ? WEDGE_NO_EPOCH : (scan.last_epoch % WEDGE_MAX_EPOCH) + 1u;
    for (unsigned tries = 0; (epoch == WEDGE_NO_EPOCH || find_span(r, epoch) != NULL) && tries < 64; tries++) {
        epoch = random != NULL ? random(random_ctx) % (WEDGE_RANDOM_EPOCH_LIMIT - 1u) + 1u : epoch + 1u;
    }
    if (epoch == WEDGE_NO_EPOCH || find_span(r, epoch) != NULL) {
        return WEDGE_ERR_STATE;
    }
    r->epoch = epoch;
    r->boot_count = scan.last_boots + 1u;
    r->next_seq = 0;
    r->capacity_records = (n - 1u) * ((r->sector_bytes - WEDGE_RING_SECTOR_HEADER_BYTES) /
                                      entry_bytes(r, max_record_bytes));
    uint8_t boot[BOOT_BODY_BYTES];
    wedge_put_le32(boot, r->epoch);
    wedge_put_le32(boot + 4, r->boot_count);
    return append_entry(r, ENTRY_BOOT, boot, sizeof boot);
}

/* -- reading --------------------------------------------------------------------------------------------------- */

int wedge_ring_span(const wedge_ring_t *r, uint32_t epoch, wedge_epoch_span_t *out)
{
    if (r == NULL || out == NULL) {
        return WEDGE_ERR_INVAL;
    }
    for (unsigned i = 0; i < r->n_spans; i++) {
        if (r->spans[i].epoch == epoch) {
            *out = r->spans[i];
            return WEDGE_OK;
        }
    }
    if (epoch == r->epoch && epoch != WEDGE_NO_EPOCH) {
        *out = (wedge_epoch_span_t){epoch, r->next_seq, r->next_seq, r->next_index};
        return WEDGE_OK;
    }
    return WEDGE_ERR_NOTFOUND;
}

uint32_t wedge_ring_oldest_seq(const wedge_ring_t *r)
{
    wedge_epoch_span_t span;
    return wedge_ring_span(r, r->epoch, &span) == WEDGE_OK ? span.first_seq : r->next_seq;
}

unsigned wedge_ring_past_epochs(const wedge_ring_t *r, wedge_epoch_span_t *out, unsigned cap)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->n_spans && n < cap; i++) {
        if (r->spans[i].epoch != r->epoch) {
            out[n++] = r->spans[i];
        }
    }
    return n;
}

/* The entry of record `index`: its sector and offset, walking on from the last one read when it can. */
static int locate(wedge_ring_t *r, uint32_t index, uint16_t *sector, uint32_t *offset, uint32_t *len)
{
    uint16_t s = 0;
    uint32_t off = WEDGE_RING_SECTOR_HEADER_BYTES;
    uint32_t at = 0;
    bool found = false;
    if (r->cursor_valid && r->cursor_index <= index) {
        s = r->cursor_sector;
        off = r->cursor_offset;
        at = r->cursor_index;
        found = true;
    } else {
        for (uint16_t k = 0; k < r->n_sectors; k++) {
            if (r->counters[k] != 0 && r->firsts[k] <= index &&
                (!found || r->firsts[k] > at || (r->firsts[k] == at && r->counters[k] < r->counters[s]))) {
                s = k;
                at = r->firsts[k];
                found = true;
            }
        }
    }
    if (!found) {
        return WEDGE_ERR_NOTFOUND;
    }
    for (unsigned moves = 0; moves <= r->n_sectors;) {
        if (off >= r->ends[s]) {
            s = (uint16_t)((s + 1u) % r->n_sectors);
            off = WEDGE_RING_SECTOR_HEADER_BYTES;
            moves++;
            if (r->counters[s] == 0) {
                return WEDGE_ERR_NOTFOUND;
            }
            continue;
        }
        uint8_t h[4];
        int rc = wedge_flash_read(r->flash, sector_at(r, s) + off, h, sizeof h);
        if (rc != WEDGE_OK) {
            return rc;
        }
        uint16_t raw = wedge_le16(h);
        uint32_t body = raw & ENTRY_LENGTH_MASK;
        if (!(raw & ENTRY_BOOT)) {
            if (at == index) {
                *sector = s;
                *offset = off;
                *len = body;
                return WEDGE_OK;
            }
            at++;
        }
        off += entry_bytes(r, body);
    }
    return WEDGE_ERR_NOTFOUND;
}

int wedge_ring_read(wedge_ring_t *r, uint32_t epoch, uint32_t seq, uint32_t offset, uint8_t *buf, size_t cap,
                    size_t *len, size_t *record_len)
{
    if (r == NULL || (buf == NULL && cap > 0) || len == NULL || record_len == NULL) {
        return WEDGE_ERR_INVAL;
    }
    wedge_epoch_span_t *span = find_span(r, epoch);
    if (span == NULL || seq < span->first_seq || seq >= span->end_seq) {
        return WEDGE_ERR_NOTFOUND;
    }
    uint32_t index = span->base + (seq - span->first_seq);
    uint16_t s = 0;
    uint32_t off = 0;
    uint32_t body = 0;
    int rc = locate(r, index, &s, &off, &body);
    if (rc != WEDGE_OK) {
        return rc;
    }
    r->cursor_valid = true;
    r->cursor_index = index;
    r->cursor_sector = s;
    r->cursor_offset = off;
    *record_len = body;
    if (offset > body) {
        return WEDGE_ERR_INVAL;
    }
    size_t n = body - offset < cap ? body - offset : cap;
    *len = n;
    return wedge_flash_read(r->flash, sector_at(r, s) + off + r->align + offset, buf, (uint32_t)n);
}
