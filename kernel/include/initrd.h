/*
 * The initial archive: the first boot module (QEMU -initrd, GRUB module2,
 * iPXE module), a cpio newc archive of the user programs. It is mapped
 * read-only and no-execute into the kernel's initrd window (INITRD_BASE, one
 * PML4 slot shared by every address space) the first time it is asked for.
 */
#ifndef OUROBOROS_INITRD_H
#define OUROBOROS_INITRD_H

#include <types.h>

/*
 * The initrd's bytes: 0 with *base and *len set, or -E_NOENT (the loader
 * passed no module, or an empty one), -E_RANGE (larger than the window), or
 * map_region's error. Call after vmm_init(); later calls return the same.
 */
int initrd_get(const void **base, u64 *len);

#endif
