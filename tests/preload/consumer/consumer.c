/* A program built against the installed memdesc (pkg-config or find_package). */
#include <md_malloc.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	char *p = md_malloc(100), *q;
	void *a = NULL;

	if (!p)
		return 1;
	strcpy(p, "installed");
	q = md_realloc(p, 100000);
	if (!q || strcmp(q, "installed") != 0)
		return 2;
	if (md_posix_memalign(&a, 4096, 10) != 0 || ((unsigned long)a & 4095))
		return 3;
	md_free(a);
	printf("%s %zu\n", q, md_malloc_usable_size(q) >= 100000 ? (size_t)1 : (size_t)0);
	md_free(q);
	return 0;
}
