/* The mps2-an386 port: CMSDK UART0, SysTick as the clock, a flash region in RAM that survives a reset, MCUboot's
 * confirmation as a flag, and semihosting to end a QEMU run. The RAM flash region and the fake model runtime of the
 * test firmware are the host port's (firmware/port/host/host_port.c is portable C). */
#ifndef WEDGE_MPS2_H
#define WEDGE_MPS2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host_port.h"
#include "wedge/port.h"

#define MPS2_SYSCLK_HZ 25000000u
/* Where a test loads its inputs (-device loader): the script, and the model slot (a `wedge pack` image). */
#define MPS2_SCRIPT ((const uint8_t *)0x21000000u)
#define MPS2_SLOT ((const uint8_t *)0x21800000u)
#define MPS2_SLOT_BYTES 0x10000u

void mps2_init(void);
void mps2_uart_write(const uint8_t *data, size_t len);
void mps2_puts(const char *s);
/* SysTick's 24-bit down-counter extended in software: processor clock ticks since mps2_init. */
uint64_t mps2_ticks(void);
/* Request a system reset (SCB AIRCR.SYSRESETREQ): QEMU restarts the image; .noinit keeps its bytes. */
void mps2_reset(void) __attribute__((noreturn));
/* End the QEMU run through semihosting: exit status 0 when ok. */
void mps2_exit(bool ok) __attribute__((noreturn));

/* The board as the core sees it: the host port's (notifications collected, confirmation remembered), with
 * uart_write on UART0 and time_us from SysTick. */
void mps2_port_init(host_port_t *p, uint8_t *notified, size_t cap);

#endif
