/*
 * The domain XML. beckon's own is written here from the service's keys, as
 * text (every value escaped), so that the unit tests can read every
 * element; a user's own (libvirt.xml) is expanded, parsed with libxml2 and
 * renamed to beckon's name, else passed through as written.
 *
 * The NIC is <interface type='ethernet'> on the tap beckon made on its
 * bridge (backend_bridge_up), managed='no': the guest sits on the bridge
 * with beckon's MAC and permanent neighbour entry, as under the QEMU and
 * exec backends, and libvirt needs no network of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "backend.h"
#include "proc.h"
#include "virt.h"

char *libvirt_xml_escape(const char *s)
{
	size_t n = 0;
	const char *p;
	char *out, *o;

	for (p = s; *p; p++)
		n += *p == '&' ? 5 : *p == '<' || *p == '>' ? 4 : *p == '\'' || *p == '"' ? 6 : 1;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (p = s, o = out; *p; p++) {
		const char *e = *p == '&'    ? "&amp;"
		                : *p == '<'  ? "&lt;"
		                : *p == '>'  ? "&gt;"
		                : *p == '\'' ? "&apos;"
		                : *p == '"'  ? "&quot;"
		                             : NULL;
		if (e == NULL) {
			*o++ = *p;
			continue;
		}
		memcpy(o, e, strlen(e));
		o += strlen(e);
	}
	*o = '\0';
	return out;
}

const char *libvirt_xml_type(const char *accel, const char *kvm_path)
{
	int fd;

	if (accel != NULL && strcmp(accel, "tcg") == 0)
		return "qemu";
	if (accel != NULL && strcmp(accel, "kvm") == 0)
		return "kvm";
	if ((fd = open(kvm_path, O_RDWR | O_CLOEXEC)) == -1)
		return "qemu";
	close(fd);
	return "kvm";
}

static bool xml_is_microvm(const char *machine)
{
	return machine == NULL || strcmp(machine, "microvm") == 0;
}

/* One element with escaped text: <TAG>TEXT</TAG>. */
static void xml_text(FILE *f, const char *indent, const char *tag, const char *text)
{
	char *e = libvirt_xml_escape(text);

	fprintf(f, "%s<%s>%s</%s>\n", indent, tag, e ? e : "", tag);
	free(e);
}

static void xml_os(FILE *f, const struct libvirt_xml_in *in)
{
	char *m = libvirt_xml_escape(in->machine ? in->machine : "microvm");

	fprintf(f, "  <os>\n    <type arch='x86_64' machine='%s'>hvm</type>\n", m ? m : "");
	free(m);
	xml_text(f, "    ", "kernel", in->kernel);
	if (in->initrd != NULL)
		xml_text(f, "    ", "initrd", in->initrd);
	if (in->cmdline != NULL && *in->cmdline)
		xml_text(f, "    ", "cmdline", in->cmdline);
	fputs("  </os>\n", f);
	/* microvm without ACPI: QEMU lists its virtio-mmio devices on the command line. */
	if (!xml_is_microvm(in->machine))
		fputs("  <features>\n    <acpi/>\n    <apic/>\n  </features>\n", f);
}

/*
 * On another host beckon makes no tap: libvirt makes one there on that
 * host's bridge (<interface type='bridge'>).
 */
static void xml_nic_head(FILE *f, const struct libvirt_xml_in *in, const char *mac)
{
	bool remote = in->bridge != NULL && *in->bridge;
	char *dev = libvirt_xml_escape(remote ? in->bridge : in->tap);

	if (remote)
		fprintf(f,
		        "    <interface type='bridge'>\n"
		        "      <mac address='%s'/>\n"
		        "      <source bridge='%s'/>\n",
		        mac, dev ? dev : "");
	else
		fprintf(f,
		        "    <interface type='ethernet'>\n"
		        "      <mac address='%s'/>\n"
		        "      <target dev='%s' managed='no'/>\n",
		        mac, dev ? dev : "");
	fputs("      <model type='virtio'/>\n", f);
	free(dev);
}

static void xml_nic(FILE *f, const struct libvirt_xml_in *in)
{
	char *mac;

	if ((in->tap == NULL || *in->tap == '\0') && (in->bridge == NULL || *in->bridge == '\0'))
		return;
	mac = libvirt_xml_escape(in->mac ? in->mac : "");
	xml_nic_head(f, in, mac ? mac : "");
	/* microvm has no PCI bus: virtio-net-device on virtio-mmio. */
	if (xml_is_microvm(in->machine))
		fputs("      <address type='virtio-mmio'/>\n", f);
	fputs("    </interface>\n", f);
	free(mac);
}

static void xml_devices(FILE *f, const struct libvirt_xml_in *in)
{
	fputs("  <devices>\n", f);
	/* Without these libvirt asks microvm for PCI buses it has not got. */
	if (xml_is_microvm(in->machine))
		fputs("    <controller type='usb' model='none'/>\n", f);
	xml_nic(f, in);
	/* The serial console beckon reads (virDomainOpenConsole). */
	fputs("    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n"
	      "    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n"
	      "    <memballoon model='none'/>\n"
	      "  </devices>\n",
	      f);
}

