/*
 * Reading a cpio "newc" archive (the format of Linux's initramfs; see the
 * kernel's Documentation/driver-api/early-userspace/buffer-format.rst):
 * each entry is a 110-byte ASCII header ("070701" and 13 fields of 8 hex
 * digits), the NUL-terminated name, padding to 4 bytes, the data, padding to
 * 4 bytes; "TRAILER!!!" ends the archive. The archive is untrusted: every
 * field is checked before use, nothing is read outside [archive, archive+len).
 */
#ifndef OUROBOROS_CPIO_H
#define OUROBOROS_CPIO_H

#include <types.h>

#define CPIO_HEADER_SIZE 110
#define CPIO_MODE_TYPE 0170000 /* S_IFMT */
#define CPIO_MODE_FILE 0100000 /* S_IFREG */
#define CPIO_MODE_DIR 0040000  /* S_IFDIR */

/* One entry; name and data point into the archive. */
struct cpio_file {
	const char *name; /* NUL-terminated, as stored (no leading "./" or "/" stripped) */
	const void *data;
	u64 size;
	u32 mode;
};

/* A walk over an archive. */
struct cpio_iter {
	const u8 *base;
	u64 len;
	u64 off; /* next header */
	bool done;
};

/* Start a walk over archive[0, len). */
void cpio_iter_init(struct cpio_iter *it, const void *archive, u64 len);

/*
 * The next entry into *out: 1, or 0 at the trailer (and from then on), or
 * -E_CPIO_BOUNDS (a header, name or data past the end), -E_CPIO_MAGIC,
 * -E_CPIO_FIELD (a field not 8 hex digits), -E_CPIO_NAME (empty name or
 * not NUL-terminated where namesize says), -E_CPIO_TRAILER (the archive ends
 * with no trailer). After an error the walk stays at the bad entry.
 */
int cpio_next(struct cpio_iter *it, struct cpio_file *out);

/*
 * Find `name` (a leading "/" or "./" on either side is ignored): 0 and *out,
 * -E_NOENT when the whole archive is valid and has no such entry, or the
 * first error met before it.
 */
int cpio_find(const void *archive, u64 len, const char *name, struct cpio_file *out);

/* Check the whole archive: the number of entries (trailer excluded), or the first error. */
int cpio_validate(const void *archive, u64 len);

#endif
