/* The sizes of the core's fixed buffers. Override any of them with -D (or in a Zephyr Kconfig-generated header
 * included before this one); every buffer the core uses is one of these, there is no malloc.
 */
#ifndef WEDGE_CONFIG_H
#define WEDGE_CONFIG_H

/* MLPerf Tiny DUT: the command buffer (EE_CMD_SIZE of the reference firmware: 80). */
#ifndef WEDGE_DUT_CMD_BYTES
#define WEDGE_DUT_CMD_BYTES 80u
#endif
/* MLPerf Tiny DUT: bytes buffered before a reply goes to the UART (a reply line may be longer; it goes in pieces). */
#ifndef WEDGE_DUT_OUT_BYTES
#define WEDGE_DUT_OUT_BYTES 64u
#endif

/* Model manifest reader: tensors per side (inputs, outputs), dimensions per tensor, quantization parameters kept
 * per tensor (more are validated and counted, not kept), and operator names kept. */
#ifndef WEDGE_MANIFEST_MAX_TENSORS
#define WEDGE_MANIFEST_MAX_TENSORS 4u
#endif
#ifndef WEDGE_MANIFEST_MAX_DIMS
#define WEDGE_MANIFEST_MAX_DIMS 6u
#endif
#ifndef WEDGE_MANIFEST_MAX_QPARAMS
#define WEDGE_MANIFEST_MAX_QPARAMS 1u
#endif
#ifndef WEDGE_MANIFEST_MAX_OPS
#define WEDGE_MANIFEST_MAX_OPS 32u
#endif
/* CBOR nesting the manifest reader follows (map > list > map > list is the deepest a manifest goes). */
#ifndef WEDGE_CBOR_MAX_DEPTH
#define WEDGE_CBOR_MAX_DEPTH 6u
#endif
/* The largest manifest TLV the boot check reads from flash. */
#ifndef WEDGE_MANIFEST_MAX_BYTES
#define WEDGE_MANIFEST_MAX_BYTES 2048u
#endif

/* The boot event text of the model status (longer notes are cut). */
#ifndef WEDGE_EVENT_BYTES
#define WEDGE_EVENT_BYTES 160u
#endif

/* The stream: the largest encoded record the ring buffer stores, the largest notification payload a frame is
 * built for (ATT_MTU - 3; 244 for the 247-byte MTU an nRF52840 negotiates), sectors of the ring's flash region. */
#ifndef WEDGE_RECORD_MAX_BYTES
#define WEDGE_RECORD_MAX_BYTES 2048u
#endif
#ifndef WEDGE_FRAME_MAX_BYTES
#define WEDGE_FRAME_MAX_BYTES 244u
#endif
#ifndef WEDGE_RING_MAX_SECTORS
#define WEDGE_RING_MAX_SECTORS 16u
#endif

#endif
