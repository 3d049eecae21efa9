/* What the size benchmark links: every public function of the core kept (their addresses are taken), nothing
 * else, so --gc-sections leaves exactly what an application using the whole core pays. The state structs'
 * sizes are the sizes of the sizeof_* arrays (read with nm -S).
 *
 * WEDGE_PROBE_PROFILE picks what an application links: 3 the whole core, 2 a ring's firmware without the MLPerf
 * Tiny DUT (stream, manifest, boot check, SMP group), 1 the stream alone (records, ring buffer, control point,
 * Heart Rate). */
#ifndef WEDGE_PROBE_PROFILE
#define WEDGE_PROBE_PROFILE 3
#endif
#include "wedge/boot_check.h"
#include "wedge/control.h"
#include "wedge/dut.h"
#include "wedge/heart_rate.h"
#include "wedge/image.h"
#include "wedge/manifest.h"
#include "wedge/records.h"
#include "wedge/ring.h"
#include "wedge/smp_group.h"
#include "wedge/stream.h"

#define KEEP(fn) (const void *)(fn)

const void *const wedge_size_probe_api[] = {
    KEEP(wedge_hr_encode), KEEP(wedge_hr_rr_units),
    KEEP(wedge_record_size), KEEP(wedge_record_encode), KEEP(wedge_record_key), KEEP(wedge_frame_records),
    KEEP(wedge_fragment_count), KEEP(wedge_frame_fragment),
    KEEP(wedge_ring_open), KEEP(wedge_ring_append), KEEP(wedge_ring_read), KEEP(wedge_ring_span),
    KEEP(wedge_ring_oldest_seq), KEEP(wedge_ring_past_epochs),
    KEEP(wedge_control_parse), KEEP(wedge_control_att_error), KEEP(wedge_status_encode),
    KEEP(wedge_stream_init), KEEP(wedge_stream_control), KEEP(wedge_stream_backfill), KEEP(wedge_stream_pending),
    KEEP(wedge_stream_pump), KEEP(wedge_stream_status),
#if WEDGE_PROBE_PROFILE >= 2
    KEEP(wedge_manifest_read), KEEP(wedge_manifest_field_name), KEEP(wedge_str_eq),
    KEEP(wedge_image_read), KEEP(wedge_image_find_tlv),
    KEEP(wedge_smp_board_info_entries), KEEP(wedge_smp_model_status_entries), KEEP(wedge_smp_board_info_encode),
    KEEP(wedge_smp_model_status_encode), KEEP(wedge_smp_respond),
    KEEP(wedge_boot_check), KEEP(wedge_boot_status), KEEP(wedge_boot_precheck), KEEP(wedge_manifest_tensor_bytes),
#endif
#if WEDGE_PROBE_PROFILE >= 3
    KEEP(wedge_dut_parse), KEEP(wedge_dut_init), KEEP(wedge_dut_reset), KEEP(wedge_dut_boot), KEEP(wedge_dut_feed),
    KEEP(wedge_dut_handle),
#endif
};

#define SIZE_OF(type) char sizeof_##type[sizeof(type)]; const void *const keep_##type = sizeof_##type
SIZE_OF(wedge_ring_t);
SIZE_OF(wedge_stream_t);
SIZE_OF(wedge_dut_t);
SIZE_OF(wedge_boot_result_t);
SIZE_OF(wedge_boot_scratch_t);
SIZE_OF(wedge_manifest_t);
SIZE_OF(wedge_model_status_t);

void wedge_size_probe(void);
void wedge_size_probe(void)
{
}
