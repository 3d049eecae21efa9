/* The port layer: the few things the core needs from the board, handed to it as small interfaces.
 *
 * A port fills these structs (firmware/port/host for tests, firmware/port/mps2-an386 for QEMU's Cortex-M4, a
 * Zephyr application with bt_gatt_notify, flash_area_*, uart_poll_out, k_uptime and boot_write_img_confirmed).
 * Every function returns 0 or a negative wedge_err_t (WEDGE_ERR_IO for a failure of the hardware).
 */
#ifndef WEDGE_PORT_H
#define WEDGE_PORT_H

#include <stddef.h>
#include <stdint.h>

/* A flash region (a Zephyr flash_area): reads anywhere, writes only onto erased bytes, erases whole sectors. */
typedef struct wedge_flash {
    void *ctx;
    uint32_t size_bytes;  /* the region's size, a multiple of erase_bytes */
    uint32_t erase_bytes; /* the erase unit (a sector); erased bytes read 0xFF */
    uint32_t write_bytes; /* the program unit: writes start and end on multiples of it (1, 4 or 8) */
    int (*read)(void *ctx, uint32_t offset, void *data, uint32_t len);
    int (*write)(void *ctx, uint32_t offset, const void *data, uint32_t len);
    int (*erase)(void *ctx, uint32_t offset, uint32_t len);
} wedge_flash_t;

/* The rest of the board: a GATT notification of the stream characteristic, the DUT UART, a microsecond clock,
 * and MCUboot's image confirmation. */
typedef struct wedge_port {
    void *ctx;
    int (*notify)(void *ctx, const uint8_t *data, size_t len);
    int (*uart_write)(void *ctx, const uint8_t *data, size_t len);
    uint64_t (*time_us)(void *ctx);
    int (*confirm_image)(void *ctx, uint8_t image); /* boot_write_img_confirmed_multi(image) */
} wedge_port_t;

/* Bounds-checked flash helpers the core uses (a request past the region is WEDGE_ERR_INVAL, never passed on). */
int wedge_flash_read(const wedge_flash_t *flash, uint32_t offset, void *data, uint32_t len);
int wedge_flash_write(const wedge_flash_t *flash, uint32_t offset, const void *data, uint32_t len);
int wedge_flash_erase(const wedge_flash_t *flash, uint32_t offset, uint32_t len);

#endif
