/* The libvirt backend's domain XML: beckon's own, and the user's expanded. */
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
#include "virt.h"

static struct libvirt_xml_in in;

static int setup(void **state)
{
	(void)state;
	in = (struct libvirt_xml_in){
	    .name = "beckon-www",
	    .type = "qemu",
	    .machine = NULL,
	    .kernel = "/img/hello.elf",
	    .cmdline = "ip=10.77.0.2/24 gw=10.77.0.1 name=www port=80",
	    .memory = 16 << 20,
	    .vcpus = 1,
	    .tap = "bk1a2bwww",
	    .mac = "02:62:6b:01:02:03",
	};
	return 0;
}

static char *domain(void)
{
	char *xml = libvirt_xml_domain(&in);

	assert_non_null(xml);
	return xml;
}

static void has(const char *xml, const char *want)
{
	if (strstr(xml, want) == NULL)
		fail_msg("missing %s in:\n%s", want, xml);
}

static void lacks(const char *xml, const char *want)
{
	if (strstr(xml, want) != NULL)
		fail_msg("unexpected %s in:\n%s", want, xml);
}

static void test_microvm(void **state)
{
	char *xml = domain();

	(void)state;
	has(xml, "<domain type='qemu'>");
	has(xml, "<name>beckon-www</name>");
	has(xml, "<memory unit='KiB'>16384</memory>");
	has(xml, "<vcpu>1</vcpu>");
	has(xml, "machine='microvm'>hvm</type>");
	has(xml, "<kernel>/img/hello.elf</kernel>");
	has(xml, "<cmdline>ip=10.77.0.2/24 gw=10.77.0.1 name=www port=80</cmdline>");
	has(xml, "<on_crash>destroy</on_crash>");
	/* microvm: no PCI, so no USB controller, no balloon, the NIC on virtio-mmio */
	has(xml, "<controller type='usb' model='none'/>");
	has(xml, "<memballoon model='none'/>");
	has(xml, "<interface type='ethernet'>");
	has(xml, "<target dev='bk1a2bwww' managed='no'/>");
	has(xml, "<mac address='02:62:6b:01:02:03'/>");
	has(xml, "<address type='virtio-mmio'/>");
	/* without ACPI QEMU lists the virtio-mmio devices on the command line */
	lacks(xml, "<acpi/>");
	has(xml, "<serial type='pty'>");
	has(xml, "<console type='pty'>");
	lacks(xml, "<initrd>");
	free(xml);
}

static void test_pc_kvm_initrd(void **state)
{
	char *xml;

	(void)state;
	in.machine = "pc";
	in.type = "kvm";
	in.initrd = "/img/initrd.cpio";
	in.vcpus = 2;
	xml = domain();
	has(xml, "<domain type='kvm'>");
	has(xml, "machine='pc'>hvm</type>");
	has(xml, "<initrd>/img/initrd.cpio</initrd>");
	has(xml, "<vcpu>2</vcpu>");
	has(xml, "<acpi/>");
	lacks(xml, "virtio-mmio");
	lacks(xml, "<controller type='usb'");
	has(xml, "<memballoon model='none'/>");
	free(xml);
}

static void test_no_nic_no_cmdline(void **state)
{
	char *xml;

	(void)state;
	in.tap = "";
	in.cmdline = "";
	xml = domain();
	lacks(xml, "<interface");
	lacks(xml, "<cmdline>");
	free(xml);
}

/* A guest on another host: on that host's bridge, no tap of beckon's. */
static void test_remote_bridge(void **state)
{
	char *xml;

	(void)state;
	in.tap = "";
	in.bridge = "br'0";
	xml = domain();
	has(xml, "<interface type='bridge'>");
	has(xml, "<source bridge='br&apos;0'/>");
	has(xml, "<mac address='");
	has(xml, "<address type='virtio-mmio'/>");
	lacks(xml, "<target dev=");
	lacks(xml, "type='ethernet'");
	free(xml);
	in.bridge = NULL;
}

static void test_escaping(void **state)
{
	char *xml, *e = libvirt_xml_escape("a&b<c>d'e\"f");

	(void)state;
	assert_string_equal(e, "a&amp;b&lt;c&gt;d&apos;e&quot;f");
	free(e);
	in.kernel = "/img/a&b/<hello>.elf";
	in.cmdline = "msg='x' & y=\"z\"";
	in.machine = "pc'><evil/>";
	xml = domain();
	has(xml, "<kernel>/img/a&amp;b/&lt;hello&gt;.elf</kernel>");
	has(xml, "<cmdline>msg=&apos;x&apos; &amp; y=&quot;z&quot;</cmdline>");
	has(xml, "machine='pc&apos;&gt;&lt;evil/&gt;'");
	lacks(xml, "<evil/>");
	free(xml);
}

