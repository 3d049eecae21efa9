/* The model runtime interface the core calls: TFLite-Micro on real boards (a MicroInterpreter over the model in
 * image 1's slot), a fake in the host tests. The boot check and the DUT responder use it.
 */
#ifndef WEDGE_RUNTIME_H
#define WEDGE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wedge/port.h"

struct wedge_manifest;

/* Where the model is: its slot, the flatbuffer's place in it, and the manifest read from its image. */
typedef struct wedge_model_ref {
    const wedge_flash_t *slot;
    uint32_t body_offset; /* the model flatbuffer (the image body) in the slot */
    uint32_t body_bytes;
    const struct wedge_manifest *manifest;
} wedge_model_ref_t;

typedef struct wedge_runtime {
    void *ctx;
    uint32_t arena_bytes; /* the tensor arena the firmware gives the interpreter */
    /* True when the op resolver registered `name` (a TFLite builtin operator name such as FULLY_CONNECTED). */
    bool (*has_op)(void *ctx, const char *name, size_t len);
    /* Load the model, allocate its tensors and run one inference on inputs at their zero point; 0 when it
     * passed, else a negative code and, in *reason, a NUL-terminated text that says why (or NULL). */
    int (*self_test)(void *ctx, const wedge_model_ref_t *model, const char **reason);
    /* After a passed self-test: the bytes of all input tensors, and the count of all output values. */
    size_t (*input_bytes)(void *ctx);
    size_t (*output_count)(void *ctx);
    /* th_load_tensor: copy `len` bytes into the input tensors in order (len may be short: the rest keep theirs). */
    int (*load_input)(void *ctx, const uint8_t *data, size_t len);
    int (*infer)(void *ctx);
    /* th_results: output value `index` (0..output_count-1), dequantized. */
    int (*output)(void *ctx, size_t index, float *value);
} wedge_runtime_t;

#endif