char *libvirt_xml_domain(const struct libvirt_xml_in *in)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "<domain type='%s'>\n", strcmp(in->type, "kvm") == 0 ? "kvm" : "qemu");
	xml_text(f, "  ", "name", in->name);
	fprintf(f, "  <memory unit='KiB'>%llu</memory>\n",
	        (unsigned long long)((in->memory + 1023) / 1024));
	fprintf(f, "  <vcpu>%d</vcpu>\n", in->vcpus > 0 ? in->vcpus : 1);
	xml_os(f, in);
	fputs("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
	      "  <on_crash>destroy</on_crash>\n",
	      f);
	xml_devices(f, in);
	fputs("</domain>\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- the user's XML ---------------------------------------------------------- */

/* V with every value escaped for XML (into OWN, freed by the caller). */
static int xml_vars_escape(const struct backend_vars *v, struct backend_vars *out, char **own)
{
	const char *const *src = (const char *const *)v;
	const char **dst = (const char **)out;
	size_t n = sizeof(*v) / sizeof(char *);

	for (size_t i = 0; i < n; i++) {
		own[i] = src[i] != NULL ? libvirt_xml_escape(src[i]) : NULL;
		if (src[i] != NULL && own[i] == NULL)
			return -1;
		dst[i] = own[i];
	}
	return 0;
}

/*
 * Set the domain's <name> to NAME, adding it when missing; drop its <uuid>:
 * each run's gets a fresh one, which tells its events from an older run's.
 */
static int xml_rename(xmlNodePtr root, const char *name)
{
	xmlNodePtr n, uuid = NULL;

	for (n = root->children; n != NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST "uuid") == 0)
			uuid = n;
	if (uuid != NULL) {
		xmlUnlinkNode(uuid);
		xmlFreeNode(uuid);
	}
	for (n = root->children; n != NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST "name") == 0)
			break;
	if (n == NULL)
		return xmlNewTextChild(root, NULL, BAD_CAST "name", BAD_CAST name) ? 0 : -1;
	xmlNodeSetContent(n, NULL);
	xmlNodeAddContent(n, BAD_CAST name);
	return 0;
}

/* The first error libxml2 reports: its last is often a consequence ("Premature end"). */
struct xml_first_error {
	int line;
	char msg[256];
};

static void xml_error_cb(void *arg, xmlErrorPtr e)
{
	struct xml_first_error *fe = arg;

	if (fe->msg[0] != '\0' || e == NULL || e->level < XML_ERR_ERROR)
		return;
	fe->line = e->line;
	snprintf(fe->msg, sizeof(fe->msg), "%s", e->message ? e->message : "not XML");
	fe->msg[strcspn(fe->msg, "\n")] = '\0'; /* libxml2 ends its messages with one */
}

static xmlDocPtr xml_parse(const char *text, int *line, char *err, size_t errlen)
{
	struct xml_first_error fe = {0, ""};
	xmlNodePtr root;
	xmlDocPtr doc;

	xmlSetStructuredErrorFunc(&fe, xml_error_cb);
	doc = xmlReadMemory(text, (int)strlen(text), "domain.xml", NULL,
	                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlSetStructuredErrorFunc(NULL, NULL);
	root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
	if (root != NULL && xmlStrcmp(root->name, BAD_CAST "domain") == 0)
		return doc;
	*line = root != NULL ? root->line : fe.line;
	snprintf(err, errlen, "%s",
	         root != NULL ? "the root element is not <domain>"
	         : fe.msg[0]  ? fe.msg
	                      : "not XML");
	if (doc != NULL)
		xmlFreeDoc(doc);
	return NULL;
}

/*
 * TEXT expanded with V; {cmdline} (which backend_expand leaves to the
 * template that is the command line) becomes CMDLINE.
 */
static char *xml_expand(const char *text, const struct backend_vars *v, const char *cmdline,
                        char *err, size_t errlen)
{
	char *buf = NULL, *part, *seg;
	size_t len = 0, n;
	const char *s = text, *p;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	for (;;) {
		for (p = s; *p; p++)
			if ((n = backend_placeholder_at(p, text)) == 9 &&
			    strncmp(p, "{cmdline}", 9) == 0)
				break;
		if ((seg = strndup(s, (size_t)(p - s))) == NULL ||
		    (part = backend_expand(seg, v, err, errlen)) == NULL) {
			free(seg);
			fclose(f);
			free(buf);
			return NULL;
		}
		fputs(part, f);
		free(part);
		free(seg);
		if (*p == '\0')
			break;
		fputs(cmdline ? cmdline : "", f);
		s = p + 9;
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *libvirt_xml_user(const char *text, const struct backend_vars *v, const char *name, int *line,
                       char *err, size_t errlen)
{
	char *own[sizeof(*v) / sizeof(char *)] = {0}, *expanded = NULL, *out = NULL;
	struct backend_vars ev;
	xmlDocPtr doc = NULL;
	xmlChar *mem = NULL;
	int len = 0;

	*line = 0;
	if (xml_vars_escape(v, &ev, own) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((expanded = xml_expand(text, &ev, ev.cmdline, err, errlen)) == NULL)
		goto fail;
	if ((doc = xml_parse(expanded, line, err, errlen)) == NULL)
		goto fail;
	if (xml_rename(xmlDocGetRootElement(doc), name) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	xmlDocDumpMemory(doc, &mem, &len);
	if (mem == NULL || (out = strndup((const char *)mem, (size_t)len)) == NULL)
		snprintf(err, errlen, "out of memory");
fail:
	xmlFree(mem);
	if (doc != NULL)
		xmlFreeDoc(doc);
	free(expanded);
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		free(own[i]);
	return out;
}

char *libvirt_xml_read(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, n;
	char chunk[4096];
	FILE *m;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((m = open_memstream(&buf, &len)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	if (fclose(m) != 0) {
		free(buf);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return buf;
}
