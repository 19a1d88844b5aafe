/* Install test consumer: builds against the INSTALLED headers and library
 * (via pkg-config and via find_package), runs, and must exit 0. */
#include <stdio.h>
#include <string.h>

#include <ticketyboo/ticketyboo.h>

int main(void)
{
	const char *msg = tb_strerror(TB_ELOCKED);

	if (msg == NULL || strlen(msg) == 0) {
		fprintf(stderr, "tb_strerror(TB_ELOCKED) is empty\n");
		return 1;
	}
	printf("tb_strerror(TB_ELOCKED) = \"%s\"\n", msg);
	return 0;
}
