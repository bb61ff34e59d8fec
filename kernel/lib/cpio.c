/* cpio newc reader (cpio.h). */
#include <cpio.h>
#include <string.h>

static const char cpio_magic[6] = {'0', '7', '0', '7', '0', '1'};
static const char cpio_trailer[] = "TRAILER!!!";

/* Header fields, in order, after the magic (8 hex digits each). */
enum {
	F_INO, F_MODE, F_UID, F_GID, F_NLINK, F_MTIME, F_FILESIZE,
	F_DEVMAJOR, F_DEVMINOR, F_RDEVMAJOR, F_RDEVMINOR, F_NAMESIZE, F_CHECK, F_COUNT
};

/* Parse the 8 hex digits at s into *v: 0, or -E_CPIO_FIELD. */
static int hex8(const u8 *s, u32 *v)
{
	u32 x = 0;
	for (int i = 0; i < 8; i++) {
		u8 c = s[i];
		u32 d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -E_CPIO_FIELD;
		x = x << 4 | d;
	}
	*v = x;
	return 0;
}

void cpio_iter_init(struct cpio_iter *it, const void *archive, u64 len)
{
	*it = (struct cpio_iter){.base = archive, .len = len, .off = 0, .done = false};
}

/* Read the header at it->off into f[]: 0 or an error. */
static int read_header(const struct cpio_iter *it, u32 f[F_COUNT])
{
	if (it->off >= it->len)
		return -E_CPIO_TRAILER;
	if (it->len - it->off < CPIO_HEADER_SIZE)
		return -E_CPIO_BOUNDS;
	const u8 *h = it->base + it->off;
	if (memcmp(h, cpio_magic, sizeof(cpio_magic)) != 0)
		return -E_CPIO_MAGIC;
	for (int i = 0; i < F_COUNT; i++) {
		int err = hex8(h + sizeof(cpio_magic) + 8 * i, &f[i]);
		if (err < 0)
			return err;
	}
	return 0;
}

int cpio_next(struct cpio_iter *it, struct cpio_file *out)
{
	if (it->done)
		return 0;
	u32 f[F_COUNT];
	int err = read_header(it, f);
	if (err < 0)
		return err;
	/* All quantities are u32 and offsets stay below len: no u64 sum can wrap. */
	u64 name_off = it->off + CPIO_HEADER_SIZE;
	u64 namesize = f[F_NAMESIZE];
	if (namesize == 0)
		return -E_CPIO_NAME;
	if (namesize > it->len - name_off)
		return -E_CPIO_BOUNDS;
	const char *name = (const char *)it->base + name_off;
	if (strnlen(name, namesize) != namesize - 1)
		return -E_CPIO_NAME; /* a NUL inside, or none at namesize - 1 */
	u64 data_off = ALIGN_UP(name_off + namesize, 4);
	u64 size = f[F_FILESIZE];
	if (data_off > it->len || size > it->len - data_off)
		return -E_CPIO_BOUNDS;
	if (namesize == sizeof(cpio_trailer) && memcmp(name, cpio_trailer, namesize) == 0) {
		it->done = true;
		return 0;
	}
	*out = (struct cpio_file){.name = name, .data = it->base + data_off, .size = size,
				  .mode = f[F_MODE]};
	it->off = ALIGN_UP(data_off + size, 4);
	return 1;
}

/* name without a leading "./" or "/" (repeated). */
static const char *strip_root(const char *name)
{
	for (;;) {
		if (name[0] == '/')
			name++;
		else if (name[0] == '.' && name[1] == '/')
			name += 2;
		else
			return name;
	}
}

int cpio_find(const void *archive, u64 len, const char *name, struct cpio_file *out)
{
	struct cpio_iter it;
	struct cpio_file f;
	int r;
	cpio_iter_init(&it, archive, len);
	while ((r = cpio_next(&it, &f)) == 1) {
		if (strcmp(strip_root(f.name), strip_root(name)) == 0) {
			*out = f;
			return 0;
		}
	}
	return r < 0 ? r : -E_NOENT;
}

int cpio_validate(const void *archive, u64 len)
{
	struct cpio_iter it;
	struct cpio_file f;
	int r, n = 0;
	cpio_iter_init(&it, archive, len);
	while ((r = cpio_next(&it, &f)) == 1)
		n++;
	return r < 0 ? r : n;
}