static void test_type(void **state)
{
	(void)state;
	assert_string_equal(libvirt_xml_type("auto", "/nonexistent/kvm"), "qemu");
	assert_string_equal(libvirt_xml_type(NULL, "/nonexistent/kvm"), "qemu");
	assert_string_equal(libvirt_xml_type("kvm", "/nonexistent/kvm"), "kvm");
	assert_string_equal(libvirt_xml_type("tcg", "/dev/null"), "qemu");
	/* a device that opens read-write stands for /dev/kvm */
	assert_string_equal(libvirt_xml_type("auto", "/dev/null"), "kvm");
}

static const char user_xml[] = "<domain type='qemu'>\n"
                               "  <name>mine</name>\n"
                               "  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>\n"
                               "  <os><kernel>{image}</kernel><cmdline>{cmdline}</cmdline></os>\n"
                               "  <description>{name} at {address}/{prefix}</description>\n"
                               "  <devices><interface type='ethernet'><mac address='{mac}'/>"
                               "<target dev='{tap}' managed='no'/></interface></devices>\n"
                               "</domain>\n";

static void vars(struct backend_vars *v)
{
	*v = (struct backend_vars){.image = "/img/a&b.elf",
	                           .cmdline = "ip=10.0.0.2 {port} <x>",
	                           .tap = "bktap",
	                           .mac = "02:62:6b:00:00:01",
	                           .address = "10.0.0.2",
	                           .prefix = "24",
	                           .name = "www"};
}

static void test_user_xml(void **state)
{
	struct backend_vars v;
	char err[256] = "", *xml;
	int line = -1;

	(void)state;
	vars(&v);
	xml = libvirt_xml_user(user_xml, &v, "beckon-www", &line, err, sizeof(err));
	if (xml == NULL)
		fail_msg("libvirt_xml_user: %s", err);
	has(xml, "<name>beckon-www</name>");
	lacks(xml, "<name>mine</name>");
	lacks(xml, "<uuid>");
	has(xml, "<kernel>/img/a&amp;b.elf</kernel>");
	/* {cmdline} is the expanded command line, as is: its braces are not expanded again */
	has(xml, "<cmdline>ip=10.0.0.2 {port} &lt;x&gt;</cmdline>");
	has(xml, "<description>www at 10.0.0.2/24</description>");
	has(xml, "<mac address=\"02:62:6b:00:00:01\"/>");
	has(xml, "<target dev=\"bktap\" managed=\"no\"/>");
	assert_int_equal(line, 0);
	free(xml);
}

static void test_user_xml_no_name(void **state)
{
	struct backend_vars v;
	char err[256], *xml;
	int line;

	(void)state;
	vars(&v);
	xml = libvirt_xml_user("<domain type='qemu'><memory>16</memory></domain>", &v, "beckon-x",
	                       &line, err, sizeof(err));
	assert_non_null(xml);
	has(xml, "<name>beckon-x</name>");
	free(xml);
}

static void test_user_xml_errors(void **state)
{
	struct backend_vars v;
	char err[256];
	int line;

	(void)state;
	vars(&v);
	/* a tag that does not close: the first error, with its line */
	assert_null(libvirt_xml_user("<domain>\n<name>x</name>\n<os><kernel>k</os>\n</domain>\n",
	                             &v, "beckon-x", &line, err, sizeof(err)));
	assert_int_equal(line, 3);
	assert_non_null(strstr(err, "mismatch"));
	/* not a domain */
	assert_null(libvirt_xml_user("<network/>", &v, "beckon-x", &line, err, sizeof(err)));
	assert_non_null(strstr(err, "<domain>"));
	/* an unknown placeholder: no line, the name in the message */
	assert_null(libvirt_xml_user("<domain><name>{nosuch}</name></domain>", &v, "beckon-x",
	                             &line, err, sizeof(err)));
	assert_int_equal(line, 0);
	assert_non_null(strstr(err, "{nosuch}"));
	/* not XML at all */
	assert_null(libvirt_xml_user("", &v, "beckon-x", &line, err, sizeof(err)));
	assert_null(libvirt_xml_user("domain", &v, "beckon-x", &line, err, sizeof(err)));
	assert_int_equal(line, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_microvm, setup),
	    cmocka_unit_test_setup(test_pc_kvm_initrd, setup),
	    cmocka_unit_test_setup(test_no_nic_no_cmdline, setup),
	    cmocka_unit_test_setup(test_escaping, setup),
	    cmocka_unit_test_setup(test_remote_bridge, setup),
	    cmocka_unit_test(test_type),
	    cmocka_unit_test(test_user_xml),
	    cmocka_unit_test(test_user_xml_no_name),
	    cmocka_unit_test(test_user_xml_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
