/* The boot-time model check: the model image in image 1's slot against the running runtime (the manifest's board,
 * MCUboot image, ops and tensor bytes, arena), the runtime's self-test, and the confirm decision, as wedge's
 * virtual board makes them (wedge/firmware/virtual/board.py, runtime.py precheck), with the same event texts.
 */
#ifndef WEDGE_BOOT_CHECK_H
#define WEDGE_BOOT_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "wedge/image.h"
#include "wedge/manifest.h"
#include "wedge/port.h"
#include "wedge/runtime.h"
#include "wedge/smp_group.h"
#include "wedge/wedge_config.h"

#ifndef WEDGE_STATUS_NAME_BYTES
#define WEDGE_STATUS_NAME_BYTES 48u
#endif
#ifndef WEDGE_STATUS_VERSION_BYTES
#define WEDGE_STATUS_VERSION_BYTES 24u
#endif

/* Who confirms a model that booted for test and passed its self-test. */
typedef enum wedge_confirm_policy {
    WEDGE_CONFIRM_BY_HOST = 0,   /* the host (`wedge flash`) confirms over SMP after it sees the model run */
    WEDGE_CONFIRM_ON_SELF_TEST = 1 /* the firmware confirms it (port confirm_image) as soon as it passed */
} wedge_confirm_policy_t;

typedef enum wedge_boot_decision {
    WEDGE_BOOT_NO_MODEL = 0,    /* the slot holds no image: run without a model */
    WEDGE_BOOT_RUN = 1,         /* the model passed and is confirmed: run it */
    WEDGE_BOOT_RUN_TESTING = 2, /* the model passed on a test boot: run it; it reverts at the next reset unless confirmed */
    WEDGE_BOOT_CONFIRMED = 3,   /* the model passed on a test boot and the firmware confirmed it: run it */
    WEDGE_BOOT_FAILED = 4,      /* a confirmed model failed: run without a model (resetting would not help) */
    WEDGE_BOOT_REVERT = 5       /* a test model failed: do not confirm it, reset, MCUboot reverts image 1 */
} wedge_boot_decision_t;

typedef struct wedge_boot_input {
    const wedge_flash_t *model_slot; /* image 1's primary slot */
    uint8_t model_image;             /* the MCUboot image models go to (1) */
    bool testing;                    /* the model image boots for test (MCUboot: not confirmed yet) */
    wedge_str_t board;               /* this firmware's board profile name */
    wedge_confirm_policy_t policy;
    uint32_t boot_count;
    const wedge_runtime_t *runtime;
    const wedge_port_t *port;        /* time_us for self_test_us; confirm_image */
} wedge_boot_input_t;

/* What the check leaves for the model status (wedge_smp_model_status_t points into it). */
typedef struct wedge_boot_result {
    wedge_boot_decision_t decision;
    wedge_model_state_t state;
    bool has_model; /* a manifest was read: the name, version, hash and sizes below are the model's */
    uint32_t self_test_us;
    uint32_t arena_used_bytes;
    bool has_hash;
    uint8_t model_hash[32];
    char model_name[WEDGE_STATUS_NAME_BYTES];
    char model_version[WEDGE_STATUS_VERSION_BYTES];
    char event[WEDGE_EVENT_BYTES]; /* "" when there is nothing to say */
} wedge_boot_result_t;

/* Scratch for the check: the manifest bytes and their decoded form. Needed during the call only (stack, or a
 * buffer the application reuses later). */
typedef struct wedge_boot_scratch {
    uint8_t cbor[WEDGE_MANIFEST_MAX_BYTES];
    wedge_manifest_t manifest;
    wedge_image_info_t image;
} wedge_boot_scratch_t;

int wedge_boot_check(const wedge_boot_input_t *in, wedge_boot_scratch_t *scratch, wedge_boot_result_t *out);

/* The model status body for the SMP group from a boot result. */
void wedge_boot_status(const wedge_boot_result_t *result, uint32_t boot_count, wedge_model_status_t *status);

/* The runtime's precheck alone (runtime.py precheck): NULL when the model may go to the interpreter, else the
 * event text ("self-test failed: ...") written into text[0..cap). */
const char *wedge_boot_precheck(const wedge_manifest_t *m, const wedge_runtime_t *rt, char *text, size_t cap);

/* The bytes of a manifest's input and output tensors (numpy item sizes; 4 for a dtype it does not know). */
uint64_t wedge_manifest_tensor_bytes(const wedge_manifest_t *m);

#endif
