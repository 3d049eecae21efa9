/* The error codes every function of the wedge device core returns: 0 on success, a negative code otherwise.
 *
 * No function writes outside the buffers it is given, whatever it returns.
 */
#ifndef WEDGE_ERR_H
#define WEDGE_ERR_H

typedef enum wedge_err {
    WEDGE_OK = 0,
    WEDGE_ERR_INVAL = -1,       /* an argument out of its range (a NULL pointer, a value the format cannot hold) */
    WEDGE_ERR_NOSPC = -2,       /* the output buffer is too small for what must go in it */
    WEDGE_ERR_MALFORMED = -3,   /* input bytes that do not decode: truncated, wrong type, inconsistent */
    WEDGE_ERR_VERSION = -4,     /* a format version this build does not know */
    WEDGE_ERR_UNSUPPORTED = -5, /* well-formed input outside what this reader takes (see the module's header) */
    WEDGE_ERR_RANGE = -6,       /* well-formed input larger than this build's fixed buffers (WEDGE_* macros) */
    WEDGE_ERR_NOTFOUND = -7,    /* the thing asked for is not there (no image, no record with that number) */
    WEDGE_ERR_IO = -8,          /* the port failed (flash, notify, UART) */
    WEDGE_ERR_STATE = -9        /* called in a state where the call makes no sense */
} wedge_err_t;

#endif
