/* Bounds checks in front of a port's flash functions: the core never asks a port for bytes outside its region. */
#include "wedge/port.h"
#include "wedge/wedge_err.h"

static int in_region(const wedge_flash_t *flash, uint32_t offset, uint32_t len)
{
    return flash != NULL && offset <= flash->size_bytes && len <= flash->size_bytes - offset;
}

int wedge_flash_read(const wedge_flash_t *flash, uint32_t offset, void *data, uint32_t len)
{
    if (!in_region(flash, offset, len) || (data == NULL && len > 0) || flash->read == NULL) {
        return WEDGE_ERR_INVAL;
    }
    if (len == 0) {
        return WEDGE_OK;
    }
    return flash->read(flash->ctx, offset, data, len) == 0 ? WEDGE_OK : WEDGE_ERR_IO;
}

int wedge_flash_write(const wedge_flash_t *flash, uint32_t offset, const void *data, uint32_t len)
{
    if (!in_region(flash, offset, len) || (data == NULL && len > 0) || flash->write == NULL ||
        flash->write_bytes == 0 || offset % flash->write_bytes != 0 || len % flash->write_bytes != 0) {
        return WEDGE_ERR_INVAL;
    }
    if (len == 0) {
        return WEDGE_OK;
    }
    return flash->write(flash->ctx, offset, data, len) == 0 ? WEDGE_OK : WEDGE_ERR_IO;
}

int wedge_flash_erase(const wedge_flash_t *flash, uint32_t offset, uint32_t len)
{
    if (!in_region(flash, offset, len) || flash->erase == NULL || flash->erase_bytes == 0 ||
        offset % flash->erase_bytes != 0 || len % flash->erase_bytes != 0) {
        return WEDGE_ERR_INVAL;
    }
    if (len == 0) {
        return WEDGE_OK;
    }
    return flash->erase(flash->ctx, offset, len) == 0 ? WEDGE_OK : WEDGE_ERR_IO;
}
