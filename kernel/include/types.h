/* Fixed-width integer types and the few freestanding basics the kernel uses. */
#ifndef OUROBOROS_TYPES_H
#define OUROBOROS_TYPES_H

#include <stdarg.h>   /* freestanding: provided by the compiler */
#include <stdbool.h>
#include <stddef.h>

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
/* long long, not long: printf's %llx then matches u64 under -Wformat. */
typedef unsigned long long u64;
typedef signed char i8;
typedef short i16;
typedef int i32;
typedef long long i64;
typedef unsigned long uintptr_t;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Round x down/up to a multiple of the power of two `align`. */
#define ALIGN_DOWN(x, align) ((x) & ~((u64)(align) - 1))
#define ALIGN_UP(x, align) ALIGN_DOWN((u64)(x) + (align) - 1, (align))
#define IS_ALIGNED(x, align) (((u64)(x) & ((u64)(align) - 1)) == 0)

#define NORETURN __attribute__((noreturn))
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#define PACKED __attribute__((packed))
/*
 * A result that must not be dropped (an error, or whether a store happened):
 * ignoring it is a compile error in every kernel file, whatever the build's
 * flags. A cast to void does not silence it; check it, or MUST(...) it.
 */
#define MUST_CHECK __attribute__((warn_unused_result))
#pragma GCC diagnostic error "-Wunused-result"

/*
 * Negative error codes returned by kernel functions (0 or positive = success):
 * E_INVAL, E_NOMEM, E_FAULT... generated from linker/errors.ts, shared with
 * the user programs' syscall.h.
 */
#include <errors.h>

#endif
