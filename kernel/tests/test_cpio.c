/*
 * The cpio newc reader against archives built here: a valid one, then one
 * broken thing at a time, each refused with the error that names it.
 */
#include <cpio.h>
#include <ktest.h>
#include <printf.h>
#include <string.h>

static u8 ar[1024] __attribute__((aligned(4)));

/* Append one newc entry at *off (header, name, padding, data, padding). */
static void put(u64 *off, const char *name, const void *data, u32 size, u32 mode)
{
	u32 namesize = strlen(name) + 1;
	char h[CPIO_HEADER_SIZE + 1];
	ksnprintf(h, sizeof(h), "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1u,
		  mode, 0u, 0u, 1u, 0u, size, 0u, 0u, 0u, 0u, namesize, 0u);
	memcpy(ar + *off, h, CPIO_HEADER_SIZE);
	*off += CPIO_HEADER_SIZE;
	memcpy(ar + *off, name, namesize);
	*off = ALIGN_UP(*off + namesize, 4);
	memcpy(ar + *off, data, size);
	*off = ALIGN_UP(*off + size, 4);
}

/* A valid archive: two files, a directory, the trailer. Returns its length. */
static u64 build_valid(void)
{
	u64 off = 0;
	memset(ar, 0, sizeof(ar));
	put(&off, "bin", "", 0, CPIO_MODE_DIR | 0755);
	put(&off, "bin/hello", "hello bytes", 11, CPIO_MODE_FILE | 0755);
	put(&off, "motd", "hi\n", 3, CPIO_MODE_FILE | 0644);
	put(&off, "TRAILER!!!", "", 0, 0);
	return off;
}

/* Offset of the second entry's header (bin/hello): after "bin" (110 + 4 name bytes). */
#define SECOND (CPIO_HEADER_SIZE + 6)
/* Offset of a header field (0 = ino ... 11 = namesize) inside a header at h. */
#define FIELD(h, i) ((h) + 6 + 8 * (i))

KTEST(cpio, valid_archive_lists_and_finds)
{
	u64 len = build_valid();
	KASSERT_EQ(SECOND % 4, 0);
	KASSERT_EQ(cpio_validate(ar, len), 3);
	struct cpio_iter it;
	struct cpio_file f;
	cpio_iter_init(&it, ar, len);
	KASSERT_EQ(cpio_next(&it, &f), 1);
	KASSERT_STREQ(f.name, "bin");
	KASSERT_EQ(f.mode & CPIO_MODE_TYPE, CPIO_MODE_DIR);
	KASSERT_EQ(cpio_next(&it, &f), 1);
	KASSERT_STREQ(f.name, "bin/hello");
	KASSERT_EQ(f.size, 11);
	KASSERT_EQ(memcmp(f.data, "hello bytes", 11), 0);
	KASSERT_EQ(f.mode, CPIO_MODE_FILE | 0755);
	KASSERT_EQ(cpio_next(&it, &f), 1);
	KASSERT_STREQ(f.name, "motd");
	KASSERT_EQ(cpio_next(&it, &f), 0);
	KASSERT_EQ(cpio_next(&it, &f), 0); /* stays at the end */
	KASSERT_EQ(cpio_find(ar, len, "motd", &f), 0);
	KASSERT_EQ(f.size, 3);
	KASSERT_EQ(cpio_find(ar, len, "/bin/hello", &f), 0);
	KASSERT_EQ(cpio_find(ar, len, "./bin/hello", &f), 0);
	KASSERT_EQ(cpio_find(ar, len, "bin/hell", &f), -E_NOENT);
	KASSERT_EQ(cpio_find(ar, len, "nope", &f), -E_NOENT);
}

KTEST(cpio, bytes_after_trailer_are_ignored)
{
	u64 len = build_valid();
	memset(ar + len, 'x', 64);
	KASSERT_EQ(cpio_validate(ar, len + 64), 3);
}

KTEST(cpio, bad_magic)
{
	u64 len = build_valid();
	ar[SECOND + 5] = '2'; /* 070702: the checksummed variant is not read either */
	KASSERT_EQ(cpio_validate(ar, len), -E_CPIO_MAGIC);
	build_valid();
	memcpy(ar, "0707", 4); /* old binary/odc magic */
	ar[4] = '0';
	ar[5] = '7';
	KASSERT_EQ(cpio_validate(ar, len), -E_CPIO_MAGIC);
}

KTEST(cpio, field_not_hex)
{
	u64 len = build_valid();
	FIELD(ar + SECOND, 6)[3] = 'g'; /* filesize */
	KASSERT_EQ(cpio_validate(ar, len), -E_CPIO_FIELD);
}

KTEST(cpio, file_size_past_end)
{
	u64 len = build_valid();
	memcpy(FIELD(ar + SECOND, 6), "00100000", 8); /* 1 MiB in a 1 KiB buffer */
	KASSERT_EQ(cpio_validate(ar, len), -E_CPIO_BOUNDS);
	memcpy(FIELD(ar + SECOND, 6), "ffffffff", 8); /* the largest size a field holds */
	KASSERT_EQ(cpio_validate(ar, len), -E_CPIO_BOUNDS);
}

KTEST(cpio, name_size_past_end)
{
	u64 len = build_valid();
	memcpy(FIELD(ar + SECOND, 11), "ffffffff", 8);
	KASSERT_EQ(cpio_validate(ar, len), -E_CPIO_BOUNDS);
}

KTEST(cpio, name_not_terminated)
{
	u64 len = build_valid();
	memcpy(FIELD(ar + SECOND, 11), "00000009", 8); /* "bin/hello" without its NUL */
	KASSERT_EQ(cpio_validate(ar, len), -E_CPIO_NAME);
	build_valid();
	ar[SECOND + CPIO_HEADER_SIZE + 3] = '\0'; /* "bin\0hello": a NUL inside */
	KASSERT_EQ(cpio_validate(ar, len), -E_CPIO_NAME);
	build_valid();
	memcpy(FIELD(ar + SECOND, 11), "00000000", 8); /* no name at all */
	KASSERT_EQ(cpio_validate(ar, len), -E_CPIO_NAME);
}

KTEST(cpio, header_truncated)
{
	build_valid();
	KASSERT_EQ(cpio_validate(ar, SECOND + CPIO_HEADER_SIZE - 1), -E_CPIO_BOUNDS);
}

KTEST(cpio, missing_trailer)
{
	u64 off = 0;
	memset(ar, 0, sizeof(ar));
	put(&off, "motd", "hi\n", 3, CPIO_MODE_FILE | 0644);
	KASSERT_EQ(cpio_validate(ar, off), -E_CPIO_TRAILER);
	KASSERT_EQ(cpio_validate(ar, 0), -E_CPIO_TRAILER);
}

KTEST(cpio, find_reports_damage_before_the_name)
{
	u64 len = build_valid();
	ar[SECOND] = 'X';
	struct cpio_file f;
	/* "motd" lies after the broken entry: the damage is the answer, not "no such file". */
	KASSERT_EQ(cpio_find(ar, len, "motd", &f), -E_CPIO_MAGIC);
	KASSERT_EQ(cpio_find(ar, len, "bin", &f), 0); /* before it: found */
}
