#include <stdio.h>
#include <string.h>
#include "corral.h"
int main(int argc, char **argv)
{
	corral_options_t o;
	corral_error_t err;
	corral_options_init(&o);
	if (argc > 1 && !strcmp(argv[1], "check")) {
		int rc = corral_check(&o, argc > 2, 1, &err);
		if (rc < 0) {
			fprintf(stderr, "corral: %s\n", err.msg);
			return 125;
		}
		return rc;
	}
	return 125;
}
