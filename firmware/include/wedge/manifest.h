/* The model manifest reader: the CBOR map `wedge pack` writes into an image's protected TLV (0x00A5), as
 * wedge/firmware/image/manifest.py defines it (formats 1 and 2), decoded with zcbor's C runtime.
 *
 * Every field is validated as Manifest.from_cbor validates it. Strings and digests point into the CBOR bytes
 * (not NUL-terminated; keep the bytes while the manifest is used). Stricter than the Python reader, a device
 * refuses with WEDGE_ERR_UNSUPPORTED: map keys that are not text, a key twice, bignums or other tags, indefinite-
 * length strings, a float where an integer belongs or a bool where a number belongs, integers outside 32 bits,
 * negative sizes, and digests (model_sha256, signer_key) that are not 32 bytes. WEDGE_ERR_RANGE: more tensors,
 * dimensions or ops than the WEDGE_MANIFEST_* macros hold. WEDGE_ERR_VERSION: an unknown `format`.
 */
#ifndef WEDGE_MANIFEST_H
#define WEDGE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wedge/wedge_config.h"

#define WEDGE_MANIFEST_FORMAT 2u
#define WEDGE_MANIFEST_MODEL_IMAGE 1u /* the MCUboot image a format-1 manifest is for */
#define WEDGE_DIGEST_BYTES 32u

/* Text inside the CBOR bytes (UTF-8, validated). */
typedef struct wedge_str {
    const char *ptr;
    uint32_t len;
} wedge_str_t;

typedef struct wedge_tensor {
    wedge_str_t name;
    wedge_str_t dtype; /* numpy's name: int8, uint8, float32, ... */
    uint8_t n_dims;
    int32_t shape[WEDGE_MANIFEST_MAX_DIMS]; /* -1: a dynamic dimension */
    uint16_t n_scales;                      /* all of them; the first WEDGE_MANIFEST_MAX_QPARAMS are kept */
    uint16_t n_zero_points;
    float scales[WEDGE_MANIFEST_MAX_QPARAMS];
    int32_t zero_points[WEDGE_MANIFEST_MAX_QPARAMS];
    int32_t axis;
} wedge_tensor_t;

/* Which field made the reader refuse (for the log line a device prints). */
typedef enum wedge_manifest_field {
    WEDGE_MF_NONE = 0,
    WEDGE_MF_MAP,
    WEDGE_MF_FORMAT,
    WEDGE_MF_IMAGE,
    WEDGE_MF_MODEL_NAME,
    WEDGE_MF_MODEL_VERSION,
    WEDGE_MF_BOARD,
    WEDGE_MF_RUNTIME,
    WEDGE_MF_INPUTS,
    WEDGE_MF_OUTPUTS,
    WEDGE_MF_LABELS,
    WEDGE_MF_ARENA_BYTES,
    WEDGE_MF_MODEL_BYTES,
    WEDGE_MF_MODEL_SHA256,
    WEDGE_MF_SIGNER_KEY,
    WEDGE_MF_OPS,
    WEDGE_MF_COUNT
} wedge_manifest_field_t;

typedef struct wedge_manifest {
    uint8_t format;
    uint8_t image; /* 0..15 */
    wedge_str_t model_name;
    wedge_str_t model_version;
    wedge_str_t board;
    wedge_str_t runtime;
    uint8_t n_inputs;
    uint8_t n_outputs;
    wedge_tensor_t inputs[WEDGE_MANIFEST_MAX_TENSORS];
    wedge_tensor_t outputs[WEDGE_MANIFEST_MAX_TENSORS];
    uint32_t n_labels;
    uint32_t arena_bytes;
    uint32_t model_bytes;
    const uint8_t *model_sha256; /* WEDGE_DIGEST_BYTES */
    const uint8_t *signer_key;   /* WEDGE_DIGEST_BYTES, the raw ed25519 public key */
    bool has_ops;                /* false for a format-1 manifest (its ops are unknown) */
    uint16_t n_ops;
    wedge_str_t ops[WEDGE_MANIFEST_MAX_OPS];
} wedge_manifest_t;

/* Decode and validate `len` bytes of CBOR into *out. On failure, *bad (if not NULL) names the field. */
int wedge_manifest_read(const uint8_t *cbor, size_t len, wedge_manifest_t *out, wedge_manifest_field_t *bad);

/* The field's key as it is spelled in the manifest ("model_name"), for log lines. */
const char *wedge_manifest_field_name(wedge_manifest_field_t field);

/* True when the two strings hold the same bytes. */
bool wedge_str_eq(wedge_str_t a, const char *b, size_t b_len);

#endif
