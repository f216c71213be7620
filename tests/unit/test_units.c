/* test_units.c - sizes, durations, retry-on and halt parsers. */
#include "testlib.h"

static void sizes(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(corral_parse_size("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(corral_parse_size("64M", &v), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(corral_parse_size("1.5G", &v), 0);
	assert_int_equal(v, 1610612736ull);
	assert_int_equal(corral_parse_size("64MiB", &v), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(corral_parse_size("1gb", &v), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(corral_parse_size("max", &v), 0);
	assert_true(v == CORRAL_UNLIMITED);
	assert_int_equal(corral_parse_size("12QB", &v), -EINVAL);
	assert_int_equal(corral_parse_size("-1", &v), -EINVAL);
	assert_int_equal(corral_parse_size("", &v), -EINVAL);
	assert_int_equal(corral_parse_size("1..5G", &v), -EINVAL);
	assert_int_equal(corral_parse_size(" 1G", &v), -EINVAL);
	assert_int_equal(corral_parse_size("1G ", &v), -EINVAL);
	assert_int_equal(corral_parse_size("1e3", &v), -EINVAL);
	assert_int_equal(corral_parse_size("99999999999E", &v), -ERANGE);
	assert_int_equal(corral_parse_size("8E", &v), -ERANGE);
}

static void durations(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(corral_parse_duration("30", &v), 0);
	assert_int_equal(v, 30000000000ull);
	assert_int_equal(corral_parse_duration("1.5s", &v), 0);
	assert_int_equal(v, 1500000000ull);
	assert_int_equal(corral_parse_duration("250ms", &v), 0);
	assert_int_equal(v, 250000000ull);
	assert_int_equal(corral_parse_duration("1h30m", &v), 0);
	assert_int_equal(v, 5400000000000ull);
	assert_int_equal(corral_parse_duration("2d", &v), 0);
	assert_int_equal(v, 172800000000000ull);
	assert_int_equal(corral_parse_duration("infinity", &v), 0);
	assert_true(v == CORRAL_UNLIMITED);
	assert_int_equal(corral_parse_duration("1h30", &v), -EINVAL);
	assert_int_equal(corral_parse_duration("5x", &v), -EINVAL);
	assert_int_equal(corral_parse_duration("-5s", &v), -EINVAL);
	assert_int_equal(corral_parse_duration("", &v), -EINVAL);
}

static void enums(void **state)
{
	unsigned bits;
	corral_halt_t h;
	(void)state;
	assert_int_equal(corral_parse_retry_on("oom,timeout", &bits), 0);
	assert_int_equal(bits, CORRAL_RETRY_OOM | CORRAL_RETRY_TIMEOUT);
	assert_int_equal(corral_parse_retry_on("oom,", &bits), -EINVAL);
	assert_int_equal(corral_parse_retry_on("bogus", &bits), -EINVAL);
	assert_int_equal(corral_parse_halt("now", &h), 0);
	assert_int_equal(h, CORRAL_HALT_NOW);
	assert_int_equal(corral_parse_halt("soon", &h), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sizes),
	    cmocka_unit_test(durations),
	    cmocka_unit_test(enums),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
