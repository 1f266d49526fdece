/*
 * The Xen backend's domain config (xen_cfg.c): what beckon fills in from
 * the service, what the user's xl.cfg overrides, libxlutil's syntax errors
 * with FILE:LINE, and the placeholders. No hypervisor is needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "proc.h"
#include "xen.h"

static struct xen_cfg_in in;
static libxl_domain_config d;
static char err[512];

static int setup(void **state)
{
	(void)state;
	in = (struct xen_cfg_in){
	    .name = "beckon-www",
	    .kernel = "/img/vmlinuz",
	    .cmdline = "ip=10.77.0.2/24 gw=10.77.0.1",
	    .memory = 64 << 20,
	    .vcpus = 1,
	    .bridge = "beckon0",
	    .mac = "02:62:6b:01:02:03",
	};
	libxl_domain_config_init(&d);
	err[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	libxl_domain_config_dispose(&d);
	return 0;
}

static int build(const char *text)
{
	return xen_cfg_build(&d, &in, text, "/etc/beckon/www.cfg", err, sizeof(err));
}

/* No xl.cfg: a PVH domain from the service, a vif on beckon's bridge with its MAC. */
static void test_from_service(void **state)
{
	static const libxl_mac mac = {0x02, 0x62, 0x6b, 0x01, 0x02, 0x03};

	(void)state;
	assert_int_equal(build(NULL), 0);
	assert_string_equal(d.c_info.name, "beckon-www");
	assert_int_equal(d.c_info.type, LIBXL_DOMAIN_TYPE_PVH);
	assert_int_equal(d.b_info.type, LIBXL_DOMAIN_TYPE_PVH);
	assert_string_equal(d.b_info.kernel, "/img/vmlinuz");
	assert_null(d.b_info.ramdisk);
	assert_string_equal(d.b_info.cmdline, "ip=10.77.0.2/24 gw=10.77.0.1");
	assert_int_equal(d.b_info.max_memkb, 64 * 1024);
	assert_int_equal(d.b_info.target_memkb, 64 * 1024);
	assert_int_equal(d.b_info.max_vcpus, 1);
	assert_int_equal(d.num_nics, 1);
	assert_memory_equal(d.nics[0].mac, mac, 6);
	assert_string_equal(d.nics[0].bridge, "beckon0");
	assert_int_equal(d.nics[0].nictype, LIBXL_NIC_TYPE_VIF);
	assert_int_equal(d.on_poweroff, LIBXL_ACTION_ON_SHUTDOWN_DESTROY);
}

/* User networking: no bridge, no vif. */
static void test_no_bridge(void **state)
{
	(void)state;
	in.bridge = NULL;
	assert_int_equal(build(NULL), 0);
	assert_int_equal(d.num_nics, 0);
}

/* The xl.cfg wins where it speaks; the name stays beckon's. */
static void test_user_overrides(void **state)
{
	(void)state;
	assert_int_equal(build("name = \"theirs\"\ntype = \"pv\"\nkernel = \"/k\"\n"
	                       "ramdisk = \"/r.cpio\"\nmemory = 128\nmaxmem = 256\nvcpus = 2\n"
	                       "cmdline = \"console=hvc0\"\n"),
	                 0);
	assert_string_equal(d.c_info.name, "beckon-www");
	assert_int_equal(d.c_info.type, LIBXL_DOMAIN_TYPE_PV);
	assert_string_equal(d.b_info.kernel, "/k");
	assert_string_equal(d.b_info.ramdisk, "/r.cpio");
	assert_string_equal(d.b_info.cmdline, "console=hvc0");
	assert_int_equal(d.b_info.target_memkb, 128 * 1024);
	assert_int_equal(d.b_info.max_memkb, 256 * 1024);
	assert_int_equal(d.b_info.max_vcpus, 2);
}

/* xl's root and extra make the command line. */
static void test_root_extra(void **state)
{
	(void)state;
	assert_int_equal(build("root = \"/dev/xvda1 ro\"\nextra = \"quiet\"\n"), 0);
	assert_string_equal(d.b_info.cmdline, "root=/dev/xvda1 ro quiet");
}

/* The user's vifs: their keys, beckon's MAC and bridge where they say none. */
static void test_vifs(void **state)
{
	static const libxl_mac mac0 = {0x02, 0x62, 0x6b, 0x01, 0x02, 0x03};
	static const libxl_mac mac1 = {0x00, 0x16, 0x3e, 0xaa, 0xbb, 0xcc};

	(void)state;
	assert_int_equal(build("vif = [ 'vifname=web0', 'mac=00:16:3e:aa:bb:cc,bridge=xenbr1' ]\n"),
	                 0);
	assert_int_equal(d.num_nics, 2);
	assert_memory_equal(d.nics[0].mac, mac0, 6);
	assert_string_equal(d.nics[0].bridge, "beckon0");
	assert_string_equal(d.nics[0].ifname, "web0");
	assert_int_equal(d.nics[1].devid, 1);
	assert_memory_equal(d.nics[1].mac, mac1, 6);
	assert_string_equal(d.nics[1].bridge, "xenbr1");
}

/* libxlutil's syntax error names the file and the line. */
static void test_syntax_error(void **state)
{
	(void)state;
	assert_int_equal(build("type = \"pvh\"\nmemory = 64\nvcpus = = 1\n"), -1);
	assert_non_null(strstr(err, "/etc/beckon/www.cfg:3:"));
}

/* Values of the wrong kind, an HVM type, a vif key beckon does not set, no kernel. */
static void test_refused(void **state)
{
	(void)state;
	assert_int_equal(build("memory = \"lots\"\n"), -1);
	assert_non_null(strstr(err, "memory"));
	libxl_domain_config_dispose(&d);
	libxl_domain_config_init(&d);
	assert_int_equal(build("type = \"hvm\"\n"), -1);
	assert_non_null(strstr(err, "hvm"));
	libxl_domain_config_dispose(&d);
	libxl_domain_config_init(&d);
	assert_int_equal(build("vif = [ 'rate=10Mb/s' ]\n"), -1);
	assert_non_null(strstr(err, "rate"));
	libxl_domain_config_dispose(&d);
	libxl_domain_config_init(&d);
	in.kernel = NULL;
	assert_int_equal(build("type = \"pvh\"\n"), -1);
	assert_non_null(strstr(err, "kernel"));
}

/* beckon's placeholders, {cmdline} included; an unknown one is refused. */
static void test_expand(void **state)
{
	struct backend_vars v;
	char *s;

	(void)state;
	backend_vars_dummy(&v);
	v.address = "10.77.0.9";
	v.cmdline = "quiet";
	s = xen_cfg_expand("extra = \"ip={address}/{prefix} {cmdline}\"\n# ${HOME}\n", &v, err,
	                   sizeof(err));
	assert_non_null(s);
	assert_string_equal(s, "extra = \"ip=10.77.0.9/24 quiet\"\n# ${HOME}\n");
	free(s);
	assert_null(xen_cfg_expand("extra = \"{nosuch}\"\n", &v, err, sizeof(err)));
	assert_non_null(strstr(err, "{nosuch}"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_from_service, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_bridge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_user_overrides, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_root_extra, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vifs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expand, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
