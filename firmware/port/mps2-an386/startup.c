/* Cortex-M4 startup for QEMU's mps2-an386: the vector table, .data and .bss set up, the FPU on, then main. */
#include <stdint.h>
#include <string.h>

#include "mps2.h"

extern uint32_t __etext, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
int main(void);
void Reset_Handler(void);
void SysTick_Handler(void);

static void fault(void)
{
    mps2_puts("\r\nFAULT\r\n");
    mps2_exit(false);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&__stack_top), Reset_Handler, fault, fault, fault, fault, fault, 0, 0, 0, 0, fault, fault, 0,
    fault, SysTick_Handler,
};

void Reset_Handler(void)
{
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20; /* CP10 and CP11: the FPU, before any float instruction */
    __asm volatile("dsb\n isb");
    memcpy(&__data_start, &__etext, (size_t)((char *)&__data_end - (char *)&__data_start));
    memset(&__bss_start, 0, (size_t)((char *)&__bss_end - (char *)&__bss_start));
    mps2_init();
    mps2_exit(main() == 0);
}
