/* Glob matching for test filters: `*` matches any run, `?` any one character. */
#include <cmdline.h>
#include <string.h>

bool glob_match(const char *pattern, const char *str)
{
	/*
	 * Greedy with one backtrack point: on a mismatch, let the last `*`
	 * swallow one more character. Linear space, no recursion.
	 */
	const char *star = NULL, *resume = NULL;
	while (*str) {
		if (*pattern == '*') {
			star = pattern++;
			resume = str;
		} else if (*pattern == '?' || *pattern == *str) {
			pattern++;
			str++;
		} else if (star) {
			pattern = star + 1;
			str = ++resume;
		} else {
			return false;
		}
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

/* Longest single glob in a filter list. */
#define GLOB_MAX 128

bool glob_match_list(const char *patterns, const char *str)
{
	char one[GLOB_MAX];
	while (patterns) {
		const char *comma = strchr(patterns, ',');
		size_t len = comma ? (size_t)(comma - patterns) : strlen(patterns);
		/* An over-long glob matches nothing: cutting it could select other tests. */
		if (len < sizeof(one)) {
			memcpy(one, patterns, len);
			one[len] = '\0';
			if (glob_match(one, str))
				return true;
		}
		patterns = comma ? comma + 1 : NULL;
	}
	return false;
}
