/* The mps2-an386 port (see mps2.h). */
#include <string.h>

#include "mps2.h"
#include "wedge/wedge_err.h"

#define UART0 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0 + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0 + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0 + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0 + 0x10u))
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define SYSTICK_RELOAD 0xFFFFFFu

static volatile uint32_t systick_wraps;

void SysTick_Handler(void)
{
    systick_wraps++;
}

void mps2_init(void)
{
    UART_BAUDDIV = 16u;
    UART_CTRL = 1u; /* TX enable */
    systick_wraps = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 0x7u; /* processor clock, interrupt, enable */
}

void mps2_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (UART_STATE & 1u) {
        }
        UART_DATA = data[i];
    }
}

void mps2_puts(const char *s)
{
    mps2_uart_write((const uint8_t *)s, strlen(s));
}

uint64_t mps2_ticks(void)
{
    uint32_t wraps;
    uint32_t value;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    return ((uint64_t)wraps << 24) + (SYSTICK_RELOAD - value);
}

void mps2_reset(void)
{
    __asm volatile("dsb");
    SCB_AIRCR = (0x05FAu << 16) | (1u << 2);
    __asm volatile("dsb");
    for (;;) {
    }
}

void mps2_exit(bool ok)
{
    /* SYS_EXIT: r1 is the reason, ADP_Stopped_ApplicationExit (QEMU exits 0) or RunTimeErrorUnknown (exit 1). */
    register uint32_t r0 __asm("r0") = 0x18u;
    register uint32_t r1 __asm("r1") = ok ? 0x20026u : 0x20023u;
    __asm volatile("bkpt 0xAB" : : "r"(r0), "r"(r1) : "memory");
    for (;;) {
    }
}

static int port_uart(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    mps2_uart_write(data, len);
    return 0;
}

static uint64_t port_time(void *ctx)
{
    (void)ctx;
    return mps2_ticks() / (MPS2_SYSCLK_HZ / 1000000u);
}

void mps2_port_init(host_port_t *p, uint8_t *notified, size_t cap)
{
    host_port_init(p, NULL, 0, notified, cap);
    p->port.uart_write = port_uart;
    p->port.time_us = port_time;
}
