/* Bounds of the kernel image's sections, defined by the generated linker script. */
#ifndef OUROBOROS_IMAGE_H
#define OUROBOROS_IMAGE_H

#include <types.h>

extern const u8 __image_start[], __boot_start[], __boot_end[];
extern const u8 __text_start[], __text_end[];
extern const u8 __rodata_start[], __rodata_end[];
extern u8 __data_start[], __data_end[];
extern u8 __bss_start[], __bss_end[];
extern u8 __stack_guard[], __stack_bottom[], __stack_top[];
extern const u8 __image_end[];

#endif
