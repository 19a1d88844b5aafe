/* Header test: the umbrella header compiles alone as strict C11
 * (-std=c11 -Wall -Wextra -pedantic -Werror) and links. */
#include <ticketyboo/ticketyboo.h>

int main(void)
{
	return tb_strerror(TB_OK) != 0 ? 0 : 1;
}
