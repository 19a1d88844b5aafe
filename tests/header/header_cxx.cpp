// Header test: the umbrella header compiles alone as C++11
// (-std=c++11 -Wall -Wextra -pedantic -Werror) and links.
#include <ticketyboo/ticketyboo.h>

int main()
{
	return tb_strerror(TB_OK) != nullptr ? 0 : 1;
}
